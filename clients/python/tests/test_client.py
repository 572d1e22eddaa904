"""The client against a real 3-node cluster: a DataFrame pushed twice counts once, rows that
are not signals are reported by row and column while the rest count, reads return
dataclasses, and a backtest over RPC is `rampart backtest --json` on the same file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import rampart
from conftest import ROOT, Cluster, first_window


def rate_rows(n: int, at: str) -> list[dict[str, object]]:
    return [
        {"gate": "notebook", "metric": "error_rate", "cohort": "mobile" if i % 2 else "web",
         "arm": "treatment" if i % 3 else "control", "at": at, "events": i % 7, "trials": 100 + i}
        for i in range(n)
    ]


def test_a_dataframe_pushed_twice_counts_once(cluster: Cluster, client: rampart.Client) -> None:
    before = client.gate("notebook").signals_accepted
    frame = pd.DataFrame(rate_rows(2500, first_window(client)))
    first = client.push(frame, progress=False)
    assert (first.accepted, first.duplicates, first.rejected) == (2500, 0, [])
    again = client.push(frame, progress=False)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 2500, [])
    assert client.gate("notebook").signals_accepted == before + 2500


def test_rows_that_are_not_signals_are_reported_and_the_rest_count(client: rampart.Client) -> None:
    at = first_window(client)
    rows = rate_rows(5, at)
    rows[1]["events"] = -1  # refused here: a count
    rows[2]["metric"] = "nope"  # refused by the cluster: no such metric
    del rows[3]["arm"]  # refused here: missing
    rows.append({"gate": "notebook", "metric": "csat", "cohort": "web", "arm": "treatment", "at": at, "n": 10, "sum": 42.0, "sum_sq": 180.0})
    before = client.gate("notebook").signals_accepted
    result = client.push(rows, progress=False)
    assert result.accepted == 3, result
    assert [(r.row, r.column) for r in result.rejected] == [(1, "events"), (2, "metric"), (3, "arm")], result.rejected
    assert "nope" in result.rejected[1].reason
    assert client.gate("notebook").signals_accepted == before + 3


def test_reads_return_dataclasses(client: rampart.Client) -> None:
    gates = client.gates()
    assert [g.gate for g in gates] == ["notebook"]
    assert "notebook" in gates._repr_html_()
    assert list(gates.to_pandas()["gate"]) == ["notebook"]
    gate = client.gate("notebook")
    assert {c.cohort for c in gate.cohorts} == {"mobile", "web"}
    e = client.evaluate("notebook", "user-42", "web")
    assert e.variant in ("new", "old") and e.treatment == (e.variant == "new")
    decisions = client.decisions("notebook")
    assert decisions[0].action == "contract"
    with pytest.raises(rampart.RampartError) as missing:
        client.gate("no-such-gate")
    assert missing.value.code.name == "NOT_FOUND"


def test_a_backtest_over_rpc_is_the_cli_backtest(cluster: Cluster, client: rampart.Client, tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    trace.write_bytes(subprocess.run(
        [str(cluster.binary), "simulate", "regression-mobile", "--seed", "3"], capture_output=True, check=True
    ).stdout)
    contract = ROOT / "examples" / "checkout-v2.yaml"
    cli = subprocess.run(
        [str(cluster.binary), "backtest", "--contract", str(contract), "--signals", str(trace), "--json"],
        capture_output=True, check=True, text=True,
    )
    report = client.backtest(contract, trace)
    assert report.report == json.loads(cli.stdout)
    assert report.rejected == []
    rollback = [d for d in report.decisions if d.cohort == "mobile" and d.verdict == "rollback"]
    assert rollback and rollback[0].evidence, report.decisions
    assert len(report.to_pandas()) == len(report.decisions)
    # The contract as text, the signals as a DataFrame: the same replay.
    # precise_float: pandas parses JSON numbers approximately by default.
    frame = pd.read_json(trace, lines=True, dtype=False, precise_float=True)
    again = client.backtest(contract.read_text(), frame)
    assert again.report == report.report
