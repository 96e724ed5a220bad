#!/usr/bin/env bash
# Boot smoke test of the enclave image: boots the built disk under qemu-system-x86_64
# (KVM if this host offers it, software emulation otherwise; never TDX), with the
# measured firmware, a blank data disk and kms-node's port forwarded to 127.0.0.1,
# and waits for GET /health to answer. Bounded by SMOKE_TIMEOUT seconds (default 600).
#
# Exit status: 0 passed, 1 failed, 0 with "SKIPPED" when qemu is not installed.
#
# SMOKE_PROFILE selects the image: dev (default) must answer /health "ok" with its
# insecure modes announced; production gets a data disk provisioned like an operator's
# (provision-data-disk.sh: sealed operator key, certificate and sealed TLS key, peers)
# and must wait locked for its passphrase, announce no insecure mode, and, asked for an
# unlock challenge, reach the configfs-tsm report core as user kms (which answers "no
# such device" outside a TD, having no TDX provider): the quote path works up to the
# hardware.
#
# With swtpm installed (SMOKE_TPM=0 to skip) the VM also gets a virtual TPM: the
# firmware, systemd-stub and the kernel then measure the boot into it as they would
# into the RTMRs, the image prints the TPM event log on the console, and the test
# requires every RTMR1/RTMR2 event kms-measure predicts to be in that log, in order.
# This checks the measurement model against real components without TDX hardware.
#
# Environment: SMOKE_PROFILE, IMAGE_DIR (default enclave-image/build/out/latest-<profile>), SMOKE_TIMEOUT,
# SMOKE_ACCEL (tcg, kvm, or kvm:tcg), SMOKE_KEEP=1 keeps the console log and data disk.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
PROFILE=${SMOKE_PROFILE:-dev}
case $PROFILE in dev | production) ;; *) echo "FAILED: SMOKE_PROFILE must be dev or production" >&2; exit 1 ;; esac
IMAGE_DIR=${IMAGE_DIR:-$here/build/out/latest-$PROFILE}
TIMEOUT=${SMOKE_TIMEOUT:-600}
QEMU=${QEMU:-qemu-system-x86_64}

if ! command -v "$QEMU" >/dev/null 2>&1; then
    echo "SKIPPED: $QEMU is not installed (enclave-image/install-deps.sh installs qemu-system-x86)"
    exit 0
fi
for f in disk.raw OVMF.fd; do
    [[ -f $IMAGE_DIR/$f ]] || { echo "FAILED: $IMAGE_DIR/$f missing: run make image first" >&2; exit 1; }
done

# Software emulation by default: it works everywhere. SMOKE_ACCEL=kvm on a host with
# working (nested) virtualisation is much faster.
accel=${SMOKE_ACCEL:-tcg}
accel_args=()
IFS=: read -ra accels <<<"$accel"
for a in "${accels[@]}"; do accel_args+=(-accel "$a"); done

tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
console=$tmp/console.log
if [[ $PROFILE == production ]]; then
    # The operator's side, as docs/operators.md describes it: a sealed key file, a
    # certificate whose key is sealed under the same passphrase, a peering file.
    [[ -x $IMAGE_DIR/kms-node ]] || { echo "FAILED: $IMAGE_DIR/kms-node missing" >&2; exit 1; }
    command -v openssl >/dev/null || { echo "FAILED: openssl is needed to make the smoke test's certificate" >&2; exit 1; }
    export KMS_OPERATOR_KEY_PASSPHRASE="smoke test passphrase $port"
    prov=$tmp/provision
    mkdir -p "$prov"
    "$IMAGE_DIR/kms-node" keygen --scheme ecdsa --out "$prov/operator.key" >"$prov/keygen.json"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=kms-smoke \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$prov/tls.key" -out "$prov/node.crt" 2>/dev/null
    "$IMAGE_DIR/kms-node" seal --purpose tls-key --in "$prov/tls.key" --out "$prov/node.key.sealed" 2>/dev/null
    rm -f "$prov/tls.key"
    python3 - "$prov/keygen.json" "$port" >"$prov/peers.toml" <<'PY'
