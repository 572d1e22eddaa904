#!/usr/bin/env bash
# Reproduces a stale linearizable read after every node is killed (found by the drills; the
# drill `kill-all-read` is the same scenario under the workload and the checker).
#   RAMPART_BIN=target/release/rampart chaos/repro/stale-read-after-restart.sh
# 3 nodes on 127.0.0.31-33:7500; an override is acknowledged (gate version 2); every node is
# killed -9 and restarted; the first linearizable GetGate on the restarted leader answers
# version 1 in most runs. Prints one line; exits 1 when the read was stale.
set -u
cd "$(dirname "$0")/../.."
bin="${RAMPART_BIN:-target/release/rampart}"
dir="$(mktemp -d)"
trap 'for i in 1 2 3; do kill -9 "$(cat "$dir/pid$i" 2>/dev/null)" 2>/dev/null; done; rm -rf "$dir"' EXIT
start() {
  for i in 1 2 3; do
    (RAMPART_LOG=warn "$bin" serve --id "$i" --listen "127.0.0.3$i:7500" --data "$dir/n$i" >>"$dir/n$i.log" 2>&1 &
      echo $! >"$dir/pid$i")
  done
}
version() { "$bin" --endpoint "$1" --json gate get checkout-v2 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])' 2>/dev/null; }
start
first=http://127.0.0.31:7500
for _ in $(seq 50); do "$bin" --endpoint $first cluster init --member 1=127.0.0.31:7500 --member 2=127.0.0.32:7500 --member 3=127.0.0.33:7500 >/dev/null 2>&1 && break; sleep 0.2; done
for _ in $(seq 50); do "$bin" --endpoint $first contract apply -f examples/checkout-v2.yaml >/dev/null 2>&1 && break; sleep 0.2; done
leader=$("$bin" --endpoint $first --json cluster status | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])')
at="http://127.0.0.3$leader:7500"
"$bin" --endpoint "$at" override hold checkout-v2 --actor repro --reason stale-read >/dev/null
acked=$(version "$at")
for i in 1 2 3; do kill -9 "$(cat "$dir/pid$i")"; done
sleep 0.5
start
seen=""
for _ in $(seq 200); do seen=$(version "$at") && [[ -n "$seen" ]] && break; sleep 0.02; done
echo "acknowledged version $acked; first linearizable read after restart (leader $leader): $seen"
[[ "$seen" -ge "$acked" ]]
