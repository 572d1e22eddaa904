#!/usr/bin/env bash
# The hot path of docs/bench.md, in one run: the same question (gate `bench`, a new unit each
# call, LOCAL consistency) asked of a follower of a 3-node loopback cluster through every door,
# beside a tonic server that answers nothing but grpc.health.v1 (the floor of a unary call):
#   echo      grpc.health.v1.Health/Check on `loadgen echo-serve`
#   evaluate  rampart.v1.Gates/Evaluate
#   flagd     flagd.evaluation.v1.Service/ResolveBoolean on the flagd listener (when served)
#   ofrep     POST /ofrep/v1/evaluate/flags/bench over HTTP/1.1
# Each door ROUNDS times, alternating, so a burst of other load on the machine hits all.
#   bench/hot_path.sh                    # 10 s each, 1 in flight, 2 rounds
#   SECS=5 CONC=32 ROUNDS=3 bench/hot_path.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-10}
CONC=${CONC:-1}
ROUNDS=${ROUNDS:-2}
cargo build --release --locked --bin rampart --example loadgen
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/rampart
LOAD=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/loadgen
# shellcheck source=bench/cluster.sh
source bench/cluster.sh
start_cluster
follower=1
if [ "$(leader_id)" = 1 ]; then follower=2; fi
"$LOAD" echo-serve 127.0.0.1:17400 &
PIDS+=($!); disown $!
wait_for "$LOAD echo 127.0.0.1:17400 1 1" "the echo server"

echo "# $(date -u +%FT%TZ) $(nproc) cores, ${SECS}s each, ${CONC} in flight, node $follower (a follower)"
for round in $(seq 1 "$ROUNDS"); do
  "$LOAD" echo 127.0.0.1:17400 "$CONC" "$SECS"
  "$LOAD" evaluate "127.0.0.1:1710$follower" "$CONC" "$SECS"
  if [ -n "$FLAGD" ]; then "$LOAD" flagd "127.0.0.1:1730$follower" "$CONC" "$SECS"; fi
  "$LOAD" ofrep "127.0.0.1:1720$follower" "$CONC" "$SECS"
done
