"""The console's browser tests: a 3-node cluster fed by a scenario (a gate that expands on
healthy traffic, then rolls back when its treatment's error rate passes the kill ceiling, and
a calm gate to act on), another with an access file, and headless Chromium through Selenium.
`RAMPART_BIN` names the binary; `RAMPART_CONSOLE_SHOTS` a directory for the pages'
screenshots (docs/console/ keeps the committed ones)."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))

from rampart_cluster import Cluster, Node, running, wait_for  # noqa: E402

__all__ = ["Cluster", "Node", "wait_for", "Scenario", "shot", "by_version", "http", "lines", "READER", "OPERATOR"]

READER = "reader-token-reader-token-0123456789ab"
OPERATOR = "operator-token-operator-token-01234567"
ADMIN = "admin-token-admin-token-admin-0123456789"
ACCESS = f"""cluster_token = "cluster-token-cluster-token-0123456789"
[[tokens]]
name = "dash"
role = "reader"
token = "{READER}"
[[tokens]]
name = "oncall"
role = "operator"
token = "{OPERATOR}"
[[tokens]]
name = "root"
role = "admin"
token = "{ADMIN}"
"""

# One-second windows so the scenario runs in seconds: a guardrail error rate with a kill
# ceiling, and a conversion rate judged against control.
SHOP = """
gate: shop
description: console browser test (tests/console)
owner: release-team
variants: { treatment: new-checkout, fallback: old-checkout }
ladder: [5, 25, 50, 100]
stage_min_duration: 2s
window: 1s
grace: 200ms
cohorts: [mobile, desktop]
metrics:
  - name: error_rate
    kind: rate
    better: lower
    guardrail: true
    min_samples: 100
    watch: { above: 0.02 }
    kill: { above: 0.05 }
  - name: conversion
    kind: rate
    better: higher
    min_samples: 100
    watch: { relative: 0.1 }
    stop: { relative: 0.25 }
"""
CALM = SHOP.replace("gate: shop", "gate: calm").replace("cohorts: [mobile, desktop]", "cohorts: [mobile]")


def binary() -> Path:
    path = Path(os.environ.get("RAMPART_BIN", ROOT / "target" / "release" / "rampart"))
    assert path.exists(), f"{path}: build it with cargo build --release, or name it in RAMPART_BIN"
    return path


def http(node: Node, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, object]:
    """One HTTP call; status and JSON body."""
    request = urllib.request.Request(
        node.http_url + path, data=body.encode() if body is not None else None, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text.decode(errors="replace")


def stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lines(gate: str, cohort: str, at_ms: int, errors: int, conversions: int) -> list[str]:
    """One second of traffic in `cohort`: control healthy (1 error, 60 conversions per 200)."""
    out = []
    for arm, e, c in (("treatment", errors, conversions), ("control", 1, 60)):
        for metric, events in (("error_rate", e), ("conversion", c)):
            out.append(json.dumps({"gate": gate, "metric": metric, "cohort": cohort, "arm": arm,
                                   "at": stamp(at_ms), "events": events, "trials": 200}))
    return out


def decisions(node: Node, gate: str, headers: dict[str, str] | None = None) -> list[dict]:
    """The gate's latest 1000 decisions (the engine writes one per judged window, so the last
    decision is soon a `stay`: tests look for theirs here)."""
    status, body = http(node, "GET", f"/v1/gates/{gate}/decisions?limit=1000", headers=headers)
    assert status == 200, body
    return body["decisions"]


def by_version(node: Node, gate: str, version: int, headers: dict[str, str] | None = None) -> dict:
    found = [d for d in decisions(node, gate, headers) if d["version"] == version]
    assert found, f"no decision {version} of {gate}"
    return found[0]


@dataclass
class Scenario:
    cluster: Cluster
    rollback_version: int


def put_contract(node: Node, gate: str, text: str, token: str | None = None) -> None:
    headers = {"content-type": "application/yaml"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    status, body = http(node, "PUT", f"/v1/contracts/{gate}", text, headers)
    assert status == 200, body


@pytest.fixture(scope="session")
def scenario() -> Iterator[Scenario]:
    """The open cluster once the scenario has run: `shop` expanded on healthy traffic, then
    mobile rolled back on its error rate; `calm` untouched."""
    with running(binary(), "rampart-console-") as c:
        node = c.follower()
        put_contract(node, "shop", SHOP)
        put_contract(node, "calm", CALM)
        status, gate = http(node, "GET", "/v1/gates/shop")
        assert status == 200, gate
        first = datetime.fromisoformat(gate["cohorts"][0]["stage_since"].replace("Z", "+00:00")).timestamp()
        wait_for("the first window", lambda: time.time() > first + 0.05 or None)
        sent = 0

        def push(bad: bool) -> None:
            nonlocal sent
            sent += 1
            now = int(time.time() * 1000)
            body = lines("shop", "desktop", now, 1, 61) + lines("shop", "mobile", now, 24 if bad else 1, 61)
            status, reply = http(node, "POST", "/v1/signals", "\n".join(body), {"idempotency-key": f"console-{sent}"})
            assert status == 200 and reply["accepted"] == len(body), reply

        def exposure(cohort: str) -> float | None:
            status, g = http(node, "GET", "/v1/gates/shop")
            assert status == 200, g
            return next(x["exposure"] for x in g["cohorts"] if x["cohort"] == cohort)

        # Healthy until mobile reaches 25%, then its treatment fails 12% of checkouts. The sleeps
        # pace the traffic (a push about every 0.3 s); the waits are on conditions.
        def healthy() -> bool | None:
            push(False)
            time.sleep(0.25)
            return (exposure("mobile") or 0) >= 25 or None

        wait_for("mobile at 25% on healthy traffic", healthy, deadline_s=40)

        def rolled_back() -> int | None:
            push(True)
            time.sleep(0.25)
            return next((d["version"] for d in decisions(node, "shop") if d["action"].startswith("rollback")), None)

        version = wait_for("mobile's rollback", rolled_back, deadline_s=40)
        # A few more healthy seconds for desktop, so its charts go on past the rollback.
        for _ in range(3):
            push(False)
            time.sleep(0.3)
        yield Scenario(c, version)


@pytest.fixture(scope="module")
def guarded() -> Iterator[Cluster]:
    """A cluster with an access file (a reader, an operator, an admin) and the calm gate."""
    with running(binary(), "rampart-console-access-", access=ACCESS, admin_token=ADMIN) as c:
        put_contract(c.follower(), "calm", CALM, OPERATOR)
        yield c


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: webdriver.Chrome, name: str) -> None:
    """A full-page screenshot under RAMPART_CONSOLE_SHOTS, when set."""
    where = os.environ.get("RAMPART_CONSOLE_SHOTS")
    if not where:
        return
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(int(height), 800), 6000))
    driver.save_screenshot(str(Path(where) / f"{name}.png"))
    driver.set_window_size(1400, 1000)
