"""examples/notebooks/reviews.ipynb runs headless (nbclient) against a real 3-node cluster, so
it cannot rot: it scores the shipped reviews, backtests, applies, pushes live, watches the
leader roll Android back while iOS completes, plots, and throws and clears the kill switch."""

from __future__ import annotations

import os
from collections.abc import Iterator

import nbformat
import pytest
from nbclient import NotebookClient

import rampart
from conftest import ROOT, Cluster

NOTEBOOK = ROOT / "examples" / "notebooks" / "reviews.ipynb"


@pytest.fixture
def endpoint(cluster: Cluster) -> Iterator[str]:
    endpoints = ",".join(n.grpc_endpoint for n in cluster.live())
    before = os.environ.get("RAMPART_ENDPOINT")
    os.environ["RAMPART_ENDPOINT"] = endpoints  # the kernel inherits it
    try:
        yield endpoints
    finally:
        if before is None:
            del os.environ["RAMPART_ENDPOINT"]
        else:
            os.environ["RAMPART_ENDPOINT"] = before


def test_the_reviews_notebook_runs_against_a_cluster(endpoint: str, client: rampart.Client) -> None:
    before = {g.gate for g in client.gates()}
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    if os.environ.get("RAMPART_NOTEBOOK_OUT"):  # the executed notebook, to look at its figures
        nbformat.write(notebook, os.environ["RAMPART_NOTEBOOK_OUT"])
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2, "the backtest's and the live gate's figures"
    (gate,) = {g.gate for g in client.gates()} - before
    state = client.gate(gate)
    assert {c.cohort: (c.status, c.exposure) for c in state.cohorts} == {
        "ios": ("complete", 100.0),
        "android": ("rolled_back", 0.0),
    }
    assert not state.kill_switch
    # The kill, then the resume; the engine may judge a window after it (a `stay`), nothing else.
    actions = [d.action for d in client.decisions(gate)]
    assert "override:kill" in actions, actions
    after_kill = actions[actions.index("override:kill") :]
    assert "override:resume" in after_kill, actions
    assert set(after_kill[after_kill.index("override:resume") + 1 :]) <= {"stay"}, actions
