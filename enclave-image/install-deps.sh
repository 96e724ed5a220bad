#!/usr/bin/env bash
# Installs the host packages the image build and the boot smoke test need, from the
# host's configured Debian archive, idempotently: a package already present is not
# touched, so a second run only checks. Everything else the build runs (ukify, mkfs,
# veritysetup, ...) comes from the pinned tools tree that build.sh bootstraps.
set -euo pipefail

say() { printf '[image-deps] %s\n' "$*"; }

# mmdebstrap: bootstraps the tools tree and the guest root (reproducible with
#   SOURCE_DATE_EPOCH); qemu-system-x86: the boot smoke test; swtpm, swtpm-tools: its
#   virtual TPM, whose event log checks the RTMR1/RTMR2 prediction; curl: /health.
wanted=(mmdebstrap qemu-system-x86 swtpm swtpm-tools curl)
[[ "${1:-}" == "--build-only" ]] && wanted=(mmdebstrap)

missing=()
for p in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "[image-deps] missing ${missing[*]}: run as root (apt-get install)" >&2
        exit 1
    fi
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
say "ok: ${wanted[*]}"
