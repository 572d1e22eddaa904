#!/usr/bin/env bash
# The console's gates page for GATES gates (default 1000, 4 cohorts each) on a follower of a
# 3-node loopback cluster, beside the JSON list of the same gates (`GET /v1/gates`, the anchor:
# the same linearizable read, serialised instead of rendered). farm-bench times whole curl
# processes in turn (A B A B ...); curl's own time_total gives the request alone.
#   bench/console.sh
#   GATES=200 RUNS=10 bench/console.sh
set -euo pipefail
cd "$(dirname "$0")/.."
GATES=${GATES:-1000}
RUNS=${RUNS:-20}
cargo build --release --locked --bin rampart
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/rampart
# shellcheck source=bench/cluster.sh
source bench/cluster.sh
start_cluster
follower=1
if [ "$(leader_id)" = 1 ]; then follower=2; fi
base=http://127.0.0.1:1720$follower
for i in $(seq 2 "$GATES"); do
  sed -e "s/^gate: bench/gate: bench-$i/" -e 's/^window: 2s/window: 1m/' "$WORK/bench.yaml" >"$WORK/g.yaml"
  printf 'cohorts: [ios, android, web, tv]\n' >>"$WORK/g.yaml"
  curl -sf -X PUT -H 'content-type: application/yaml' --data-binary @"$WORK/g.yaml" \
    "http://127.0.0.1:17201/v1/contracts/bench-$i" >/dev/null
done
wait_for "[ \$(curl -sf '$base/v1/gates?consistency=local' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"gates\"]))') = $GATES ]" "$GATES gates on node $follower"
echo "# $(date -u +%FT%TZ) $(nproc) cores, $GATES gates, node $follower (a follower)"
for path in / /v1/gates; do
  for _ in 1 2 3; do
    curl -sf -o /dev/null -w "$path  %{time_total}s  %{size_download} bytes\n" "$base$path"
  done
done
farm-bench -n "$RUNS" --timeout 300 --vs "curl -sf -o /dev/null $base/v1/gates" -- curl -sf -o /dev/null "$base/"
