#!/usr/bin/env bash
# Breaching batch acknowledged -> rollback decision at a watcher, for this commit and an anchor
# commit (default: the one before early kills), in one run on this machine.
#
#   bench/early_kill.sh [ANCHOR_COMMIT]      # TRIALS=10 by default
#
# Builds both release binaries (bench/anchor.sh), starts a 3-node cluster of each in turn on
# loopback, and runs `loadgen decision` against it: per trial a fresh gate with 1 s windows, one breaching batch
# (50% errors against a 5% ceiling) mid-window through node 1, a watch on node 3.
set -euo pipefail
cd "$(dirname "$0")/.."
ANCHOR="${1:-$(git log --format=%H -1 --grep='^Kill rules checked on every committed batch')~1}"
TRIALS="${TRIALS:-10}"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  git worktree remove --force "$WORK/anchor" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

. bench/anchor.sh
build_anchor_and_head "$ANCHOR"

run() {
  local name="$1" bin="$WORK/bin-$1"
  PIDS=()
  for i in 1 2 3; do
    RAMPART_LOG=warn "$bin/rampart" serve --id $i --listen 127.0.0.1:1720$i --data "$WORK/$name-r$i" \
      >"$WORK/$name-r$i.log" 2>&1 &
    PIDS+=($!)
  done
  for _ in $(seq 1 100); do
    "$bin/rampart" --endpoint 127.0.0.1:17201 health >/dev/null 2>&1 && break
    sleep 0.2
  done
  "$bin/rampart" --endpoint 127.0.0.1:17201 cluster init \
    --member 1=127.0.0.1:17201 --member 2=127.0.0.1:17202 --member 3=127.0.0.1:17203 >/dev/null
  for _ in $(seq 1 100); do
    "$bin/rampart" --endpoint 127.0.0.1:17201 cluster status >/dev/null 2>&1 && break
    sleep 0.2
  done
  echo "$name ($(git rev-parse --short "$([ "$name" = anchor ] && echo "$ANCHOR" || echo HEAD)")):"
  "$bin/loadgen" decision 127.0.0.1:17201,127.0.0.1:17202,127.0.0.1:17203 "$TRIALS"
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
echo "# $(date -u +%FT%TZ) $(nproc) cores, $TRIALS trials"
run anchor
run head
