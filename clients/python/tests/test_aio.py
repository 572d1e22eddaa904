"""The asyncio client against a real 3-node cluster: a push counts once whichever client sends
it again, reads, a contract applied twice written once, and an async watch that resumes on
another node without gap or duplicate after the node it watched is killed."""

from __future__ import annotations

import asyncio

import pandas as pd

import rampart
import rampart.aio
from conftest import Cluster, first_window, wait_for


def test_a_push_counts_once_across_both_clients(cluster: Cluster, client: rampart.Client) -> None:
    at = pd.Timestamp(first_window(client))
    frame = pd.DataFrame(
        {"gate": "notebook", "metric": "error_rate", "cohort": ["web", "mobile"] * 1500,
         "arm": ["treatment", "control", "control"] * 1000, "at": at, "events": 1, "trials": 10}
    )

    async def run() -> tuple[rampart.PushResult, rampart.Gate, rampart.Evaluation]:
        async with rampart.aio.connect([n.grpc_endpoint for n in cluster.nodes]) as aio:
            pushed = await aio.push(frame, batch_size=500)
            applied = await aio.apply_contract(
                {"gate": "aio", "variants": {"treatment": "a", "fallback": "b"}, "ladder": [50, 100],
                 "stage_min_duration": "1h", "window": "1h",
                 "metrics": [{"name": "e", "kind": "rate", "better": "lower", "kill": {"above": 0.5}}]}
            )
            again = await aio.apply_contract(
                "gate: aio\nvariants: {treatment: a, fallback: b}\nladder: [50, 100]\nstage_min_duration: 1h\n"
                "window: 1h\nmetrics: [{name: e, kind: rate, better: lower, kill: {above: 0.5}}]\n"
            )
            assert applied.changed and not again.changed, (applied, again)
            assert {g.gate for g in await aio.gates()} == {"notebook", "aio"}
            return pushed, await aio.gate("notebook"), await aio.evaluate("aio", "user-1")

    before = client.gate("notebook").signals_accepted
    pushed, gate, evaluation = asyncio.run(run())
    assert (pushed.accepted, pushed.duplicates, pushed.rejected) == (3000, 0, [])
    assert gate.signals_accepted == before + 3000
    assert evaluation.variant in ("a", "b")
    again = client.push(frame, batch_size=500, progress=False)
    assert (again.accepted, again.duplicates) == (0, 3000), again


def test_an_async_watch_resumes_after_its_node_is_killed(cluster: Cluster, client: rampart.Client) -> None:
    leader = cluster.leader()
    watched, *others = [n for n in cluster.live() if n is not leader]

    async def run() -> tuple[list[rampart.Gate | rampart.Decision], list[int], int]:
        async with rampart.aio.connect([watched.grpc_endpoint, *(n.grpc_endpoint for n in others), leader.grpc_endpoint]) as aio:
            watch = aio.watch("notebook")
            events = [await watch.__anext__()]
            made: list[int] = []
            for phase in ("before", "after"):
                if phase == "after":
                    cluster.kill(watched)
                for i in range(3):
                    made.append((await asyncio.to_thread(
                        client.override, "notebook", "hold", cohort="web", reason=f"{phase} {i}", actor="aio")).version)
                while watch.versions.get("notebook", 0) < made[-1]:
                    events.append(await asyncio.wait_for(watch.__anext__(), 60))
            watch.close()
            return events, made, watch.reconnects

    events, made, reconnects = asyncio.run(run())
    state = events[0]
    assert isinstance(state, rampart.Gate)
    versions = [e.version for e in events[1:]]
    assert versions == list(range(state.version + 1, state.version + 1 + len(versions))), versions
    assert set(made) <= set(versions) and reconnects >= 1
    wait_for("the watched node gone", lambda: watched.process.poll() is not None or None)
