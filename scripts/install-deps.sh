#!/usr/bin/env bash
# Installs what the build and the test suite need, idempotently: a second run only
# checks. Only package registries are used.
set -euo pipefail

say() { printf '[deps] %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
    echo "[deps] cargo is missing: install a Rust toolchain (>= 1.95) with rustup first" >&2
    exit 1
fi

if command -v rustup >/dev/null 2>&1; then
    installed=$(rustup component list --installed 2>/dev/null || true)
    for component in rustfmt clippy; do
        if ! grep -q "^${component}" <<<"$installed"; then
            say "adding rustup component ${component}"
            rustup component add "${component}"
        fi
    done
fi

if ! cargo nextest --version >/dev/null 2>&1; then
    say "installing cargo-nextest (one time, a few minutes)"
    cargo install --locked cargo-nextest
fi

# Later stages add: anvil (npm @foundry-rs/anvil) and solc (npm solc) into a
# project-local node_modules for the contract and chain tests.

say "ok: $(cargo --version), $(cargo nextest --version | head -n1)"
