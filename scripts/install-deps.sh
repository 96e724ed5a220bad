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

# The contract and chain tests: anvil and solc from the npm registry into the
# project-local .tools/ (node and npm from Debian when missing).
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        say "installing nodejs and npm (Debian packages)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "[deps] node and npm are missing and apt-get is not available: install Node.js >= 18" >&2
        exit 1
    fi
fi
"$(dirname "$0")/install-chain-tools.sh"

say "ok: $(cargo --version), $(cargo nextest --version | head -n1)"
