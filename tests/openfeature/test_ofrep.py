"""rampart's gates through the unmodified OpenFeature SDK with its OFREP provider: the
answers agree with Evaluate unit by unit, a kill switch reaches the SDK's next evaluation,
an unknown gate is the SDK's flag-not-found, and the provider works again once pointed at
another node when its node is killed."""

from __future__ import annotations

import time

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from conftest import Cluster, wait_for

CONTRACT = """
gate: sdk-ofrep
variants: { treatment: new-checkout, fallback: old-checkout }
ladder: [10, 50, 100]
stage_min_duration: 1h
window: 1h
grace: 1m
cohorts: [mobile, web]
metrics:
  - name: error_rate
    kind: rate
    better: lower
    guardrail: true
    min_samples: 100
    kill: { above: 0.05 }
"""
GATE = "sdk-ofrep"
UNITS = 1000


def cohort_of(n: int) -> str:
    return "web" if n % 2 == 0 else "mobile"


def set_up(cluster: Cluster) -> None:
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


def client_on(url: str, domain: str) -> api.OpenFeatureClient:
    api.set_provider(OFREPProvider(url), domain=domain)
    return api.get_client(domain)


def test_boolean_and_variant_agree_with_evaluate_for_every_unit(cluster: Cluster) -> None:
    set_up(cluster)
    follower = cluster.follower()
    client = client_on(follower.http_url, "agree")
    treated = 0
    for n in range(UNITS):
        unit, cohort = f"user-{n}", cohort_of(n)
        # The default (True) differs from most answers, so a silently failed call shows.
        details = client.get_boolean_details(
            GATE, True, EvaluationContext(targeting_key=unit, attributes={"cohort": cohort})
        )
        want = cluster.evaluate(follower, GATE, unit, cohort)
        assert details.error_code is None, (unit, details)
        assert details.value is want["treatment"], (unit, details, want)
        assert details.variant == want["variant"], (unit, details, want)
        # web's exposure was set by an operator: a targeting match rather than the ladder's split.
        assert details.reason == (Reason.TARGETING_MATCH if cohort == "web" else Reason.SPLIT), (unit, details)
        assert details.flag_metadata["bucket"] == want["bucket"]
        treated += int(want["treatment"])
    # web at 50%, mobile at its first stage (10%).
    assert 150 < treated < 450, treated


def test_a_string_evaluation_is_a_type_mismatch(cluster: Cluster) -> None:
    client = client_on(cluster.follower().http_url, "string")
    details = client.get_string_details(
        GATE, "fallback", EvaluationContext(targeting_key="user-1", attributes={"cohort": "web"})
    )
    assert details.error_code == ErrorCode.TYPE_MISMATCH, details
    assert details.value == "fallback"


def test_an_unknown_gate_is_flag_not_found(cluster: Cluster) -> None:
    client = client_on(cluster.follower().http_url, "unknown")
    details = client.get_boolean_details("no-such-gate", True, EvaluationContext(targeting_key="u"))
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND, details
    assert details.value is True


def test_the_kill_switch_reaches_the_next_evaluation(cluster: Cluster) -> None:
    follower = cluster.follower()
    client = client_on(follower.http_url, "kill")
    context = EvaluationContext(targeting_key="user-0", attributes={"cohort": "web"})
    # A unit in the treatment before the kill.
    unit = next(
        f"user-{n}" for n in range(0, UNITS, 2) if cluster.evaluate(follower, GATE, f"user-{n}", "web")["treatment"]
    )
    context = EvaluationContext(targeting_key=unit, attributes={"cohort": "web"})
    assert client.get_boolean_value(GATE, False, context) is True
    other = next(n for n in cluster.live() if n.id != follower.id)
    status, body = cluster.request(
        other, "POST", f"/v1/gates/{GATE}/overrides", {"kind": "kill", "actor": "sdk-test", "reason": "drill"}
    )
    acked = time.monotonic()
    assert status == 200 and body["kill_switch"] is True, body

    def disabled() -> bool | None:
        d = client.get_boolean_details(GATE, True, context)
        return True if d.reason == Reason.DISABLED and d.value is False else None

    wait_for("the SDK to see the kill switch", disabled, deadline_s=10)
    print(f"kill switch: override acknowledged -> OFREP SDK sees DISABLED in {(time.monotonic() - acked) * 1000:.1f} ms")
    details = client.get_boolean_details(GATE, True, context)
    assert details.variant == "old-checkout"


def test_the_provider_works_again_on_another_node(cluster: Cluster) -> None:
    target = cluster.follower()
    client = client_on(target.http_url, "failover")
    context = EvaluationContext(targeting_key="user-2", attributes={"cohort": "web"})
    assert client.get_boolean_details(GATE, True, context).error_code is None
    cluster.kill(target)
    failed = client.get_boolean_details(GATE, True, context)
    assert failed.error_code == ErrorCode.GENERAL and failed.value is True, failed
    other = next(n for n in cluster.live())
    client = client_on(other.http_url, "failover")
    details = client.get_boolean_details(GATE, True, context)
    assert details.error_code is None, details
    assert details.reason == Reason.DISABLED and details.value is False
