#!/usr/bin/env bash
# Builds the EigenKMS enclave image reproducibly: a GPT disk with an ESP holding one
# unified kernel image (UKI) and a dm-verity-protected, read-only erofs root with
# kms-node. See enclave-image/README.md for the design and the reasons behind it.
#
# Inputs are pinned: the source is the committed tree of $COMMIT (not the working
# tree), SOURCE_DATE_EPOCH is that commit's time, the Debian package sets must equal
# enclave-image/*.lock, and every tool that writes an output runs from a tools tree
# bootstrapped from the same Debian suite. Outputs land in $BUILD/out/<release>/.
#
# Environment (all optional):
#   COMMIT        commit to build (default HEAD)
#   BUILD         build directory (default enclave-image/build)
#   CARGO_TARGET_DIR  cargo target directory (default /work/target-image)
#   MIRROR        Debian archive URL (default: the host's configured Debian archive;
#                 a snapshot archive URL pins the package versions for good)
#   UPDATE_LOCK=1 accept a changed package set and rewrite the lock files
#   REUSE_TOOLS=0 rebuild the tools tree even if its lock matches
#   IMAGE_FROM_WORKTREE=1  take rootfs/, profiles/, initrd/ and the lock files from the
#                 working tree instead of $COMMIT (development; release names get "-wt")
#   PROFILES      the profiles to build (default "dev production"): each is rootfs/ plus
#                 profiles/<profile>/, its own root hash, UKI, disk and measurements.
#                 dev -> eigenkms-<version>-dev-<commit>, production -> eigenkms-<version>-<commit>
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
SUITE=trixie
COMMIT=$(git -C "$repo" rev-parse "${COMMIT:-HEAD}")
SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct "$COMMIT")
export SOURCE_DATE_EPOCH
BUILD=${BUILD:-$here/build}
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-image}
version=$(git -C "$repo" show "$COMMIT:Cargo.toml" | sed -n 's/^version = "\(.*\)"/\1/p' | head -n1)
short=$(git -C "$repo" rev-parse --short=12 "$COMMIT")
PROFILES=${PROFILES:-dev production}
# The release name of a profile.
release_of() {
    local name
    case $1 in
    dev) name=eigenkms-$version-dev-$short ;;
    production) name=eigenkms-$version-$short ;;
    *) echo "build.sh: unknown profile $1 (dev, production)" >&2; exit 1 ;;
    esac
    [[ ${IMAGE_FROM_WORKTREE:-0} == 1 ]] && name=$name-wt
    echo "$name"
}
for p in $PROFILES; do release_of "$p" >/dev/null; done
TOOLS=$BUILD/tools
ROOTS=$BUILD/roots
ROOT=$ROOTS/common
WORK=$BUILD/work

# Debian packages: the tools that write outputs, and the guest.
TOOLS_PACKAGES=systemd-ukify,systemd-boot-efi,python3-pefile,erofs-utils,cryptsetup-bin,dosfstools,mtools,fdisk,busybox-static,kmod,cpio,xz-utils,ovmf
GUEST_PACKAGES=systemd,systemd-sysv,udev,dbus,kmod,e2fsprogs,ca-certificates,linux-image-amd64
# Documentation and translations are left out of the guest (smaller, fewer inputs).
DPKG_EXCLUDES=(
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
)

# Fixed identifiers, so that nothing random enters the image.
DISK_GUID=4b4d5300-6569-6765-6e6b-6d7364697363
ESP_GUID=4b4d5300-6569-6765-6e6b-6d7365737030
ESP_VOLID=4b4d5345
EROFS_UUID=4b4d5300-6569-6765-6e6b-6d73726f6f74
VERITY_UUID=4b4d5300-6569-6765-6e6b-6d7376657269
# Salt of the dm-verity hash tree: public, fixed (its purpose, per-device uniqueness,
# does not apply to an image every operator runs byte for byte).
VERITY_SALT=$(printf 'eigenkms dm-verity salt v1' | sha256sum | cut -c1-64)

started=$(date +%s)
step_started=$started
log() { printf '[image %4ss] %s\n' "$(($(date +%s) - started))" "$*"; }
timing() {
    local now
    now=$(date +%s)
    printf '%-28s %5s s\n' "$1" "$((now - step_started))" >>"$WORK/timings.txt"
    step_started=$now
}

