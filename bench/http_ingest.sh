#!/usr/bin/env bash
# JSON ingest over HTTP (POST /v1/signals) against gRPC ingest (Signals/Ingest), the same load on
# the same cluster (docs/bench.md, "Ingest: HTTP JSON vs gRPC"): a 3-node rampart cluster on
# loopback with its HTTP listeners, loaded by examples/loadgen.rs in `ingest` and `http` modes
# alternately (ROUNDS times each), with the same batches, signals and requests in flight.
#   bench/http_ingest.sh                       # 10 s per measurement, 64 in flight, 1 signal a batch
#   SECS=8 CONC=64 SIGNALS=100 ROUNDS=3 bench/http_ingest.sh
#   TARGET=leader bench/http_ingest.sh         # every client on the leader (default: spread)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-10}
CONC=${CONC:-64}
SIGNALS=${SIGNALS:-1}
ROUNDS=${ROUNDS:-2}
TARGET=${TARGET:-spread}
cargo build --release --locked --bin rampart --example loadgen
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/rampart
LOAD=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/loadgen
# shellcheck source=bench/cluster.sh
source bench/cluster.sh
start_cluster
if [ "$TARGET" = leader ]; then
  leader=$(leader_id)
  GRPC=127.0.0.1:1710$leader HTTP=127.0.0.1:1720$leader
fi
echo "# $(date -u +%FT%TZ) $(nproc) cores, ${SECS}s each, ${CONC} in flight, ${SIGNALS} signals a batch, clients: $TARGET"
for round in $(seq 1 "$ROUNDS"); do
  "$LOAD" ingest "$GRPC" "$CONC" "$SECS" "$SIGNALS"
  "$LOAD" http "$HTTP" "$CONC" "$SECS" "$SIGNALS"
done
