#!/usr/bin/env bash
# Fuzzes the HTTP edge with schemathesis (issue 9): a 3-node cluster of the release binary on
# free loopback ports, the example contract applied, then schemathesis over docs/openapi.yaml
# against a follower's HTTP listener (so writes are forwarded to the leader), bounded in time.
# Exits non-zero on any failed check, printing schemathesis' report of the failing request (a
# curl command that reproduces it) and the tail of each node's log. See docs/testing.md.
#
#   tests/schemathesis/run.sh                        # what CI runs
#   SCHEMATHESIS_MAX_TIME=300 SCHEMATHESIS_SEED=7 tests/schemathesis/run.sh
#
# RAMPART_BIN names a prebuilt binary (default: built here, target/release/rampart or under
# CARGO_TARGET_DIR). The virtualenv lives outside the clone (SCHEMATHESIS_VENV, default
# ~/.cache/rampart-schemathesis/<hash of requirements.txt>), so a fresh clone reuses it.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
# shellcheck source=tests/harness/venv.sh
source "$ROOT/tests/harness/venv.sh"
HERE=$ROOT/tests/schemathesis
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-100}   # seconds of fuzzing; the whole script stays under ~3 min warm
SEED=${SCHEMATHESIS_SEED:-1}
DEADLINE_S=30                            # for the cluster to start and be ready

# --- schemathesis, pinned, in its own virtualenv
if [ -z "${SCHEMATHESIS_VENV:-}" ]; then
  hash=$(sha256sum "$HERE/requirements.txt" | cut -c1-12)
  SCHEMATHESIS_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/rampart-schemathesis/$hash"
fi
if [ ! -x "$SCHEMATHESIS_VENV/bin/schemathesis" ]; then
  if ! command -v python3 >/dev/null 2>&1; then
    apt-get update && apt-get install -y --no-install-recommends python3
  fi
  make_venv "$SCHEMATHESIS_VENV"
  "$SCHEMATHESIS_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
fi
PY=$SCHEMATHESIS_VENV/bin/python
echo "schemathesis: $("$SCHEMATHESIS_VENV/bin/schemathesis" --version) in $SCHEMATHESIS_VENV"

# --- the release binary
if [ -z "${RAMPART_BIN:-}" ]; then
  # The same build chaos/run makes, so CI compiles it once.
  cargo build --release --locked --workspace --bins
  RAMPART_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/rampart"
fi
BIN=$RAMPART_BIN

# --- a 3-node cluster on free loopback ports
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  cd /
  for p in ${PIDS[@]+"${PIDS[@]}"}; do kill "$p" 2>/dev/null || true; done
  for p in ${PIDS[@]+"${PIDS[@]}"}; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Six ports the kernel hands out, held open together so none repeats.
read -r -a PORTS <<<"$("$PY" -c '
import socket
s = [socket.socket() for _ in range(6)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))
')"
GRPC=("${PORTS[@]:0:3}")
HTTP=("${PORTS[@]:3:3}")
MEMBERS=()
for i in 1 2 3; do
  g=${GRPC[$((i - 1))]} h=${HTTP[$((i - 1))]}
  RAMPART_LOG=warn "$BIN" serve --id "$i" --listen "127.0.0.1:$g" --http "127.0.0.1:$h" \
    --data "$WORK/n$i" >"$WORK/n$i.log" 2>&1 &
  PIDS+=($!)
  MEMBERS+=(--member "$i=127.0.0.1:$g")
done

logs() {
  for i in 1 2 3; do echo "--- node $i log (tail)"; tail -n 20 "$WORK/n$i.log" || true; done
}
fail() { echo "schemathesis/run.sh: $*" >&2; logs >&2; exit 1; }

# Polls `command` until it succeeds or DEADLINE_S passes.
until_ok() { # description, command...
  local what=$1 end=$((SECONDS + DEADLINE_S))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || fail "timed out after ${DEADLINE_S}s waiting for $what"
    sleep 0.2
  done
}
ready() { # port: /readyz answers 200
  "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "http://127.0.0.1:$1/readyz"
}

until_ok "cluster init" "$BIN" --endpoint "127.0.0.1:${GRPC[0]}" cluster init "${MEMBERS[@]}"
for h in "${HTTP[@]}"; do until_ok "/readyz on 127.0.0.1:$h" ready "$h"; done
until_ok "the example contract" "$BIN" --endpoint "127.0.0.1:${GRPC[0]}" contract apply -f examples/checkout-v2.yaml

# A follower's listener: every write goes through the forwarding path.
TARGET_HTTP=$("$PY" - "${HTTP[@]}" <<'PY'
import json, sys, urllib.request
ports = sys.argv[1:]
status = json.load(urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/v1/cluster", timeout=5))
leader = status["leader"]
print(next(p for i, p in enumerate(ports, 1) if i != leader))
PY
) || fail "reading the leader from /v1/cluster"
URL="http://127.0.0.1:$TARGET_HTTP"
echo "cluster ready; fuzzing $URL for at most ${MAX_TIME}s (seed $SEED)"

# --- schemathesis: one worker (two threads trip Python 3.11's ast; docs/testing.md)
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
CHECKS=$CHECKS,response_headers_conformance,negative_data_rejection,missing_required_header,unsupported_method
status=0
# From the scratch directory: schemathesis keeps a cache (.schemathesis/) in its working
# directory, which must not land in the clone.
cd "$WORK"
SCHEMATHESIS_HOOKS=$HERE/hooks.py "$SCHEMATHESIS_VENV/bin/schemathesis" run "$ROOT/docs/openapi.yaml" \
  --url "$URL" \
  --checks "$CHECKS" \
  --phases examples,coverage,fuzzing \
  --max-time "$MAX_TIME" \
  --workers 1 \
  --seed "$SEED" \
  --request-timeout 10 \
  --generation-database none \
  --report junit --report-dir "$WORK/report" \
  --no-color || status=$?
if [ "$status" -ne 0 ]; then
  fail "schemathesis failed (exit $status); the failing requests are above, each with a curl command that reproduces it"
fi
for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || fail "a node died during the run"; done
echo "schemathesis: every check passed"