[[ $(id -u) -eq 0 ]] || { echo "build.sh: run as root (bootstrap, chroot, bind mounts)" >&2; exit 1; }
"$here/install-deps.sh" --build-only

if [[ -z ${MIRROR:-} ]]; then
    MIRROR=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [[ -n $MIRROR ]] || MIRROR=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [[ -n $MIRROR ]] || { echo "build.sh: set MIRROR to a Debian archive URL" >&2; exit 1; }
fi

mounted=()
cleanup() {
    local m
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        m=${mounted[i]}
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}
trap cleanup EXIT

# Runs a command inside the tools tree, with $WORK at /w and the guest root at /r.
tool() { chroot "$TOOLS" "$@"; }
bind_tools() {
    local d
    for d in proc dev w r; do mkdir -p "$TOOLS/$d"; done
    mount -t proc proc "$TOOLS/proc" && mounted+=("$TOOLS/proc")
    mount --bind /dev "$TOOLS/dev" && mounted+=("$TOOLS/dev")
    mount --bind "$WORK" "$TOOLS/w" && mounted+=("$TOOLS/w")
    mount --bind "$ROOTS" "$TOOLS/r" && mounted+=("$TOOLS/r")
}

# Compares a package list with its lock file (or writes the lock on request).
check_lock() {
    local list=$1 name=$2
    local lock=$img/$name
    if [[ -f $lock ]] && cmp -s "$list" "$lock"; then
        return 0
    fi
    if [[ ${UPDATE_LOCK:-0} == 1 || ! -f $lock ]]; then
        cp "$list" "$here/$name"
        log "wrote enclave-image/$name ($(wc -l <"$list") packages): commit it; a changed package set is a new release"
        return 0
    fi
    echo "build.sh: the Debian package set differs from $lock:" >&2
    diff "$lock" "$list" >&2 || true
    echo "build.sh: the archive moved on. Pin it (MIRROR=<snapshot archive URL>) or accept the change (UPDATE_LOCK=1), which makes a new release." >&2
    exit 1
}

package_list() { chroot "$1" dpkg-query -W -f '${Package} ${Version} ${Architecture}\n' | LC_ALL=C sort; }

rm -rf "$WORK" "$ROOTS"
mkdir -p "$WORK" "$ROOTS"
for p in $PROFILES; do rm -rf "$BUILD/out/$(release_of "$p")"; done
log "profiles $PROFILES, commit $COMMIT, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH, suite $SUITE"

# --- 1. kms-node from the committed source ------------------------------------------
SRC=$BUILD/src
rm -rf "$SRC" && mkdir -p "$SRC"
git -C "$repo" archive "$COMMIT" | tar -x -C "$SRC"
# The image's own inputs (rootfs/, initrd/, the package locks) come from the same commit.
if [[ ${IMAGE_FROM_WORKTREE:-0} == 1 ]]; then
    img=$here
else
    img=$SRC/enclave-image
    [[ -d $img/rootfs && -d $img/profiles ]] || { echo "build.sh: commit $COMMIT has no enclave-image/{rootfs,profiles} (IMAGE_FROM_WORKTREE=1 builds from the working tree)" >&2; exit 1; }
fi
cargo_home=${CARGO_HOME:-$HOME/.cargo}
sysroot=$(rustc --print sysroot)
remap="--remap-path-prefix=$SRC=/build/eigenkms --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$CARGO_TARGET_DIR=/target --remap-path-prefix=$sysroot=/rust"
prefix_map="-ffile-prefix-map=$SRC=/build/eigenkms -ffile-prefix-map=$cargo_home=/cargo -ffile-prefix-map=$CARGO_TARGET_DIR=/target"
log "building kms-node (release, --locked) in $CARGO_TARGET_DIR"
(
    cd "$SRC"
    RUSTFLAGS="$remap" CFLAGS="$prefix_map" CXXFLAGS="$prefix_map" \
        CARGO_INCREMENTAL=0 CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=debuginfo \
        cargo build --release --locked -p kms-node --bin kms-node
)
install -m 0755 "$CARGO_TARGET_DIR/release/kms-node" "$WORK/kms-node"
rustc --version >"$WORK/rustc-version.txt"
timing "kms-node"

# --- 2. tools tree ----------------------------------------------------------------
tools_stamp="$TOOLS/.eigenkms-tools"
if [[ ${REUSE_TOOLS:-1} == 1 && -f $tools_stamp && $(cat "$tools_stamp") == "$SUITE $TOOLS_PACKAGES" ]]; then
    log "reusing the tools tree"
