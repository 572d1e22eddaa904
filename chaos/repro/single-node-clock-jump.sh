#!/usr/bin/env bash
# A single-node cluster restarted with its wall clock 2 h ahead (libfaketime, FAKETIME=+2h,
# monotonic clock untouched), as in issue 8: before the fix it judged 3,600 empty windows per
# cohort in 4 s and then refused every on-time signal as late.
#   RAMPART_BIN=target/release/rampart chaos/repro/single-node-clock-jump.sh
# One node on 127.0.0.41:7510 with a 2 s-window contract; 4 s of normal running; stopped;
# restarted under +2h; 4 s later: how many decisions the restart added, and whether a batch
# of on-time signals (true clock) is accepted. Exits 1 when more than 10 decisions were added
# or the batch was refused.
set -u
cd "$(dirname "$0")/../.."
bin="${RAMPART_BIN:-target/release/rampart}"
lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
[[ -f "$lib" ]] || { echo "needs libfaketime (apt-get install faketime)"; exit 2; }
dir="$(mktemp -d)"
ep=http://127.0.0.41:7510
trap 'kill -9 "$(cat "$dir/pid" 2>/dev/null)" 2>/dev/null; rm -rf "$dir"' EXIT
cat >"$dir/c.yaml" <<'YAML'
gate: jump
variants: { treatment: on, fallback: off }
ladder: [1, 5, 10, 25, 50, 100]
stage_min_duration: 2s
window: 2s
grace: 500ms
cohorts: [a, b]
metrics:
  - name: errors
    kind: rate
    better: lower
    min_samples: 50
    kill: { above: 0.5 }
YAML
start() { # start [faketime spec]
  if [[ -n "${1:-}" ]]; then
    (LD_PRELOAD=$lib FAKETIME="$1" DONT_FAKE_MONOTONIC=1 RAMPART_LOG=warn "$bin" serve --id 1 --listen 127.0.0.41:7510 --data "$dir/n1" >>"$dir/n1.log" 2>&1 & echo $! >"$dir/pid")
  else
    (RAMPART_LOG=warn "$bin" serve --id 1 --listen 127.0.0.41:7510 --data "$dir/n1" >>"$dir/n1.log" 2>&1 & echo $! >"$dir/pid")
  fi
  for _ in $(seq 100); do "$bin" --endpoint $ep health >/dev/null 2>&1 && return; sleep 0.1; done
}
version() { "$bin" --endpoint $ep --json gate get jump 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'; }
start
"$bin" --endpoint $ep cluster init >/dev/null
for _ in $(seq 50); do "$bin" --endpoint $ep contract apply -f "$dir/c.yaml" >/dev/null 2>&1 && break; sleep 0.2; done
sleep 4
before=$(version)
kill -TERM "$(cat "$dir/pid")"; while kill -0 "$(cat "$dir/pid")" 2>/dev/null; do sleep 0.1; done
start +2h
sleep 4
after=$(version)
now=$(python3 -c 'import time; print(int(time.time()*1000))')
python3 - "$now" >"$dir/s.jsonl" <<'PY'
import datetime, json, sys
at = datetime.datetime.fromtimestamp(int(sys.argv[1]) / 1000, datetime.timezone.utc)
at = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
for cohort in ("a", "b"):
    for arm in ("treatment", "control"):
        print(json.dumps({"gate": "jump", "metric": "errors", "cohort": cohort, "arm": arm,
                          "at": at, "events": 1, "trials": 100}))
PY
pushed=$("$bin" --endpoint $ep --json signal push -f "$dir/s.jsonl" 2>&1)
echo "decisions before restart: $before; 4 s after a restart under +2h: $after (+$((after - before)))"
echo "on-time batch after the restart: $pushed"
grep -h "clock skew" "$dir/n1.log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-220 | head -2
[[ $((after - before)) -le 10 ]] && [[ "$pushed" == *'"accepted":4'* || "$pushed" == *'"accepted": 4'* ]]
