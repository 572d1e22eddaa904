#!/usr/bin/env bash
# Leader kill -9 -> first acknowledged write, for this commit and an anchor commit (default:
# the one before the pre-vote), in one run on this machine; then, with QUIET_SECONDS set, the
# elections a fault-free cluster of this commit holds under full ingest load.
#
#   bench/failover.sh [ANCHOR_COMMIT]     # KILLS=20, CONCURRENCY=64, QUIET_SECONDS=0
#   HEAD_FLAGS="--heartbeat-ms 50 --election-timeout-min-ms 150 --election-timeout-max-ms 250" \
#     bench/failover.sh                   # this commit's nodes with other timings
#
# Builds both release binaries (bench/anchor.sh), starts a 3-node cluster of each in turn on loopback, runs
# `loadgen acks` (one signal per request, 64 in flight, a worker whose call fails moves to the
# next node) and kills the leader KILLS times, 4 s apart, restarting it 2 s after each kill.
# Prints, per binary, the time from each kill to the first write acknowledged after it.
set -euo pipefail
cd "$(dirname "$0")/.."
ANCHOR="${1:-$(git log --format=%H -1 --grep='^Elections behind a pre-vote')~1}"
KILLS="${KILLS:-20}"
CONCURRENCY="${CONCURRENCY:-64}"
QUIET_SECONDS="${QUIET_SECONDS:-0}"
HEAD_FLAGS="${HEAD_FLAGS:-}"
WORK="$(mktemp -d)"
declare -A PID
cleanup() {
  for p in "${PID[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  git worktree remove --force "$WORK/anchor" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

. bench/anchor.sh
build_anchor_and_head "$ANCHOR"
ENDPOINTS=127.0.0.1:17401,127.0.0.1:17402,127.0.0.1:17403

start_node() { # binary dir, name, id
  local flags=()
  if [ "$2" != anchor ]; then read -r -a flags <<<"$HEAD_FLAGS"; fi
  RAMPART_LOG=warn "$1/rampart" serve --id "$3" --listen 127.0.0.1:1740"$3" ${flags[@]+"${flags[@]}"} \
    --data "$WORK/$2-r$3" >>"$WORK/$2-r$3.log" 2>&1 &
  PID[$3]=$!
  disown "$!"
}

# Who leads and in which term, as the first node that answers says: "ID TERM".
leader_term() {
  local bin="$1"
  for e in ${ENDPOINTS//,/ }; do
    if out=$("$bin/rampart" --endpoint "$e" --json cluster status 2>/dev/null); then
      python3 -c 'import json, sys; s = json.load(sys.stdin); print(s["leader"] or "none", s["term"])' <<<"$out" && return 0
    fi
  done
  echo "none 0"
}

start_cluster() { # binary dir, name
  for i in 1 2 3; do start_node "$1" "$2" $i; done
  for _ in $(seq 1 100); do
    "$1/rampart" --endpoint 127.0.0.1:17401 health >/dev/null 2>&1 && break
    sleep 0.2
  done
  "$1/rampart" --endpoint 127.0.0.1:17401 cluster init \
    --member 1=127.0.0.1:17401 --member 2=127.0.0.1:17402 --member 3=127.0.0.1:17403 >/dev/null
  for _ in $(seq 1 100); do
    [ "$(leader_term "$1" | cut -d' ' -f1)" != none ] && break
    sleep 0.2
  done
}

stop_cluster() {
  for i in 1 2 3; do kill -9 "${PID[$i]}" 2>/dev/null || true; done
}

run() {
  local name="$1" bin="$WORK/bin-$1"
  start_cluster "$bin" "$name"
  "$WORK/bin-head/loadgen" acks "$ENDPOINTS" "$CONCURRENCY" $((KILLS * 4 + 4)) >"$WORK/$name-acks.json" &
  local load=$!
  sleep 2
  : >"$WORK/$name-kills"
  for _ in $(seq 1 "$KILLS"); do
    local l
    l=$(leader_term "$bin" | cut -d' ' -f1)
    if [ "$l" = none ]; then sleep 1; continue; fi
    kill -9 "${PID[$l]}"
    date +%s%3N >>"$WORK/$name-kills"
    sleep 2
    start_node "$bin" "$name" "$l"
    sleep 2
  done
  wait "$load"
  stop_cluster
  echo "$name ($(git rev-parse --short "$([ "$name" = anchor ] && echo "$ANCHOR" || echo HEAD)")):"
  python3 - "$WORK/$name-acks.json" "$WORK/$name-kills" <<'PY'
import bisect, json, statistics, sys
acks = json.load(open(sys.argv[1]))["acked_ms"]
kills = [int(l) for l in open(sys.argv[2]) if l.strip()]
gaps = []
for k in kills:
    i = bisect.bisect_right(acks, k)
    if i < len(acks):
        gaps.append(acks[i] - k)
gaps.sort()
print(json.dumps({"kills": len(kills), "kill_to_first_ack_ms": gaps,
                  "p50_ms": statistics.median(gaps), "max_ms": gaps[-1]}))
PY
}

quiet() {
  local bin="$WORK/bin-head"
  start_cluster "$bin" quiet
  local before after
  before=$(leader_term "$bin")
  "$bin/loadgen" ingest "$ENDPOINTS" "$CONCURRENCY" "$QUIET_SECONDS" 1
  after=$(leader_term "$bin")
  stop_cluster
  echo "quiet, ${QUIET_SECONDS}s of ingest at $CONCURRENCY in flight, no fault: leader and term before '$before', after '$after'"
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, $KILLS kills, $CONCURRENCY in flight, head flags '$HEAD_FLAGS'"
run anchor
run head
if [ "$QUIET_SECONDS" -gt 0 ]; then quiet; fi
