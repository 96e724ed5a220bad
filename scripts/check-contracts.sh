#!/usr/bin/env bash
# Recompiles contracts/ into a temporary directory and fails if the result differs
# from the committed artifacts in contracts/out/ (run by CI; fix with
# scripts/build-contracts.sh and commit contracts/out/).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$root/scripts/build-contracts.sh" "$tmp" 2>"$tmp/build.log" || { cat "$tmp/build.log" >&2; exit 1; }
rm -f "$tmp/build.log"
if ! diff -r "$root/contracts/out" "$tmp" >"$tmp.diff" 2>&1; then
    echo "[contracts] contracts/out/ is stale: run scripts/build-contracts.sh and commit the result" >&2
    head -c 4000 "$tmp.diff" >&2
    rm -f "$tmp.diff"
    exit 1
fi
rm -f "$tmp.diff"
echo "[contracts] contracts/out/ matches the sources"
