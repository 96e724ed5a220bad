#!/usr/bin/env bash
# Type-checks every cargo-fuzz target (crypto/fuzz, protocol/fuzz) with the stable
# toolchain, so that a change to a decoder or the engine that breaks a target fails
# CI. Running them needs nightly and cargo-fuzz: `make fuzz-build`, then
# `cargo +nightly fuzz run <target>` in the crate's directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# One target directory for both fuzz workspaces (they are not workspace members).
export CARGO_TARGET_DIR="$root/target/fuzz-check"
for crate in crypto/fuzz protocol/fuzz; do
    cargo check --locked --quiet --manifest-path "$root/$crate/Cargo.toml" --bins
    echo "[fuzz] $crate: every target type-checks"
done
