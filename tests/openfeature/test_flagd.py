"""rampart's gates through the unmodified OpenFeature SDK with its flagd provider in RPC mode
(flagd.evaluation.v2 on the nodes' flagd listeners): boolean and string answers agree with
Evaluate unit by unit, the cohort comes from the attribute the contract names, a kill switch
thrown through the API reaches the provider through its event stream and its next evaluation
returns the fallback, an unknown gate is the SDK's flag-not-found, and the provider works again
once pointed at another node when its node is killed."""

from __future__ import annotations

import threading
import time

import pytest
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus

from conftest import Cluster, Node, wait_for

CONTRACT = """
gate: sdk-flagd
variants: { treatment: new-search, fallback: old-search }
ladder: [10, 50, 100]
stage_min_duration: 1h
window: 1h
grace: 1m
cohorts: [ios, web]
cohort_attribute: platform
metrics:
  - name: error_rate
    kind: rate
    better: lower
    guardrail: true
    min_samples: 100
    kill: { above: 0.05 }
"""
GATE = "sdk-flagd"
UNITS = 1000


def platform_of(n: int) -> str:
    return "web" if n % 2 == 0 else "ios"


def context(unit: str, platform: str) -> EvaluationContext:
    return EvaluationContext(targeting_key=unit, attributes={"platform": platform})


@pytest.fixture(scope="module", autouse=True)
def gate(cluster: Cluster) -> None:
    if any(n.flagd is None for n in cluster.nodes):
        pytest.skip("this rampart serves no flagd listener")
    node = cluster.follower()
    status, body = cluster.request(node, "PUT", f"/v1/contracts/{GATE}", CONTRACT, "application/yaml")
    assert status == 200, body
    status, body = cluster.request(
        node,
        "POST",
        f"/v1/gates/{GATE}/overrides",
        {"kind": "set_exposure", "cohort": "web", "exposure": 50, "actor": "sdk-test", "reason": "half of web"},
    )
    assert status == 200, body
    cluster.wait_converged(GATE)


def client_on(node: Node, domain: str) -> api.OpenFeatureClient:
    """A client whose flagd provider is ready: it initialises in the background and is ready
    once the node's event stream sent provider_ready."""
    provider = FlagdProvider(
        host="127.0.0.1", port=node.flagd, resolver_type=ResolverType.RPC, deadline_ms=2000
    )
    api.set_provider(provider, domain=domain)
    client = api.get_client(domain)
    wait_for(
        f"the flagd provider on node {node.id} to be ready",
        lambda: client.get_provider_status() == ProviderStatus.READY or None,
        deadline_s=10,
    )
    return client


def test_boolean_and_string_agree_with_evaluate_for_every_unit(cluster: Cluster) -> None:
    follower = cluster.follower()
    client = client_on(follower, "flagd-agree")
    treated = 0
    for n in range(UNITS):
        unit, platform = f"user-{n}", platform_of(n)
        want = cluster.evaluate(follower, GATE, unit, platform)
        # The default (True) differs from most answers, so a silently failed call shows.
        details = client.get_boolean_details(GATE, True, context(unit, platform))
        assert details.error_code is None, (unit, details)
        assert details.value is want["treatment"], (unit, details, want)
        assert details.variant == want["variant"], (unit, details, want)
        # web's exposure was set by an operator: a targeting match rather than the ladder's split.
        assert details.reason == (Reason.TARGETING_MATCH if platform == "web" else Reason.SPLIT), details
        text = client.get_string_details(GATE, "default", context(unit, platform))
        assert text.error_code is None, (unit, text)
        assert text.value == want["variant"], (unit, text, want)
        treated += int(want["treatment"])
    # web at 50%, ios at its first stage (10%).
    assert 150 < treated < 450, treated


def test_an_integer_is_a_type_mismatch_and_an_unknown_gate_not_found(cluster: Cluster) -> None:
    client = client_on(cluster.follower(), "flagd-errors")
    details = client.get_integer_details(GATE, 7, context("user-1", "web"))
    assert details.error_code == ErrorCode.TYPE_MISMATCH, details
    assert details.value == 7
    details = client.get_boolean_details("no-such-gate", True, context("user-1", "web"))
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND, details
    assert details.value is True


def test_the_kill_switch_reaches_the_provider_through_its_event_stream(cluster: Cluster) -> None:
    follower = cluster.follower()
    client = client_on(follower, "flagd-kill")
    unit = next(
        f"user-{n}" for n in range(0, UNITS, 2) if cluster.evaluate(follower, GATE, f"user-{n}", "web")["treatment"]
    )
    assert client.get_boolean_value(GATE, False, context(unit, "web")) is True
    changed = threading.Event()
    seen: list[float] = []

    def on_change(details: EventDetails) -> None:
        if GATE in (details.flags_changed or []):
            seen.append(time.monotonic())
            changed.set()

    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, on_change)
    other = next(n for n in cluster.live() if n.id != follower.id)
    status, body = cluster.request(
        other, "POST", f"/v1/gates/{GATE}/overrides", {"kind": "kill", "actor": "sdk-test", "reason": "drill"}
    )
    acked = time.monotonic()
    assert status == 200 and body["kill_switch"] is True, body
    assert changed.wait(timeout=10), "no configuration_change for the gate within 10 s"
    details = client.get_boolean_details(GATE, True, context(unit, "web"))
    assert (details.value, details.reason, details.variant) == (False, Reason.DISABLED, "old-search"), details
    print(
        f"kill switch: override acknowledged -> flagd provider's configuration_change in "
        f"{(seen[0] - acked) * 1000:.1f} ms, next evaluation DISABLED"
    )


def test_the_provider_works_again_on_another_node(cluster: Cluster) -> None:
    target = cluster.follower()
    client = client_on(target, "flagd-failover")
    ctx = context("user-2", "web")
    assert client.get_boolean_details(GATE, True, ctx).error_code is None
    cluster.kill(target)
    failed = client.get_boolean_details(GATE, True, ctx)
    assert failed.error_code is not None and failed.value is True, failed
    other = next(n for n in cluster.live())
    client = client_on(other, "flagd-failover")
    details = wait_for(
        "an answer from another node",
        lambda: (d := client.get_boolean_details(GATE, True, ctx)).error_code is None and d or None,
    )
    assert details.reason == Reason.DISABLED and details.value is False, details
