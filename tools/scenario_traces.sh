#!/bin/sh
# Regenerates the committed scenario traces (seed 1 of each scenario) that
# tests/scenarios.rs falls back on when python3 or the generator is not available.
#   tools/scenario_traces.sh path/to/gen.py
set -eu
gen="${1:?usage: tools/scenario_traces.sh path/to/gen.py}"
out="$(dirname "$0")/../tests/data/scenarios"
mkdir -p "$out"
for s in $(python3 "$gen" --list | awk '{print $1}'); do
  python3 "$gen" "$s" --seed 1 > "$out/$s-seed1.jsonl"
done