else
    log "bootstrapping the tools tree ($SUITE)"
    rm -rf "$TOOLS"
    mmdebstrap --quiet --variant=apt --include="$TOOLS_PACKAGES" "$SUITE" "$TOOLS" "deb $MIRROR $SUITE main"
    echo "$SUITE $TOOLS_PACKAGES" >"$tools_stamp"
fi
package_list "$TOOLS" >"$WORK/tools-packages.txt"
check_lock "$WORK/tools-packages.txt" tools.lock
timing "tools tree"

# --- 3. guest root ----------------------------------------------------------------
log "bootstrapping the guest root ($SUITE: $GUEST_PACKAGES)"
mmdebstrap --quiet --variant=essential --include="$GUEST_PACKAGES" "${DPKG_EXCLUDES[@]}" \
    "$SUITE" "$ROOT" "deb $MIRROR $SUITE main"
package_list "$ROOT" >"$WORK/packages.txt"
check_lock "$WORK/packages.txt" packages.lock
timing "guest bootstrap"

kver=$(basename "$(ls -d "$ROOT"/lib/modules/*)")
grep -q '^CONFIG_INTEL_TDX_GUEST=y' "$ROOT/boot/config-$kver" || { echo "kernel $kver lacks CONFIG_INTEL_TDX_GUEST" >&2; exit 1; }
grep -q '^CONFIG_TSM_REPORTS=[ym]' "$ROOT/boot/config-$kver" || { echo "kernel $kver lacks configfs-tsm" >&2; exit 1; }
mv "$ROOT/boot/vmlinuz-$kver" "$WORK/vmlinuz"
rm -f "$ROOT"/boot/initrd.img* "$ROOT"/vmlinuz* "$ROOT"/initrd.img*

grep -qE '/tsm\.ko' "$ROOT/lib/modules/$kver/modules.dep" || grep -qE '/tsm\.ko' "$ROOT/lib/modules/$kver/modules.builtin" ||
    { echo "kernel $kver has no tsm module (configfs-tsm reports)" >&2; exit 1; }

log "configuring the guest root (common to all profiles)"
cp -a "$img/rootfs/." "$ROOT/"
install -m 0755 "$WORK/kms-node" "$ROOT/usr/bin/kms-node"
chroot "$ROOT" systemd-sysusers
chroot "$ROOT" systemctl enable kms-node.service kms-tsm-access.service kms-eventlog.service systemd-networkd.service >/dev/null 2>&1
# No login anywhere: no getty on any console, no rescue or emergency shell.
chroot "$ROOT" systemctl mask getty.target getty@.service serial-getty@.service console-getty.service \
    rescue.service emergency.service debug-shell.service systemd-firstboot.service \
    systemd-logind.service systemd-user-sessions.service >/dev/null 2>&1
# The ESP is not mounted in the guest (nothing there changes at run time); the root is
# found by the initrd. Partition auto-discovery would only add an /efi automount.
mkdir -p "$ROOT/etc/systemd/system-generators"
ln -sf /dev/null "$ROOT/etc/systemd/system-generators/systemd-gpt-auto-generator"
if [[ -f $ROOT/etc/shadow ]]; then
    sed -i 's/^root:[^:]*:/root:!*:/' "$ROOT/etc/shadow"
