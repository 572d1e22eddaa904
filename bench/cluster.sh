# Sourced by the benchmark scripts: a 3-node rampart cluster on loopback (gRPC 1710N, HTTP
# 1720N, flagd 1730N when the binary serves flagd) with the gate `bench` applied, stopped and
# removed on exit. Needs BIN; sets WORK, PIDS, GRPC, HTTP, FLAGD and wait_for.
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in ${PIDS[@]+"${PIDS[@]}"}; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

wait_for() { # command, description
  for _ in $(seq 1 100); do if eval "$1" >/dev/null 2>&1; then return 0; fi; sleep 0.2; done
  echo "timed out waiting for $2" >&2; exit 1
}

GRPC=127.0.0.1:17101,127.0.0.1:17102,127.0.0.1:17103
HTTP=127.0.0.1:17201,127.0.0.1:17202,127.0.0.1:17203
FLAGD=
if "$BIN" serve --help | grep -q -- '--flagd'; then
  FLAGD=127.0.0.1:17301,127.0.0.1:17302,127.0.0.1:17303
fi

start_cluster() {
  for i in 1 2 3; do
    local flagd=()
    if [ -n "$FLAGD" ]; then flagd=(--flagd 127.0.0.1:1730$i); fi
    RAMPART_LOG=warn "$BIN" serve --id $i --listen 127.0.0.1:1710$i --http 127.0.0.1:1720$i \
      ${flagd[@]+"${flagd[@]}"} --data "$WORK/r$i" >"$WORK/r$i.log" 2>&1 &
    PIDS+=($!); disown $!
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
}

# The node that leads now.
leader_id() {
  "$BIN" --endpoint 127.0.0.1:17101 --json cluster status | python3 -c 'import json, sys; print(json.load(sys.stdin)["leader"])'
}
