#!/usr/bin/env bash
# Builds the image and brings up an initialised rampart cluster of 3 or 5 nodes:
#   cluster/up.sh 3|5            (cluster/down.sh 3|5 removes it, volumes included)
# Then: rampart --endpoint http://127.0.0.1:7401 cluster status
set -euo pipefail
n="${1:-3}"
case "$n" in 3|5) ;; *) echo "usage: $0 3|5" >&2; exit 2 ;; esac
here="$(cd "$(dirname "$0")" && pwd)"
"$here/build-image.sh" "${RAMPART_IMAGE:-rampart:local}"
compose=(docker-compose -p "rampart$n" -f "$here/compose-$n.yml")
services=()
for i in $(seq 1 "$n"); do services+=("node$i"); done
"${compose[@]}" up -d "${services[@]}"
members=()
for i in $(seq 1 "$n"); do members+=(--member "$i=node$i:7400"); done
# Init through node 1's own binary (the host may have no rampart); retried until node 1 listens.
c1="$("${compose[@]}" ps -q node1)"
for _ in $(seq 1 60); do
  if docker exec "$c1" /rampart --endpoint http://127.0.0.1:7400 cluster init "${members[@]}" >/dev/null 2>&1; then
    break
  fi
  sleep 0.5
done
# Healthy = every node answers a linearizable read (a leader is known).
for _ in $(seq 1 120); do
  healthy=0
  for s in "${services[@]}"; do
    c="$("${compose[@]}" ps -q "$s")"
    [[ "$(docker inspect -f '{{.State.Health.Status}}' "$c")" == healthy ]] && healthy=$((healthy + 1))
  done
  [[ "$healthy" == "$n" ]] && break
  sleep 1
done
docker exec "$c1" /rampart --endpoint http://127.0.0.1:7400 cluster status
[[ "$healthy" == "$n" ]] || { echo "only $healthy of $n nodes healthy" >&2; exit 1; }
echo "rampart: $n nodes up; endpoints http://127.0.0.1:7401..740$n"
