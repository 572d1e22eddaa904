#!/usr/bin/env bash
# The benchmarks of docs/bench.md, in one run on this machine: a 3-node rampart cluster and a
# 3-member etcd cluster, both on loopback, loaded by the same client (examples/loadgen.rs).
#   bench/run.sh            # 10 s per measurement, 64 requests in flight
#   SECS=30 CONC=128 bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-10}
CONC=${CONC:-64}
if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1; then
  apt-get update && apt-get install -y --no-install-recommends etcd-server etcd-client
fi
cargo build --release --bin rampart --example loadgen
BIN=$PWD/target/release/rampart
LOAD=$PWD/target/release/examples/loadgen
# shellcheck source=bench/cluster.sh
source bench/cluster.sh

# --- rampart: 3 processes
start_cluster
RAMPART=$GRPC

# --- etcd: 3 members
CLUSTER=e1=http://127.0.0.1:12380,e2=http://127.0.0.1:22380,e3=http://127.0.0.1:32380
for i in 1 2 3; do
  etcd --name e$i --data-dir "$WORK/e$i" \
    --listen-client-urls http://127.0.0.1:${i}2379 --advertise-client-urls http://127.0.0.1:${i}2379 \
    --listen-peer-urls http://127.0.0.1:${i}2380 --initial-advertise-peer-urls http://127.0.0.1:${i}2380 \
    --initial-cluster "$CLUSTER" --initial-cluster-state new --logger zap --log-level error >"$WORK/e$i.log" 2>&1 &
  PIDS+=($!)
done
ETCD=127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379
wait_for "ETCDCTL_API=3 etcdctl --endpoints=$ETCD endpoint health" "etcd health"

echo "# $(date -u +%FT%TZ) $(nproc) cores, ${SECS}s each, ${CONC} in flight"
# etcd and rampart alternate twice, so a burst of other load on the machine hits both.
for round in 1 2; do
  "$LOAD" etcd "$ETCD" "$CONC" "$SECS"
  "$LOAD" ingest "$RAMPART" "$CONC" "$SECS" 1
done
"$LOAD" ingest 127.0.0.1:17101 "$CONC" "$SECS" 1
"$LOAD" ingest "$RAMPART" "$CONC" "$SECS" 100
"$LOAD" evaluate "$RAMPART" 1 "$SECS"
"$LOAD" evaluate "$RAMPART" 32 "$SECS"
"$LOAD" decision "$RAMPART" 10