import json, sys
k = json.load(open(sys.argv[1]))
print("[[operators]]")
print(f'address = "{k["address"]}"')
print(f'url = "https://127.0.0.1:{sys.argv[2]}/"')
print("[operators.public_key]")
print(f'scheme = "{k["public_key"]["scheme"]}"')
print(f'key = "{k["public_key"]["key"]}"')
PY
    unset KMS_OPERATOR_KEY_PASSPHRASE
    "$here/provision-data-disk.sh" --out "$tmp/data.raw" --size 256M --key "$prov/operator.key" \
        --cert "$prov/node.crt" --tls-key "$prov/node.key.sealed" --ca "$prov/node.crt" \
        --peers "$prov/peers.toml" >/dev/null
else
    truncate -s 256M "$tmp/data.raw"
fi
qemu_pid=
finish() {
    # Keeps the test's own exit status: nothing here may turn a pass into a failure.
    local status=$?
    if [[ -n $qemu_pid ]]; then
        kill "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    if [[ -n ${swtpm_pid:-} ]]; then
        kill "$swtpm_pid" 2>/dev/null || true
    fi
    if [[ ${SMOKE_KEEP:-0} == 1 ]]; then
        echo "kept: $tmp"
    else
        rm -rf "$tmp"
    fi
    exit "$status"
}
trap finish EXIT

tpm_args=()
swtpm_pid=
if [[ ${SMOKE_TPM:-1} == 1 ]] && command -v swtpm >/dev/null 2>&1 && command -v swtpm_setup >/dev/null 2>&1; then
    mkdir -p "$tmp/tpm"
    # A SHA-384 bank, so that the log has the digests TDVF would extend into RTMRs.
    swtpm_setup --tpm2 --tpmstate "$tmp/tpm" --pcr-banks sha256,sha384 --overwrite >"$tmp/swtpm_setup.log" 2>&1 ||
        { cat "$tmp/swtpm_setup.log" >&2; exit 1; }
    swtpm socket --tpm2 --tpmstate dir="$tmp/tpm" --ctrl type=unixio,path="$tmp/swtpm.sock" \
        --flags startup-clear >"$tmp/swtpm.log" 2>&1 &
    swtpm_pid=$!
    for _ in $(seq 50); do [[ -S $tmp/swtpm.sock ]] && break; sleep 0.1; done
    tpm_args=(-chardev socket,id=chrtpm,path="$tmp/swtpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm
        -device tpm-crb,tpmdev=tpm0)
else
    echo "smoke: no virtual TPM (swtpm not installed or SMOKE_TPM=0): the measurement check is skipped"
fi

echo "smoke: booting the $PROFILE profile, $(readlink -f "$IMAGE_DIR") (accelerators: $accel), /health on 127.0.0.1:$port, timeout ${TIMEOUT}s"
started=$(date +%s)
# The image disk is attached read-only: the root is dm-verity, the ESP is never written.
# romfile= keeps the NIC's option ROM out of the boot (it would be measured into RTMR1).
"$QEMU" "${accel_args[@]}" -machine q35 -cpu max -smp 2 -m 2048 \
    -bios "$IMAGE_DIR/OVMF.fd" \
    -drive if=none,id=os,file="$IMAGE_DIR/disk.raw",format=raw,readonly=on \
    -device virtio-blk-pci,drive=os,bootindex=0 \
    -drive if=none,id=data,file="$tmp/data.raw",format=raw \
    -device virtio-blk-pci,drive=data,serial=kms-data \
    -netdev user,id=net0,hostfwd=tcp:127.0.0.1:"$port"-:8001 \
    -device virtio-net-pci,netdev=net0,romfile= \
    "${tpm_args[@]}" \
    -display none -monitor none -serial file:"$console" -no-reboot \
    >"$tmp/qemu.log" 2>&1 &
qemu_pid=$!

health=
while :; do
    elapsed=$(($(date +%s) - started))
    if ! kill -0 "$qemu_pid" 2>/dev/null; then
        qemu_pid=
        echo "FAILED: qemu exited after ${elapsed}s" >&2
        tail -n 40 "$tmp/qemu.log" "$console" >&2
        exit 1
    fi
    if grep -q 'internal error' "$tmp/qemu.log"; then
        echo "FAILED: the accelerator failed ($accel):" >&2
        head -n 3 "$tmp/qemu.log" >&2
        exit 1
    fi
    if health=$(curl -fsS --max-time 3 "http://127.0.0.1:$port/health" 2>/dev/null); then
        break
    fi
    if ((elapsed >= TIMEOUT)); then
        echo "FAILED: no /health answer within ${TIMEOUT}s; last console lines:" >&2
        tail -n 60 "$console" >&2
        exit 1
    fi
    sleep 2
done
elapsed=$(($(date +%s) - started))

