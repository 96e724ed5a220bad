#!/usr/bin/env bash
# Prepares the data disk of a production-profile node: an ext4 file system image with
# the operator's files where the image's /etc/kms/node.toml expects them (mounted at
# /var/lib/kms in the guest). Runs on the operator's machine; needs mke2fs (e2fsprogs)
# and neither root nor a loop device (mke2fs -d copies a directory into the image).
#
#   operator.key            the operator key file, sealed (kms-node keygen)
#   tls/node.crt            the node's TLS certificate chain (PEM, leaf first)
#   tls/node.key.sealed     its private key, sealed under the same passphrase
#                           (kms-node seal --purpose tls-key)
#   tls/operators-ca.crt    the roots peers' certificates chain to
#   peers.toml              the operator set (peering.source = "local")
#   collateral/             DCAP collateral of the operators' platforms (optional)
#   apps.toml               the /secrets app registry (optional)
#   releases/               approvals of the node's release (<release>.json + .sig,
#                           kms-measure sign), when it rolls out next to an older one
#
# Plaintext secrets are refused: the host that attaches this disk can read all of it.
# The node keeps its sealed key store on the same disk (store/), created on first start.
#
# Usage: provision-data-disk.sh --out data.raw [--size 4G] --key operator.key
#            --cert node.crt --tls-key node.key.sealed --ca operators-ca.crt
#            --peers peers.toml [--collateral DIR] [--apps apps.toml] [--releases DIR]
set -euo pipefail

usage() { sed -n '/^# Usage:/,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

out= size=4G key= cert= tls_key= ca= peers= collateral= apps= releases=
while (($#)); do
    case $1 in
    --out) out=$2 ;;
    --size) size=$2 ;;
    --key) key=$2 ;;
    --cert) cert=$2 ;;
    --tls-key) tls_key=$2 ;;
    --ca) ca=$2 ;;
    --peers) peers=$2 ;;
    --collateral) collateral=$2 ;;
    --apps) apps=$2 ;;
    --releases) releases=$2 ;;
    -h | --help) usage ;;
    *) echo "provision-data-disk: unknown argument $1" >&2; usage ;;
    esac
    shift 2 || usage
done
for v in out key cert tls_key ca peers; do
    [[ -n ${!v} ]] || { echo "provision-data-disk: --${v//_/-} is required" >&2; usage; }
done
for f in "$key" "$cert" "$tls_key" "$ca" "$peers" ${apps:+"$apps"}; do
    [[ -f $f ]] || { echo "provision-data-disk: $f: no such file" >&2; exit 1; }
done
[[ -z $collateral || -d $collateral ]] || { echo "provision-data-disk: $collateral: not a directory" >&2; exit 1; }
[[ -z $releases || -d $releases ]] || { echo "provision-data-disk: $releases: not a directory" >&2; exit 1; }
[[ -e $out ]] && { echo "provision-data-disk: $out exists; not overwriting a data disk" >&2; exit 1; }
command -v mke2fs >/dev/null || { echo "provision-data-disk: mke2fs not found (e2fsprogs)" >&2; exit 1; }

# Secrets must be sealed: the operator key file and the TLS key.
grep -Eq '"format"[[:space:]]*:[[:space:]]*"sealed"' "$key" ||
    { echo "provision-data-disk: $key is not a sealed operator key file (kms-node keygen without --insecure-plaintext)" >&2; exit 1; }
grep -q 'eigenkms-sealed-secret/v1' "$tls_key" && grep -Eq '"purpose"[[:space:]]*:[[:space:]]*"tls-key"' "$tls_key" ||
    { echo "provision-data-disk: $tls_key is not a sealed TLS key (kms-node seal --purpose tls-key)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
umask 077
mkdir -p "$stage/tls"
install -m 0600 "$key" "$stage/operator.key"
install -m 0644 "$cert" "$stage/tls/node.crt"
install -m 0600 "$tls_key" "$stage/tls/node.key.sealed"
install -m 0644 "$ca" "$stage/tls/operators-ca.crt"
install -m 0644 "$peers" "$stage/peers.toml"
[[ -n $apps ]] && install -m 0644 "$apps" "$stage/apps.toml"
if [[ -n $collateral ]]; then
    mkdir -p "$stage/collateral"
    cp -r "$collateral/." "$stage/collateral/"
fi
if [[ -n $releases ]]; then
    mkdir -p "$stage/releases"
    cp "$releases"/*.json "$releases"/*.json.sig "$stage/releases/"
fi
chmod 0700 "$stage"
# Owner root in the image: kms-node's StateDirectory= hands the tree to user kms at start.
mke2fs -q -t ext4 -L kms-data -E root_owner=0:0 -d "$stage" "$out" "$size"
echo "provision-data-disk: wrote $out ($size): attach it with serial=kms-data (docs/operators.md)"
