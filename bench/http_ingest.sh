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
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

wait_for() { # command, description
  for _ in $(seq 1 100); do if eval "$1" >/dev/null 2>&1; then return 0; fi; sleep 0.2; done
  echo "timed out waiting for $2" >&2; exit 1
}

for i in 1 2 3; do
  RAMPART_LOG=warn "$BIN" serve --id $i --listen 127.0.0.1:1710$i --http 127.0.0.1:1720$i \
    --data "$WORK/r$i" >"$WORK/r$i.log" 2>&1 &
  PIDS+=($!)
done
wait_for "$BIN --endpoint 127.0.0.1:17101 cluster init --member 1=127.0.0.1:17101 --member 2=127.0.0.1:17102 --member 3=127.0.0.1:17103" "rampart init"
wait_for "$BIN --endpoint 127.0.0.1:17101 health" "rampart health"
cat >"$WORK/bench.yaml" <<'YAML'
gate: bench
variants: { treatment: new, fallback: old }
ladder: [10, 100]
stage_min_duration: 1h
window: 2s
grace: 1s
metrics:
  - name: error_rate
    kind: rate
    better: lower
    kill: { above: 0.5 }
YAML
"$BIN" --endpoint 127.0.0.1:17101 contract apply -f "$WORK/bench.yaml" >/dev/null
sleep 3 # the gate's first window opens within one window length

GRPC=127.0.0.1:17101,127.0.0.1:17102,127.0.0.1:17103
HTTP=127.0.0.1:17201,127.0.0.1:17202,127.0.0.1:17203
if [ "$TARGET" = leader ]; then
  leader=$("$BIN" --endpoint 127.0.0.1:17101 --json cluster status | python3 -c 'import json, sys; print(json.load(sys.stdin)["leader"])')
  GRPC=127.0.0.1:1710$leader HTTP=127.0.0.1:1720$leader
fi
echo "# $(date -u +%FT%TZ) $(nproc) cores, ${SECS}s each, ${CONC} in flight, ${SIGNALS} signals a batch, clients: $TARGET"
for round in $(seq 1 "$ROUNDS"); do
  "$LOAD" ingest "$GRPC" "$CONC" "$SECS" "$SIGNALS"
  "$LOAD" http "$HTTP" "$CONC" "$SECS" "$SIGNALS"
done