fail=0
echo "smoke: /health answered after ${elapsed}s: $health"
if [[ $PROFILE == dev ]]; then
    grep -q '"status":"ok"' <<<"$health" || { echo "FAILED: /health status is not ok" >&2; fail=1; }
    grep -q 'attestation-insecure-dev' <<<"$health" || { echo "FAILED: /health does not announce insecure-dev attestation" >&2; fail=1; }
else
    grep -q '"status":"locked"' <<<"$health" || { echo "FAILED: /health status is not locked (the key is sealed)" >&2; fail=1; }
    grep -q '"insecureModes":\[\]' <<<"$health" || { echo "FAILED: the production image announces insecure modes" >&2; fail=1; }
    address=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["address"])' "$prov/keygen.json")
    grep -qi "\"operatorAddress\":\"$address\"" <<<"$health" || { echo "FAILED: /health names another operator than the data disk's ($address)" >&2; fail=1; }
    # An unlock challenge needs a quote. Outside a TD the TSM core refuses, having no
    # provider: "No such device or address" (ENXIO) when user kms creates the report
    # entry (Linux 6.12), or when it reads the quote. A permission problem would be
    # EACCES/EPERM (the kms group's access, kms-tsm-access.service) or EROFS
    # (kms-node.service's read-only /sys), reported before the TSM core is reached.
    challenge=$(curl -sS --max-time 30 -w '\n%{http_code}' "http://127.0.0.1:$port/unlock" || true)
    echo "smoke: GET /unlock -> $(tr '\n' ' ' <<<"$challenge")"
    if [[ $(tail -n1 <<<"$challenge") != 503 ]] || ! grep -q '"quote_unavailable"' <<<"$challenge"; then
        echo "FAILED: expected 503 quote_unavailable from a TD without the TDX device" >&2
        fail=1
    elif ! grep -q 'os error 6)' <<<"$challenge"; then
        echo "FAILED: the quote failed before the TSM core (configfs-tsm permissions or mount?)" >&2
        fail=1
    else
        echo "smoke: user kms reached the configfs-tsm report core through its access rights; only the TDX provider is missing"
    fi
fi
if grep -qi 'login:' "$console"; then
    echo "FAILED: a login prompt appeared on the console" >&2
    fail=1
fi
# The kernel's view, from the console: configfs-tsm needs the tdx_guest driver, which
# only binds inside a TD, so here only the configfs mount is expected.
grep -q 'kms-initrd' "$console" && { echo "FAILED: the initrd reported an error" >&2; fail=1; }
if ((${#tpm_args[@]})); then
    # The event log the image prints once per boot (kms-eventlog.service).
    for _ in $(seq 60); do grep -aq '^KMS-EVENTLOG-END' "$console" && break; sleep 1; done
    # (the serial line ends lines with CR LF)
    tr -d '\r' <"$console" |
        awk '/^KMS-EVENTLOG-BEGIN .*binary_bios_measurements/ {on=1; next} /^KMS-EVENTLOG-END/ {on=0} on && /^[A-Za-z0-9+\/=]+$/' |
        base64 -d >"$tmp/tpm-eventlog.bin" 2>/dev/null || true
    if [[ ! -s $tmp/tpm-eventlog.bin ]]; then
        echo "FAILED: no TPM event log on the console" >&2
        fail=1
    elif (cd "$here/.." && cargo run --quiet --locked -p kms-measure -- boot --disk "$IMAGE_DIR/disk.raw" \
        --uki "$IMAGE_DIR/uki.efi" --check-log "$tmp/tpm-eventlog.bin" --tpm) >"$tmp/measure-check.txt" 2>&1; then
        grep '^rtmr[12]:' "$tmp/measure-check.txt"
        echo "smoke: the virtual TPM's event log contains every predicted RTMR1/RTMR2 event, in order"
    else
        cat "$tmp/measure-check.txt" >&2
        echo "FAILED: the event log differs from kms-measure's prediction" >&2
        fail=1
    fi
fi
# Keep the evidence next to the image (not part of its SHA256SUMS).
cp "$console" "$IMAGE_DIR/smoke-console.log" 2>/dev/null || true
[[ -s $tmp/tpm-eventlog.bin ]] && cp "$tmp/tpm-eventlog.bin" "$IMAGE_DIR/smoke-tpm-eventlog.bin"
if ((fail)); then
    tail -n 60 "$console" >&2
    exit 1
fi
echo "smoke: PASSED in ${elapsed}s"
