"""Pushes a DataFrame of rate signals with the Python client and prints one JSON line like
examples/loadgen.rs does (bench/python_push.sh runs both on the same cluster).

    python bench/python_push.py ENDPOINTS GATE ROWS BATCH IN_FLIGHT
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd

import rampart


def main() -> None:
    endpoints, gate, rows, batch, in_flight = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    client = rampart.connect(endpoints)
    # The gate's first judged window: rows in it stay on time until it closes, almost 4 minutes later.
    first = pd.Timestamp(client.gate(gate).cohorts[0].stage_since)
    while pd.Timestamp.now(tz="UTC") < first:
        time.sleep(0.1)
    rng = np.random.default_rng(int(time.time()))  # new rows each run: nothing is a duplicate
    frame = pd.DataFrame(
        {
            "gate": gate,
            "metric": "error_rate",
            "arm": np.where(rng.random(rows) < 0.5, "treatment", "control"),
            "at": first + pd.to_timedelta(rng.integers(0, 10**9, rows), unit="ns"),
            "events": rng.integers(0, 3, rows),
            "trials": rng.integers(50, 150, rows),
        }
    )
    with client:
        start = time.perf_counter()
        result = client.push(frame, batch_size=batch, in_flight=in_flight, progress=False)
        seconds = time.perf_counter() - start
    if result.rejected or result.duplicates or result.accepted != rows:
        sys.exit(f"{result.accepted} accepted, {result.duplicates} duplicates, {len(result.rejected)} rejected: "
                 f"{result.rejected[:3]}")
    print(json.dumps({"mode": "python push", "rows": rows, "signals_per_batch": batch, "concurrency": in_flight,
                      "seconds": round(seconds, 2), "signals_per_sec": round(rows / seconds)}))


if __name__ == "__main__":
    main()
