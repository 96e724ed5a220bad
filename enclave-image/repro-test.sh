#!/usr/bin/env bash
# Reproducibility test: builds the image from the same commit twice, each time in its
# own build directory, with its own freshly bootstrapped tools tree and its own empty
# cargo target directory, and requires bit-identical outputs (SHA256SUMS).
#
# REPRO_BASELINE=<build>/out compares one fresh build against an earlier build of the
# same commit (its latest-dev and latest-production) instead of building twice.
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
    a_out=$(readlink -f "$REPRO_BASELINE")
else
    build a
    a_out=$base/a/out
fi
build b
b_out=$base/b/out

failed=0
for profile in dev production; do
    a=$(readlink -f "$a_out/latest-$profile")
    b=$(readlink -f "$b_out/latest-$profile")
    echo "repro: $profile: comparing $a and $b"
    if cmp -s "$a/SHA256SUMS" "$b/SHA256SUMS"; then
        cat "$a/SHA256SUMS"
        echo "repro: $profile: bit-identical"
        continue
    fi
    failed=1
    diff "$a/SHA256SUMS" "$b/SHA256SUMS" || true
    # Narrow it down: the intermediate artefacts of each build.
    for f in kms-node vmlinuz initrd.cpio uki.efi; do
        cmp -s "$a/$f" "$b/$f" || echo "repro: $profile: $f differs"
    done
    for f in root.erofs root.verity esp.img; do
        cmp -s "$(dirname "$(dirname "$a")")/work/$profile/$f" "$(dirname "$(dirname "$b")")/work/$profile/$f" 2>/dev/null ||
            echo "repro: $profile: $f differs (or is not kept)"
    done
done
if ((failed)); then
    echo "repro: FAILED: outputs differ" >&2
    exit 1
fi
echo "repro: PASSED: every profile bit-identical"
