"""The operator console in headless Chromium: the rollback and its evidence on the gate and
decision pages, a decision arriving over Server-Sent Events without a reload, a kill thrown from
the page reaching every node, a form without its CSRF token refused, and with an access file a
reader's page without actions and an operator's with them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from conftest import OPERATOR, READER, Cluster, Scenario, by_version, http, lines, shot, wait_for

WAIT_S = 20
T = TypeVar("T")


def wait(driver: WebDriver) -> WebDriverWait:
    return WebDriverWait(driver, WAIT_S)


def flash_version(browser: WebDriver) -> int:
    """The version of the decision the page after an action names."""
    href = browser.find_element(By.CSS_SELECTOR, "p.flash a").get_attribute("href")
    return int(href.rsplit("/", 1)[1])


def test_the_gates_page_lists_every_gate(scenario: Scenario, browser: WebDriver) -> None:
    browser.get(scenario.cluster.nodes[0].http_url + "/")
    rows = {r.get_attribute("data-gate") for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-gate]")}
    assert rows == {"shop", "calm"}
    assert "rolled back" in browser.find_element(By.CSS_SELECTOR, "tr[data-gate=shop]").text
    shot(browser, "gates")


def settled(check: Callable[[], T]) -> T:
    """`check` again when the page swapped its content under it (a live update: the scenario's
    gate gets a decision every second), until it runs through or the deadline passes."""
    end = time.monotonic() + WAIT_S
    while True:
        try:
            return check()
        except StaleElementReferenceException:
            if time.monotonic() > end:
                raise


def fill(browser: WebDriver, **fields: str) -> None:
    """Types into the action form's fields. A live update may swap the page before the first
    keystroke (then the fields are found again); once a field holds text the page keeps it."""
    def typed() -> None:
        for name, value in fields.items():
            element = browser.find_element(By.NAME, name)
            if element.get_attribute("value") != value:
                element.clear()
                element.send_keys(value)

    settled(typed)


def test_the_gate_page_shows_the_rollback_and_its_evidence(scenario: Scenario, browser: WebDriver) -> None:
    node = scenario.cluster.nodes[1]
    browser.get(node.http_url + "/console/gates/shop")
    version = scenario.rollback_version

    def gate_page() -> str:
        row = browser.find_element(By.CSS_SELECTOR, f"tr[data-version='{version}']")
        assert row.get_attribute("data-action").startswith("rollback"), row.text
        assert "mobile" in row.text and "rolled_back" in row.text, row.text
        # The charts: an exposure step chart and a window chart per metric and cohort.
        assert browser.find_elements(By.CSS_SELECTOR, "svg.exposure path.step")
        charts = browser.find_elements(By.CSS_SELECTOR, "div.metric[data-metric=error_rate] svg.windows")
        assert len(charts) == 2, "one per cohort"
        assert browser.find_elements(By.CSS_SELECTOR, "div.metric[data-metric=error_rate] svg.windows path.threshold")
        assert browser.find_elements(By.CSS_SELECTOR, "table.latest tr[data-cohort=mobile][data-metric=error_rate]")
        killed = "svg.windows[aria-label='error_rate · mobile'] use[href='#m-kill']"
        assert browser.find_elements(By.CSS_SELECTOR, killed), "the kill-zone window is drawn as such"
        return row.find_element(By.CSS_SELECTOR, "a").get_attribute("href")

    href = settled(gate_page)
    shot(browser, "gate")
    settled(lambda: browser.find_element(By.CSS_SELECTOR, f"tr[data-version='{version}'] a").click())
    wait(browser).until(expected_conditions.url_contains(f"/decisions/{version}"))
    assert browser.current_url == href
    evidence = browser.find_element(By.CSS_SELECTOR, "table.evidence tr[data-metric=error_rate][data-cohort=mobile]")
    assert evidence.get_attribute("data-zone") == "kill"
    assert "ceiling" in evidence.text, evidence.text
    facts = browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert "the engine on leader node" in facts, facts
    shot(browser, "decision")


def test_a_decision_arrives_without_a_reload(scenario: Scenario, browser: WebDriver) -> None:
    c = scenario.cluster
    browser.get(c.nodes[0].http_url + "/console/gates/calm")
    wait(browser).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-live") == "yes")
    browser.execute_script("window.rampartMarker = 42;")
    status, body = http(c.nodes[2], "POST", "/v1/gates/calm/overrides",
                        '{"kind": "hold", "actor": "ci", "reason": "events check"}', {"content-type": "application/json"})
    assert status == 200, body
    version = body["version"]
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"tr[data-version='{version}']"))
    assert browser.execute_script("return window.rampartMarker") == 42, "the page was not reloaded"
    assert "Decision" in browser.find_element(By.ID, "live").text


def test_a_form_without_its_csrf_token_is_refused(scenario: Scenario, browser: WebDriver) -> None:
    c = scenario.cluster
    browser.get(c.nodes[1].http_url + "/console/gates/calm")
    # In one script, so no live update can put the token back in between.
    browser.execute_script(
        "var form = document.querySelector('form.act');"
        "form.querySelector('input[name=csrf]').remove();"
        "form.querySelector('[name=actor]').value = 'mallory';"
        "form.querySelector('[name=reason]').value = 'no token';"
        "form.querySelector('button[value=resume]').click();"
    )
    error = wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "p.error"))
    assert error.get_attribute("data-field") == "csrf"
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("403")
    status, g = http(c.nodes[0], "GET", "/v1/gates/calm")
    assert g["cohorts"][0]["status"] == "held", "nothing was done"


def test_a_kill_from_the_page_reaches_every_node(scenario: Scenario, browser: WebDriver) -> None:
    c = scenario.cluster
    browser.get(c.nodes[1].http_url + "/console/gates/calm")
    fill(browser, actor="sre", reason="drill: kill from the console")
    browser.find_element(By.CSS_SELECTOR, "button[value=kill]").click()
    wait(browser).until(expected_conditions.alert_is_present()).accept()
    flash = wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "p.flash"))
    assert "decision" in flash.text
    for node in c.nodes:
        wait_for(f"the kill switch on node {node.id}",
                 lambda node=node: http(node, "GET", "/v1/gates/calm?consistency=local")[1]["kill_switch"] or None)
    d = by_version(c.nodes[2], "calm", flash_version(browser))
    assert d["decided_by"] == "operator:sre" and d["action"] == "override:kill", d
    assert "drill: kill from the console" in d["reason"], d
    shot(browser, "gate-killed")


def test_the_cluster_page_names_the_leader(scenario: Scenario, browser: WebDriver) -> None:
    c = scenario.cluster
    leader = c.leader()
    browser.get(c.nodes[2].http_url + "/console/cluster")
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-node]")
    assert len(rows) == 3
    roles = {r.get_attribute("data-node"): r.get_attribute("data-role") for r in rows}
    assert roles[str(leader.id)] == "leader", roles
    shot(browser, "cluster")


def sign_in(browser: WebDriver, node_url: str, token: str) -> None:
    browser.delete_all_cookies()
    browser.get(node_url + "/console/sign-in")
    browser.find_element(By.NAME, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "form.sign-in button").click()
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-gate]"))


def test_a_reader_sees_no_actions_and_an_operator_does(guarded: Cluster, browser: WebDriver) -> None:
    node = guarded.nodes[0]
    browser.delete_all_cookies()
    browser.get(node.http_url + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("401")
    shot(browser, "signed-out")
    sign_in(browser, node.http_url, READER)
    browser.get(node.http_url + "/console/gates/calm")
    assert "dash (reader)" in browser.find_element(By.CSS_SELECTOR, ".who").text
    assert not browser.find_elements(By.CSS_SELECTOR, "form.act")
    assert not browser.find_elements(By.CSS_SELECTOR, "button[name=kind]")
    shot(browser, "gate-reader")
    sign_in(browser, node.http_url, OPERATOR)
    browser.get(node.http_url + "/console/gates/calm")
    assert browser.find_elements(By.CSS_SELECTOR, "button[name=kind][value=kill]")
    assert not browser.find_elements(By.NAME, "actor"), "the token names the operator"
    fill(browser, reason="pausing for the review")
    browser.find_element(By.CSS_SELECTOR, "button[value=hold]").click()
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "p.flash"))
    d = by_version(node, "calm", flash_version(browser), {"authorization": f"Bearer {READER}"})
    assert d["decided_by"] == "operator:oncall" and d["action"] == "override:hold", d
    browser.delete_all_cookies()


def test_a_backtest_from_the_page_shows_the_rollback(scenario: Scenario, browser: WebDriver, tmp_path: Path) -> None:
    node = scenario.cluster.nodes[0]
    t0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    trace = []
    for second in range(8):
        trace += lines("calm", "mobile", t0 + second * 1000 + 100, 1 if second < 4 else 30, 61)
    path = tmp_path / "trace.jsonl"
    path.write_text("\n".join(trace) + "\n")
    browser.get(node.http_url + "/console/backtest?gate=calm")
    contract = browser.find_element(By.NAME, "contract")
    assert "gate: calm" in contract.get_attribute("value")
    browser.find_element(By.NAME, "signals").send_keys(str(path))
    browser.find_element(By.CSS_SELECTOR, "form.backtest button").click()
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.final"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Backtest of calm"
    assert browser.find_elements(By.CSS_SELECTOR, "tr[data-verdict^=rollback][data-cohort=mobile]")
    final = browser.find_element(By.CSS_SELECTOR, "table.final tr[data-cohort=mobile]")
    assert final.get_attribute("data-status") == "rolled_back", final.text
    assert browser.find_elements(By.CSS_SELECTOR, "svg.windows[aria-label='error_rate · mobile'] use[href='#m-kill']")
    shot(browser, "backtest")
    # Nothing was stored: the live gate's kill switch is as the other tests left it.
    status, g = http(node, "GET", "/v1/gates/calm")
    assert status == 200 and g["cohorts"][0]["status"] != "rolled_back", g
