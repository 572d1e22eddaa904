#!/usr/bin/env bash
# Builds the image and brings up an initialised rampart cluster of 3 or 5 nodes, serving mutual
# TLS with access tokens:
#   cluster/up.sh 3|5            (cluster/down.sh 3|5 removes it, volumes and secrets included)
# The CA, certificates and tokens are made here, at start-up, by the image's own `rampart certs`
# and `rampart token access`, under cluster/.secrets/rampartN/ (git-ignored, never committed;
# RAMPART_SECRETS overrides the directory). Kept across `up.sh` runs, removed by `down.sh`.
# At the end it prints the environment the CLI needs (RAMPART_ENDPOINT, RAMPART_CA, ...).
set -euo pipefail
n="${1:-3}"
case "$n" in 3|5) ;; *) echo "usage: $0 3|5" >&2; exit 2 ;; esac
here="$(cd "$(dirname "$0")" && pwd)"
image="${RAMPART_IMAGE:-rampart:local}"
"$here/build-image.sh" "$image"
secrets="${RAMPART_SECRETS:-$here/.secrets/rampart$n}"
mkdir -p "$secrets"
chmod 700 "$secrets"
secrets="$(cd "$secrets" && pwd)"
export RAMPART_SECRETS="$secrets"
prefix="${RAMPART_SUBNET_PREFIX:-172.30.0}"
# Every node the compose file names (the spare included): its service name, its address on the
# network and the host's loopback (the published port), so peers, the healthcheck and the host's
# CLI all verify the name they dial. Clients: `admin` (the CLI) with an admin token.
nodes=()
for i in $(seq 1 $((n + 1))); do nodes+=(--node "node$i=node$i,$prefix.1$i,localhost,127.0.0.1"); done
in_image=(docker run --rm --network none --user "$(id -u):$(id -g)" -v "$secrets:/secrets" "$image")
"${in_image[@]}" certs --out /secrets "${nodes[@]}" --client admin
"${in_image[@]}" token access --out /secrets --client admin=admin
compose=(docker-compose -p "rampart$n" -f "$here/compose-$n.yml")
services=()
for i in $(seq 1 "$n"); do services+=("node$i"); done
"${compose[@]}" up -d "${services[@]}"
members=()
for i in $(seq 1 "$n"); do members+=(--member "$i=node$i:7400"); done
# The admin token, for the init through node 1's own binary (the host may have no rampart).
token="$(cat "$secrets/token-admin")"
c1="$("${compose[@]}" ps -q node1)"
# The node's certificate doubles as a client certificate inside its container.
tls=(--endpoint https://127.0.0.1:7400 --ca /secrets/ca.pem --cert /secrets/node.pem --key /secrets/node.key)
for _ in $(seq 1 60); do
  if docker exec -e RAMPART_TOKEN="$token" "$c1" /rampart "${tls[@]}" cluster init "${members[@]}" >/dev/null 2>&1; then
    break
  fi
  sleep 0.5
done
# Healthy = every node answers SERVING on gRPC health over TLS (a leader is known).
for _ in $(seq 1 120); do
  healthy=0
  for s in "${services[@]}"; do
    c="$("${compose[@]}" ps -q "$s")"
    [[ "$(docker inspect -f '{{.State.Health.Status}}' "$c")" == healthy ]] && healthy=$((healthy + 1))
  done
  [[ "$healthy" == "$n" ]] && break
  sleep 1
done
docker exec -e RAMPART_TOKEN="$token" "$c1" /rampart "${tls[@]}" cluster status
[[ "$healthy" == "$n" ]] || { echo "only $healthy of $n nodes healthy" >&2; exit 1; }
port="${RAMPART_PORT_PREFIX:-740}"
http="${RAMPART_HTTP_PORT_PREFIX:-750}"
cat <<EOT
rampart: $n nodes up, mutual TLS and access tokens; endpoints https://127.0.0.1:${port}1..${port}$n
HTTP (JSON API, /metrics, hooks): https://127.0.0.1:${http}1..${http}$n, e.g.
  curl --cacert $secrets/ca.pem https://127.0.0.1:${http}1/readyz
Reach it with (the CLI reads these variables):
  export RAMPART_ENDPOINT=https://127.0.0.1:${port}1
  export RAMPART_CA=$secrets/ca.pem
  export RAMPART_CERT=$secrets/admin.pem
  export RAMPART_KEY=$secrets/admin.key
  export RAMPART_TOKEN="\$(cat $secrets/token-admin)"
  rampart cluster status
  curl --cacert $secrets/ca.pem -H "Authorization: Bearer \$(cat $secrets/token-admin)" https://127.0.0.1:${http}1/v1/cluster
EOT
