#!/usr/bin/env bash
# Makes the secrets the manifests mount, at install time, and creates them in the namespace:
#   cluster/k8s/secrets.sh [--namespace NS] [--nodes N] [--cluster-domain D] [--replace] [--print]
# - rampart-tls     (pods):  ca.pem, rampart-I.pem / rampart-I.key per node I in 1..N (default 5,
#                            so scaling 3 -> 5 needs no new certificates), probe.pem / probe.key
#                            (the readiness probe's client certificate)
# - rampart-access  (pods):  access.toml: the cluster token and the admin token's SHA-256
# - rampart-admin   (init Job, operators): ca.pem, admin.pem, admin.key, token (the admin token)
# Each node certificate names its peer address rampart-I.rampart-peers.NS.svc.<domain> (and the
# shorter forms), the client Service (rampart, rampart.NS.svc.<domain>), localhost and 127.0.0.1.
# Made by `rampart certs` and `rampart token access` (RAMPART_BIN, else `rampart` on PATH, else
# target/release/rampart) in a temporary directory that is removed on exit: nothing is written
# anywhere else, the CA key is not kept (a new set of nodes means a new set: --replace).
# --print writes the Secret manifests to stdout instead of calling kubectl (secrets in clear:
# for `kubectl apply -f -` elsewhere, or for validate.py).
set -euo pipefail
ns=default
nodes=5
domain=cluster.local
replace=0
print=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    -n|--namespace) ns="$2"; shift 2 ;;
    --nodes) nodes="$2"; shift 2 ;;
    --cluster-domain) domain="$2"; shift 2 ;;
    --replace) replace=1; shift ;;
    --print) print=1; shift ;;
    *) echo "usage: $0 [--namespace NS] [--nodes N] [--cluster-domain D] [--replace] [--print]" >&2; exit 2 ;;
  esac
done
[[ "$nodes" =~ ^[1-9][0-9]?$ ]] || { echo "--nodes: 1 to 99" >&2; exit 2; }
bin="${RAMPART_BIN:-}"
if [[ -z "$bin" ]]; then
  if command -v rampart >/dev/null; then bin=rampart
  elif [[ -x "$(dirname "$0")/../../target/release/rampart" ]]; then bin="$(dirname "$0")/../../target/release/rampart"
  else echo "no rampart binary: set RAMPART_BIN or build it (cargo build --release)" >&2; exit 1
  fi
fi
if [[ "$print" == 0 ]]; then
  command -v kubectl >/dev/null || { echo "no kubectl (use --print to write the manifests)" >&2; exit 1; }
  if kubectl -n "$ns" get secret rampart-tls >/dev/null 2>&1 && [[ "$replace" == 0 ]]; then
    echo "secret rampart-tls is already in namespace $ns: pass --replace to make a new CA and new tokens (every pod must then restart, and the CLI take the new rampart-admin)" >&2
    exit 1
  fi
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
chmod 700 "$tmp"
svc="$ns.svc.$domain"
args=()
for i in $(seq 1 "$nodes"); do
  pod="rampart-$i"
  args+=(--node "$pod=$pod.rampart-peers.$svc,$pod.rampart-peers.$ns.svc,$pod.rampart-peers.$ns,$pod.rampart-peers,rampart.$svc,rampart.$ns.svc,rampart.$ns,rampart,localhost,127.0.0.1")
done
"$bin" certs --out "$tmp/certs" "${args[@]}" --client probe --client admin >/dev/null
"$bin" token access --out "$tmp/access" --client admin=admin >/dev/null
secret() {
  local name="$1"; shift
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n  labels: { app.kubernetes.io/name: rampart }\ntype: Opaque\ndata:\n' "$name" "$ns"
  local spec key file
  for spec in "$@"; do
    key="${spec%%=*}"; file="${spec#*=}"
    printf '  %s: %s\n' "$key" "$(base64 -w0 < "$file")"
  done
}
{
  tls=(ca.pem="$tmp/certs/ca.pem" probe.pem="$tmp/certs/probe.pem" probe.key="$tmp/certs/probe.key")
  for i in $(seq 1 "$nodes"); do
    tls+=("rampart-$i.pem=$tmp/certs/rampart-$i.pem" "rampart-$i.key=$tmp/certs/rampart-$i.key")
  done
  secret rampart-tls "${tls[@]}"
  secret rampart-access access.toml="$tmp/access/access.toml"
  secret rampart-admin ca.pem="$tmp/certs/ca.pem" admin.pem="$tmp/certs/admin.pem" \
    admin.key="$tmp/certs/admin.key" token="$tmp/access/token-admin"
} > "$tmp/secrets.yaml"
if [[ "$print" == 1 ]]; then
  cat "$tmp/secrets.yaml"
else
  kubectl -n "$ns" apply -f "$tmp/secrets.yaml"
  echo "secrets rampart-tls, rampart-access and rampart-admin made in namespace $ns for $nodes nodes" >&2
fi
