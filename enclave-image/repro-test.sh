#!/usr/bin/env bash
# Reproducibility test: builds the image from the same commit twice, each time in its
# own build directory, with its own freshly bootstrapped tools tree and its own empty
# cargo target directory, and requires bit-identical outputs (SHA256SUMS).
#
# REPRO_BASELINE=<out dir> compares one fresh build against an earlier build of the
# same commit instead of building twice (halves the time).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
base=${REPRO_DIR:-$here/build/repro}
mkdir -p "$base"
# Both builds use the same commit, even if the branch moves meanwhile.
COMMIT=$(git -C "$here/.." rev-parse "${COMMIT:-HEAD}")
export COMMIT
echo "repro: commit $COMMIT"

build() {
    local name=$1 started
    started=$(date +%s)
    rm -rf "${base:?}/$name"
    echo "repro: build $name ..."
    BUILD=$base/$name CARGO_TARGET_DIR=$base/$name/target REUSE_TOOLS=0 "$here/build.sh" >"$base/$name.log" 2>&1 ||
        { tail -n 30 "$base/$name.log" >&2; exit 1; }
    echo "repro: build $name took $(($(date +%s) - started)) s"
}

if [[ -n ${REPRO_BASELINE:-} ]]; then
    a=$(readlink -f "$REPRO_BASELINE")
else
    build a
    a=$(readlink -f "$base/a/out/latest")
fi
build b
b=$(readlink -f "$base/b/out/latest")

echo "repro: comparing $a and $b"
if cmp -s "$a/SHA256SUMS" "$b/SHA256SUMS"; then
    cat "$a/SHA256SUMS"
    echo "repro: PASSED: bit-identical"
    exit 0
fi
diff "$a/SHA256SUMS" "$b/SHA256SUMS" || true
# Narrow it down: the intermediate artefacts of each build.
for f in kms-node vmlinuz initrd.cpio uki.efi; do
    cmp -s "$a/$f" "$b/$f" || echo "repro: $f differs"
done
for f in root.erofs root.verity esp.img; do
    cmp -s "$(dirname "$(dirname "$a")")/work/$f" "$(dirname "$(dirname "$b")")/work/$f" 2>/dev/null ||
        echo "repro: $f differs (or is not kept)"
done
echo "repro: FAILED: outputs differ" >&2
exit 1
