"""A 3-node cluster of the release binary (tests/harness/rampart_cluster.py) per test module,
and a client of all three nodes. `RAMPART_BIN` names the binary (default:
target/release/rampart)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "harness"))

from rampart_cluster import Cluster, wait_for  # noqa: E402

import rampart  # noqa: E402

__all__ = ["ROOT", "Cluster", "first_window", "wait_for"]

SLOW_CONTRACT = """
gate: notebook
variants: { treatment: new, fallback: old }
ladder: [10, 50, 100]
stage_min_duration: 1h
window: 1m
grace: 30s
cohorts: [mobile, web]
metrics:
  - { name: error_rate, kind: rate, better: lower, guardrail: true, min_samples: 100, kill: { above: 0.5 } }
  - { name: csat, kind: mean, better: higher, min_samples: 100, stop: { relative: 20% } }
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    binary = Path(os.environ.get("RAMPART_BIN", ROOT / "target" / "release" / "rampart"))
    assert binary.exists(), f"{binary}: build it with cargo build --release, or name it in RAMPART_BIN"
    with tempfile.TemporaryDirectory(prefix="rampart-python-") as work:
        c = Cluster(binary, Path(work))
        try:
            status, body = c.request(c.leader(), "PUT", "/v1/contracts/notebook", SLOW_CONTRACT, "application/yaml")
            assert status == 200, body
            c.wait_converged("notebook")
            yield c
        except BaseException:
            print(c.logs())
            raise
        finally:
            c.stop()


def first_window(client: rampart.Client) -> str:
    """A time in the gate's first window (up to two minutes ahead: within what the cluster
    accepts from the future), so signals pushed during the tests are not late."""
    since = client.gate("notebook").cohorts[0].stage_since
    assert since is not None
    return (since + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture(scope="module")
def client(cluster: Cluster) -> Iterator[rampart.Client]:
    with rampart.connect([n.grpc_endpoint for n in cluster.nodes]) as c:
        yield c
