#!/usr/bin/env bash
# The Python client's push of a 1,000,000-row DataFrame of rate signals against the Rust load
# generator (examples/loadgen.rs, `ingest`) with the same batch size and requests in flight, on
# the same 3-node cluster, alternating ROUNDS times (docs/bench.md, "Python client push").
#   bench/python_push.sh                         # 1,000,000 rows, batches of 1000, 1 and 4 in flight
#   ROWS=200000 INFLIGHT="4" ROUNDS=1 bench/python_push.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
BATCH=${BATCH:-1000}
INFLIGHT=${INFLIGHT:-1 4}
ROUNDS=${ROUNDS:-2}
SECS=${SECS:-8}
cargo build --release --locked --bin rampart --example loadgen
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/rampart
LOAD=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/loadgen
VENV=${PYBENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/rampart-pybench}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "./clients/python[pandas]"
rm -rf clients/python/build clients/python/*.egg-info
# shellcheck source=bench/cluster.sh
source bench/cluster.sh
start_cluster
# The Python rows are made before they are sent: a 2-minute window with 110 s of grace keeps them on time (the first python run waits for it to open).
sed -e 's/^gate: bench/gate: pybench/' -e 's/^window: 2s/window: 2m/' -e 's/^grace: 1s/grace: 110s/' "$WORK/bench.yaml" >"$WORK/pybench.yaml"
"$BIN" --endpoint 127.0.0.1:17101 contract apply -f "$WORK/pybench.yaml" >/dev/null
echo "# $(date -u +%FT%TZ) $(nproc) cores, $ROWS rows, batches of $BATCH"
for round in $(seq 1 "$ROUNDS"); do
  for n in $INFLIGHT; do
    "$LOAD" ingest "$GRPC" "$n" "$SECS" "$BATCH"
    "$VENV/bin/python" bench/python_push.py "$GRPC" pybench "$ROWS" "$BATCH" "$n"
  done
done