fi
: >"$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"
# Caches and logs that record the build host or time.
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/* "$ROOT"/var/log/* "$ROOT"/tmp/* \
    "$ROOT"/var/cache/ldconfig/aux-cache
find "$ROOT" -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch --no-dereference --date="@$SOURCE_DATE_EPOCH"
timing "guest configuration"

bind_tools
# --- 4. initrd (one for all profiles: modules and /init only) -----------------------
log "initrd"
I=$WORK/initrd
mkdir -p "$I"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$img/initrd/init" "$I/init"
cp "$TOOLS/usr/bin/busybox" "$I/bin/busybox"
for applet in sh [ test mount mkdir cat grep sed sleep insmod poweroff switch_root; do
    ln -s busybox "$I/bin/$applet"
done
# veritysetup and the libraries it links, from the tools tree.
cp "$TOOLS/usr/sbin/veritysetup" "$I/bin/veritysetup"
tool ldd /usr/sbin/veritysetup | awk '/=>/ {print $3} /ld-linux/ {print $1}' | sort -u | while read -r lib; do
    mkdir -p "$I$(dirname "$lib")"
    cp -L "$TOOLS$lib" "$I$lib"
done
# Kernel modules for virtio disks, dm-verity and erofs, dependencies first, unpacked.
moddir=$ROOT/lib/modules/$kver
declare -A loaded=()
load_module() {
    local name=$1 path dep
    path=$(awk -v n="$name" -F: '{ f = $1; sub(/.*\//, "", f); sub(/\.ko(\.xz|\.zst|\.gz)?$/, "", f); gsub(/-/, "_", f); if (f == n) { print $1; exit } }' "$moddir/modules.dep")
    if [[ -z $path ]]; then
        grep -qE "/${name//_/[-_]}\.ko" "$moddir/modules.builtin" || { echo "module $name not found" >&2; exit 1; }
        return 0
    fi
    [[ -n ${loaded[$name]:-} ]] && return 0
    loaded[$name]=1
    for dep in $(awk -v p="$path" -F': *' '$1 == p { print $2 }' "$moddir/modules.dep"); do
        dep=$(basename "$dep")
        dep=${dep%%.ko*}
        load_module "${dep//-/_}"
    done
    local out=${name}.ko
    case $path in
    *.xz) xz -dc "$moddir/$path" >"$I/lib/modules/$out" ;;
    *.zst) zstd -dcq "$moddir/$path" >"$I/lib/modules/$out" ;;
    *) cp "$moddir/$path" "$I/lib/modules/$out" ;;
    esac
    echo "$out" >>"$I/lib/modules/load-order"
}
: >"$I/lib/modules/load-order"
# crc32c_generic: libcrc32c (erofs) needs the crc32c hash, a soft dependency.
for m in virtio_pci virtio_blk dm_mod dm_verity crc32c_generic erofs; do load_module "$m"; done
find "$I" -print0 | xargs -0 touch --no-dereference --date="@$SOURCE_DATE_EPOCH"
(cd "$I" && find . -mindepth 1 | LC_ALL=C sort | tool sh -c 'cd /w/initrd && cpio --quiet -o -H newc --reproducible -R 0:0' >"$WORK/initrd.cpio")
timing "initrd"

# --- 5-8. per profile: root, erofs + dm-verity, UKI, disk, measurements -------------
build_profile() {
local P=$1 W R OUT release roothash root_size verity_size cmdline esp_mib mib esp_start root_start verity_start disk_size
release=$(release_of "$P")
W=$WORK/$P
R=$ROOTS/$P
OUT=$BUILD/out/$release
mkdir -p "$W" "$OUT"
log "[$P] root of $release (rootfs/ + profiles/$P/)"
cp -a "$ROOT" "$R"
cp -a "$img/profiles/$P/." "$R/"
printf '%s\n' "$release" >"$R/etc/eigenkms-release"
find "$R" -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch --no-dereference --date="@$SOURCE_DATE_EPOCH"

# --- 5. root filesystem and its dm-verity hash tree ---------------------------------
log "[$P] erofs root and dm-verity"
tool mkfs.erofs --quiet -zlz4hc,12 -T"$SOURCE_DATE_EPOCH" -U"$EROFS_UUID" -x-1 /w/$P/root.erofs /r/$P
root_size=$(stat -c %s "$W/root.erofs")
root_size=$(((root_size + 1048575) / 1048576 * 1048576))
truncate -s "$root_size" "$W/root.erofs"
tool veritysetup format --data-block-size=4096 --hash-block-size=4096 --salt="$VERITY_SALT" \
    --uuid="$VERITY_UUID" /w/$P/root.erofs /w/$P/root.verity >"$W/verity.txt"
roothash=$(sed -n 's/^Root hash:[[:space:]]*//p' "$W/verity.txt")
[[ $roothash =~ ^[0-9a-f]{64}$ ]] || { echo "no root hash from veritysetup" >&2; exit 1; }
verity_size=$(stat -c %s "$W/root.verity")
verity_size=$(((verity_size + 1048575) / 1048576 * 1048576))
truncate -s "$verity_size" "$W/root.verity"
timing "$P: erofs + verity"

