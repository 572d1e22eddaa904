"""The OpenFeature SDK tests' cluster (tests/harness/rampart_cluster.py), one per module.
`RAMPART_BIN` names the binary (default: target/release/rampart)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))

from rampart_cluster import Cluster, Node, running, wait_for  # noqa: E402

__all__ = ["Cluster", "Node", "wait_for"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    binary = Path(os.environ.get("RAMPART_BIN", ROOT / "target" / "release" / "rampart"))
    assert binary.exists(), f"{binary}: build it with cargo build --release, or name it in RAMPART_BIN"
    with running(binary, "rampart-openfeature-") as c:
        yield c
