"""The client across node failures: a push under a leader kill loses nothing and counts
nothing twice (a batch whose answer was lost is retried under the same key), and reads go on
through another node when the first one named is dead."""

from __future__ import annotations

import threading
import rampart
from conftest import Cluster, first_window, wait_for

ROWS = 100_000


def test_a_push_across_a_leader_kill_counts_every_signal_once(cluster: Cluster, client: rampart.Client) -> None:
    at = first_window(client)
    rows = [
        {"gate": "notebook", "metric": "error_rate", "cohort": "web", "arm": "treatment" if i % 2 else "control",
         "at": at, "events": 1, "trials": 50 + i % 50}
        for i in range(ROWS)
    ]
    before = client.gate("notebook").signals_accepted
    results: list[rampart.PushResult] = []
    pushing = threading.Thread(target=lambda: results.append(client.push(rows, batch_size=200, progress=False)))
    pushing.start()
    leader = cluster.leader()
    wait_for("the first batches", lambda: client.gate("notebook").signals_accepted > before or None)
    cluster.kill(leader)
    # The kill must land mid-push, or this test proves nothing.
    assert pushing.is_alive(), "the push finished before the leader was killed"
    pushing.join(timeout=120)
    assert not pushing.is_alive(), "the push did not finish"
    (result,) = results
    assert result.rejected == []
    assert result.accepted + result.duplicates == ROWS, result
    assert client.gate("notebook").signals_accepted == before + ROWS
    print(f"push across a leader kill: {result.accepted} accepted, {result.duplicates} answered as duplicates")


def test_reads_go_on_through_another_node(cluster: Cluster) -> None:
    dead = [n for n in cluster.nodes if n.process.poll() is not None]
    live = cluster.live()
    assert dead, "the previous test killed a node"
    with rampart.connect([n.grpc_endpoint for n in dead + live]) as client:
        assert [g.gate for g in client.gates()] == ["notebook"]
