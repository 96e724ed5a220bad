#!/usr/bin/env bash
# Installs the chain tools into the project-local .tools/ (gitignored), idempotently:
# solc (solcjs) to compile contracts/ and anvil to run a local chain for the tests.
# Both come from the npm registry; a second run only checks the pinned versions.
#
# Prints nothing on success but the paths, so callers can use:
#   eval "$(scripts/install-chain-tools.sh --env)"   # sets KMS_ANVIL and KMS_SOLCJS
set -euo pipefail

SOLC_VERSION=0.8.37
ANVIL_VERSION=1.7.1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${KMS_CHAIN_TOOLS_DIR:-$root/.tools}"
modules="$tools/node_modules"
anvil="$modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
solcjs="$modules/solc/solc.js"

say() { printf '[chain-tools] %s\n' "$*" >&2; }

installed_version() {
    local pkg="$1"
    [ -f "$modules/$pkg/package.json" ] || return 0
    node -e 'process.stdout.write(require(process.argv[1]).version)' "$modules/$pkg/package.json"
}

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    say "node and npm are required (Debian: apt-get install nodejs npm)"
    exit 1
fi

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *) say "anvil is installed for linux-amd64 only; got $(uname -s)-$(uname -m)"; exit 1 ;;
esac

mkdir -p "$tools"
if [ ! -f "$tools/package.json" ]; then
    printf '{\n  "name": "eigenkms-chain-tools",\n  "private": true\n}\n' >"$tools/package.json"
fi

want=()
[ "$(installed_version solc)" = "$SOLC_VERSION" ] || want+=("solc@$SOLC_VERSION")
[ "$(installed_version @foundry-rs/anvil)" = "$ANVIL_VERSION" ] && [ -x "$anvil" ] \
    || want+=("@foundry-rs/anvil@$ANVIL_VERSION")

if [ "${#want[@]}" -gt 0 ]; then
    say "installing ${want[*]} into $tools"
    # Saved (exactly) into .tools/package.json: npm prunes unlisted packages, so an
    # unsaved install of one tool would remove the other.
    (cd "$tools" && npm install --no-audit --no-fund --save-exact --loglevel=error "${want[@]}" >&2)
fi

[ -x "$anvil" ] || { say "anvil binary missing at $anvil after install"; exit 1; }
[ -f "$solcjs" ] || { say "solc missing at $solcjs after install"; exit 1; }

if [ "${1:-}" = "--env" ]; then
    printf 'export KMS_ANVIL=%q\nexport KMS_SOLCJS=%q\n' "$anvil" "$solcjs"
else
    say "ok: anvil $("$anvil" --version | head -n1), solc $(node "$solcjs" --version)"
fi
