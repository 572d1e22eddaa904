"""Watch, overrides, evidence and contracts against a real 3-node cluster: a watch resumes
without gap or duplicate after the node it watched is killed, an override whose answer is
lost is found in the log instead of being sent twice, `contract.apply` writes only changes,
and evidence rows carry what the decisions were taken on."""

from __future__ import annotations

import threading

import pytest

import rampart
from conftest import Cluster, first_window, wait_for

CONTRACT = {
    "gate": "applied",
    "variants": {"treatment": "on", "fallback": "off"},
    "ladder": [5, 25, 100],
    "stage_min_duration": "1h",
    "window": "1h",
    "metrics": [{"name": "error_rate", "kind": "rate", "better": "lower", "guardrail": True, "kill": {"above": 0.1}}],
}


def test_contract_apply_writes_only_changes(client: rampart.Client) -> None:
    first = client.contract.apply(CONTRACT)
    assert first.gate == "applied"
    # The same contract as YAML text, written differently: nothing written.
    text = "# the same contract\ngate: applied\nvariants: {fallback: off, treatment: on}\nladder: [5, 25, 100]\n" \
        "stage_min_duration: 60m\nwindow: 1h\nmetrics:\n" \
        "  - {name: error_rate, kind: rate, better: lower, guardrail: true, kill: {above: 0.10}}\n"
    same = client.contract.apply(text)
    assert same == rampart.Applied("applied", first.contract_version, first.gate_version, changed=False), same
    changed = client.contract.apply({**CONTRACT, "ladder": [5, 50, 100]})
    assert changed.changed and changed.contract_version == first.contract_version + 1, changed
    got = client.contract.get("applied")
    assert got.contract_version == changed.contract_version and "50" in got.yaml
    assert {c.gate for c in client.contract.list()} >= {"applied", "notebook"}
    with pytest.raises(rampart.RampartError) as bad:
        client.contract.apply({**CONTRACT, "ladder": "upwards"})
    assert bad.value.code.name == "INVALID_ARGUMENT" and "ladder" in bad.value.message, bad.value
    assert client.contract.delete("applied") > changed.gate_version
    with pytest.raises(rampart.RampartError):
        client.contract.get("applied")


def test_an_override_whose_answer_was_lost_is_found_in_the_log(client: rampart.Client) -> None:
    seen = client.gate("notebook").version
    held = client.override("notebook", "hold", cohort="web", reason="looking at a complaint", actor="ana")
    assert held.action == "override:hold" and held.cohort == "web" and held.version > seen, held
    assert {c.cohort: c.status for c in client.gate("notebook").cohorts}["web"] == "held"
    # What a retry checks before sending again, against what the cluster recorded.
    found = client._override_landed("notebook", seen, "override:hold", "web", "ana", "looking at a complaint")
    assert found is not None and found.version == held.version
    assert client._override_landed("notebook", seen, "override:hold", "web", "ana", "another reason") is None
    assert client._override_landed("notebook", seen, "override:hold", "mobile", "ana", "looking at a complaint") is None
    assert client._override_landed("notebook", held.version, "override:hold", "web", "ana", "looking at a complaint") is None
    resumed = client.override("notebook", "resume", cohort="web", reason="fine after all", actor="ana")
    assert resumed.version > held.version
    with pytest.raises(ValueError, match="exposure"):
        client.override("notebook", "set_exposure", reason="no figure")
    with pytest.raises(ValueError, match="kind"):
        client.override("notebook", "pause", reason="no such kind")
    with pytest.raises(rampart.RampartError) as unknown:
        client.override("notebook", "hold", cohort="desktop", reason="no such cohort")
    assert unknown.value.code.name == "NOT_FOUND", unknown.value


def test_evidence_rows_are_the_decisions_figures(cluster: Cluster, client: rampart.Client) -> None:
    # A decision with evidence: signals in the gate's first window, then the leader judges it
    # once the window and its grace have passed (1m + 30s); an early kill needs none of that,
    # so push a treatment far beyond the kill threshold in one cohort.
    at = first_window(client)
    rows = [
        {"gate": "notebook", "metric": "error_rate", "cohort": "mobile", "arm": arm, "at": at,
         "events": events, "trials": 1000}
        for arm, events in (("treatment", 900), ("control", 5))
        for _ in range(20)
    ]
    assert client.push(rows, progress=False).accepted == len(rows)
    wait_for("a decision with evidence", lambda: [e for e in client.evidence("notebook") if e.metric == "error_rate"] or None, 150)
    evidence = [e for e in client.evidence("notebook") if e.metric == "error_rate"]
    e = evidence[0]
    assert e.cohort == "mobile" and e.samples_treatment >= 20_000 and e.treatment is not None
    assert abs(e.treatment - 0.9) < 0.01, e
    decision = [d for d in client.decisions("notebook") if d.version == e.version][0]
    assert decision.evidence and decision.evidence[0]["metric"] == e.metric
    frame = client.evidence("notebook").to_pandas()
    assert {"version", "metric", "cohort", "treatment", "delta_low", "zone", "detail"} <= set(frame.columns)
    # Resume, so the next tests see the gate running again.
    client.override("notebook", "resume", reason="the test's kill is over", actor="test")


def test_a_watch_resumes_without_gap_or_duplicate_when_its_node_is_killed(cluster: Cluster, client: rampart.Client) -> None:
    leader = cluster.leader()
    followers = [n for n in cluster.live() if n is not leader]
    watched = followers[0]
    order = [watched, *followers[1:], leader]
    events: list[rampart.Gate | rampart.Decision] = []
    with rampart.connect([n.grpc_endpoint for n in order]) as watcher:
        watch = watcher.watch(["notebook"])
        assert watch.endpoint == watched.grpc_endpoint
        reading = threading.Thread(target=lambda: events.extend(watch), daemon=True)
        reading.start()
        try:
            state = wait_for("the gate's state", lambda: events[0] if events else None)
            assert isinstance(state, rampart.Gate) and state.gate == "notebook"
            made = [client.override("notebook", "hold", cohort="web", reason=f"before the kill {i}", actor="t").version
                    for i in range(3)]
            wait_for("the decisions before the kill", lambda: watch.versions.get("notebook", 0) >= made[-1] or None)
            cluster.kill(watched)
            made += [client.override("notebook", "hold", cohort="mobile", reason=f"after the kill {i}", actor="t").version
                     for i in range(3)]
            wait_for("the decisions after the kill", lambda: watch.versions.get("notebook", 0) >= made[-1] or None, 60)
            assert watch.reconnects >= 1 and watch.endpoint != watched.grpc_endpoint, watch.endpoint
        finally:
            watch.close()
            reading.join(timeout=10)
        assert not reading.is_alive(), "close() did not end the watch"
    decisions = events[1:]
    assert all(isinstance(d, rampart.Decision) for d in decisions), decisions
    versions = [d.version for d in decisions]
    assert versions == list(range(state.version + 1, state.version + 1 + len(versions))), versions
    assert set(made) <= set(versions)
    logged = [d.version for d in client.decisions("notebook", after_version=state.version)]
    assert versions == logged[: len(versions)], (versions, logged)
    # An override through a client whose first node is the dead one.
    with rampart.connect([watched.grpc_endpoint] + [n.grpc_endpoint for n in cluster.live()]) as late:
        assert late.override("notebook", "resume", reason="all clear", actor="t").action == "override:resume"