# --- 6. UKI -------------------------------------------------------------------------
log "[$P] UKI"
cmdline="console=ttyS0,115200 kms.roothash=$roothash ro panic=30 systemd.firstboot=off systemd.show_status=error"
printf '%s' "$cmdline" >"$W/cmdline.txt"
printf '%s' "$kver" >"$W/uname.txt"
tool ukify build --linux=/w/vmlinuz --initrd=/w/initrd.cpio --cmdline=@/w/$P/cmdline.txt --uname="$kver" \
    --os-release= --stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub --output=/w/$P/uki.efi >/dev/null
timing "$P: UKI"

# --- 7. ESP and disk ----------------------------------------------------------------
log "[$P] ESP and GPT disk"
touch --date="@$SOURCE_DATE_EPOCH" "$W/uki.efi"
esp_mib=64
tool mkfs.vfat -F 32 -n ESP -i "$ESP_VOLID" --invariant -C /w/$P/esp.img $((esp_mib * 1024)) >/dev/null
tool mmd -i /w/$P/esp.img ::/EFI ::/EFI/BOOT
tool mcopy -m -i /w/$P/esp.img /w/$P/uki.efi ::/EFI/BOOT/BOOTX64.EFI

mib=1048576
esp_start=$mib
root_start=$((esp_start + esp_mib * mib))
verity_start=$((root_start + root_size))
disk_size=$((verity_start + verity_size + mib))
uuid_of() { echo "${1:0:8}-${1:8:4}-${1:12:4}-${1:16:4}-${1:20:12}"; }
rm -f "$W/disk.raw"
truncate -s "$disk_size" "$W/disk.raw"
tool sfdisk --quiet --no-reread --no-tell-kernel /w/$P/disk.raw <<EOF
label: gpt
label-id: $DISK_GUID
unit: sectors
first-lba: 2048
start=$((esp_start / 512)), size=$((esp_mib * mib / 512)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$ESP_GUID, name="ESP"
start=$((root_start / 512)), size=$((root_size / 512)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$(uuid_of "${roothash:0:32}"), name="kms-root"
start=$((verity_start / 512)), size=$((verity_size / 512)), type=2C7357ED-EBD2-46D9-AEC3-23D88BDF6FDF, uuid=$(uuid_of "${roothash:32:32}"), name="kms-root-verity"
EOF
dd if="$W/esp.img" of="$W/disk.raw" bs=1M seek=$((esp_start / mib)) conv=notrunc status=none
dd if="$W/root.erofs" of="$W/disk.raw" bs=1M seek=$((root_start / mib)) conv=notrunc status=none
dd if="$W/root.verity" of="$W/disk.raw" bs=1M seek=$((verity_start / mib)) conv=notrunc status=none
timing "$P: disk"

# --- 8. outputs and measurements ------------------------------------------------------
for f in disk.raw uki.efi cmdline.txt; do cp "$W/$f" "$OUT/$f"; done
for f in vmlinuz initrd.cpio kms-node packages.txt tools-packages.txt rustc-version.txt; do cp "$WORK/$f" "$OUT/$f"; done
cp "$TOOLS/usr/share/ovmf/OVMF.fd" "$OUT/OVMF.fd"
printf '%s\n' "$roothash" >"$OUT/roothash.txt"
log "[$P] kernel Authenticode check against Debian's signature"
# kms-measure from the same commit as the image.
measure() { cargo run --quiet --locked --manifest-path "$SRC/Cargo.toml" -p kms-measure -- "$@"; }
measure authenticode --check-signature "$OUT/vmlinuz" >"$OUT/kernel-authenticode.txt"
log "[$P] measurements"
measure release \
    --name "$release" --disk "$OUT/disk.raw" --uki "$OUT/uki.efi" --firmware "$OUT/OVMF.fd" \
    --commit "$COMMIT" --source-date-epoch "$SOURCE_DATE_EPOCH" --packages "$OUT/packages.txt" \
    --output "$OUT/measurements.json"
(cd "$OUT" && sha256sum disk.raw uki.efi vmlinuz initrd.cpio kms-node OVMF.fd measurements.json >SHA256SUMS)
timing "$P: measurements"
cp "$WORK/timings.txt" "$OUT/timings.txt"
ln -sfn "$release" "$BUILD/out/latest-$P"
[[ $P == dev ]] && ln -sfn "$release" "$BUILD/out/latest"
log "[$P] done: $OUT ($(du -h --apparent-size "$OUT/disk.raw" | cut -f1) disk, $(($(date +%s) - started)) s)"
cat "$OUT/SHA256SUMS"
}

for p in $PROFILES; do build_profile "$p"; done
