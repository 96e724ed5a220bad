#!/usr/bin/env bash
# `make run`: a local cluster of operators, DKG, then an encrypt/decrypt round trip
# through the client; the cluster stays up until Ctrl-C. Development only.
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${KMS_DEVNET_NODES:-4}
BASE_PORT=${KMS_DEVNET_PORT:-18000}
INTERVAL=${KMS_DEVNET_INTERVAL:-30}
DATA=${KMS_DEVNET_DIR:-devnet-data}
# The app `kms-node devnet` registers (devnet-data/apps.toml).
APP_ID=demo-app

echo "== building kms-node and kms-client (release)"
cargo build --release --locked -p kms-node -p kms-client
BIN=target/release

URLS=""
for ((i = 0; i < NODES; i++)); do
  URLS="${URLS:+$URLS,}https://127.0.0.1:$((BASE_PORT + i))"
done

# The devnet makes a new CA at every start; the client trusts only it.
export KMS_CA_FILE="$DATA/ca.crt"
rm -f "$KMS_CA_FILE"

echo "== starting a devnet of $NODES operators (data in $DATA)"
"$BIN/kms-node" devnet --nodes "$NODES" --base-port "$BASE_PORT" --data-dir "$DATA" \
  --interval "$INTERVAL" &
DEVNET=$!
trap 'kill -INT $DEVNET 2>/dev/null; wait $DEVNET 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

echo "== waiting for the first DKG (sessions start every $INTERVAL s on the wall clock)"
deadline=$((SECONDS + 4 * INTERVAL + 30))
until "$BIN/kms-client" --nodes "$URLS" pubkey >/tmp/kms-demo-pubkey.json 2>/dev/null; do
  if ((SECONDS > deadline)); then
    echo "no agreed master public key after $((4 * INTERVAL + 30)) s; see $DATA/node*/node.log" >&2
    exit 1
  fi
  if ! kill -0 "$DEVNET" 2>/dev/null; then
    echo "the devnet exited; see $DATA/node*/node.log" >&2
    exit 1
  fi
  printf '.'
  sleep 2
done
echo
echo "== master public key (agreed by at least t operators):"
cat /tmp/kms-demo-pubkey.json

MSG="hello from EigenKMS at $(date -u +%FT%TZ)"
CT=$(mktemp)
printf '%s' "$MSG" | "$BIN/kms-client" --nodes "$URLS" encrypt --app-id "$APP_ID" --out "$CT"
echo "== plaintext : $MSG"
echo "== ciphertext: $(od -An -tx1 -v "$CT" | tr -d ' \n' | cut -c1-96)… ($(wc -c <"$CT") bytes, IBE to app '$APP_ID')"
# The nodes release an app's key only to a caller the app's registration names: the
# devnet registers `demo-app` with an owner key and a simulated build.
OUT=$("$BIN/kms-client" --nodes "$URLS" decrypt --app-id "$APP_ID" --in "$CT" \
  --owner-key "$DATA/owner.key")
echo "== decrypted with the app owner's key ($DATA/owner.key): $OUT"
OUT_TD=$("$BIN/kms-client" --nodes "$URLS" decrypt --app-id "$APP_ID" --in "$CT" \
  --attest simulated --simulated-build eigenkms-dev-app)
echo "== decrypted from the app's (simulated) TD: $OUT_TD"
if "$BIN/kms-client" --nodes "$URLS" decrypt --app-id "$APP_ID" --in "$CT" \
  --attest simulated --simulated-build some-other-build >/dev/null 2>&1; then
  echo "an unregistered build obtained the app key: FAILED" >&2
  exit 1
fi
echo "== an unregistered build is refused (403 measurement_not_allowed at every node)"
rm -f "$CT"
if [[ "$OUT" != "$MSG" || "$OUT_TD" != "$MSG" ]]; then
  echo "round trip FAILED" >&2
  exit 1
fi
echo "== round trip OK. The cluster keeps running (a reshare every $INTERVAL s):"
for ((i = 0; i < NODES; i++)); do echo "   https://127.0.0.1:$((BASE_PORT + i))  (/health /pubkey /metrics)"; done
echo "   (TLS from the devnet's own CA: curl --cacert $KMS_CA_FILE …; kms-client reads KMS_CA_FILE)"
echo "   key releases are recorded in $DATA/node*/audit.jsonl"
echo "== Ctrl-C stops it."
wait $DEVNET
