"""The helpers that build signals from raw rows, without a cluster: counts and moments per
cohort, arm and interval, observations with confidence and topics, and errors that name the
row and the column."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import rampart
from rampart import _signals


def requests() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(
                ["2026-03-01T10:00:05Z", "2026-03-01T10:00:50Z", "2026-03-01T10:01:10Z", "2026-03-01T10:00:30Z"], utc=True
            ),
            "platform": ["ios", "ios", "ios", "web"],
            "variant": ["B", "B", "B", "A"],
            "failed": [True, False, True, False],
        }
    )


def test_rates_count_events_per_cohort_arm_and_interval() -> None:
    rows = rampart.rates(
        requests(), gate="g", metric="error_rate", event="failed", cohort="platform", arm="variant",
        arms={"B": "treatment", "A": "control"}, at="ts", every="1m",
    )
    assert rows == [
        {"gate": "g", "metric": "error_rate", "cohort": "ios", "arm": "treatment", "at": "2026-03-01T10:00:00.000Z", "events": 1, "trials": 2},
        {"gate": "g", "metric": "error_rate", "cohort": "web", "arm": "control", "at": "2026-03-01T10:00:00.000Z", "events": 0, "trials": 1},
        {"gate": "g", "metric": "error_rate", "cohort": "ios", "arm": "treatment", "at": "2026-03-01T10:01:00.000Z", "events": 1, "trials": 1},
    ]
    good, bad = _signals.prepare(rows)
    assert bad == [] and len(good) == 3
    # Counted rows: events of trials.
    counted = rampart.rates(
        [{"at": "2026-03-01T10:00:00Z", "arm": "treatment", "errors": 3, "requests": 10},
         {"at": "2026-03-01T10:00:59Z", "arm": "treatment", "errors": 1, "requests": 5}],
        gate="g", metric="error_rate", event="errors", trials="requests", cohort=None,
    )
    assert [(r["cohort"], r["events"], r["trials"]) for r in counted] == [("", 4, 15)]


def test_moments_and_observations() -> None:
    answers = [{"at": "2026-03-01T10:00:00Z", "arm": "control", "cohort": "web", "csat": x} for x in (3.0, 4.0, 5.0)]
    (m,) = rampart.moments(answers, gate="g", metric="csat", value="csat", every="15m")
    assert (m["n"], m["sum"], m["sum_sq"]) == (3, 12.0, 50.0)
    reviews = pd.DataFrame(
        {
            "at": ["2026-03-01T10:00:00+01:00", "2026-03-01T10:00:01Z"],
            "arm": ["treatment", "control"],
            "cohort": ["web", "web"],
            "score": [-0.8, 0.4],
            "confidence": [0.9, 0.55],
            "topics": ["refund, crash", None],
        }
    )
    first, second = rampart.observations(reviews, gate="g", metric="sentiment")
    assert first["at"] == "2026-03-01T09:00:00.000000Z" and first["topics"] == ["refund", "crash"]
    assert first["confidence"] == 0.9 and "topics" not in second
    assert _signals.prepare([first, second])[1] == []


@pytest.mark.parametrize(
    ("change", "column"),
    [({"failed": "maybe"}, "failed"), ({"variant": "C"}, "variant"), ({"ts": None}, "ts"), ({"platform": math.nan}, "platform")],
)
def test_a_row_the_helper_cannot_read_names_row_and_column(change: dict[str, object], column: str) -> None:
    frame = requests().astype(object)
    for k, v in change.items():
        frame.at[2, k] = v
    with pytest.raises(ValueError, match=f"row 2, column {column}: "):
        rampart.rates(frame, gate="g", metric="e", event="failed", cohort="platform", arm="variant",
                      arms={"B": "treatment", "A": "control"}, at="ts")


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="every"):
        rampart.rates([], gate="g", metric="e", event="x", every="soon")
    with pytest.raises(ValueError, match="arms maps"):
        rampart.rates([{"at": "2026-03-01T10:00:00Z", "arm": "B", "cohort": "c", "x": 1}], gate="g", metric="e", event="x",
                      arms={"B": "canary"})
    with pytest.raises(ValueError, match="row 0, column confidence"):
        rampart.observations([{"at": "2026-03-01T10:00:00Z", "arm": "treatment", "cohort": "c", "score": 1.0, "confidence": 1.5}],
                             gate="g", metric="s")


def test_plot_thresholds_follow_the_contract_rules() -> None:
    from rampart._plot import threshold

    assert threshold({"absolute": 0.3}, "higher", 0.7) == pytest.approx(0.4)
    assert threshold({"relative": "50%"}, "lower", 0.1) == pytest.approx(0.15)
    assert threshold({"relative": 0.1}, "higher", 2.0) == pytest.approx(1.8)
    assert threshold({"above": 0.05}, "lower", None) == 0.05
    assert threshold({"absolute": 0.3}, "higher", None) is None
