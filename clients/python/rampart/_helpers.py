"""Signals from raw rows: event counts become rates, a column of values becomes moments, a
table of scored reviews becomes observations. Each helper returns rows `Client.push` and
`Client.backtest` take, in a stable order (so pushing them twice counts once).

Windows are aligned to the epoch, so aggregates over `every` (which should divide the
contract's window) fall wholly in one window; each aggregate carries its interval's start.
A row the helper cannot read raises `ValueError` naming the row and the column: nothing is
dropped quietly."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from rampart._signals import RowError, count, real, rows, time_of

Row = dict[str, Any]
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ARMS = {"treatment": "treatment", "control": "control"}


def _seconds(every: str | timedelta) -> float:
    if isinstance(every, timedelta):
        seconds = every.total_seconds()
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*", every)
        if m is None:
            raise ValueError(f"every: {every!r} is not a duration such as 30s, 1m, 15m, 1h")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"every: {every!r} is not a positive duration")
    return seconds


def _bucket(at: datetime, seconds: float) -> str:
    since = (at - _EPOCH).total_seconds()
    start = _EPOCH + timedelta(seconds=math.floor(since / seconds) * seconds)
    return start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _label(row: Mapping[str, Any], column: str | None) -> str:
    if column is None:
        return ""
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise RowError(column, "missing")
    return str(value)


def _arm(row: Mapping[str, Any], column: str, arms: Mapping[Any, str] | None) -> str:
    labels = _ARMS if arms is None else arms
    value = row.get(column)
    if value not in labels:
        raise RowError(column, f"{value!r} is not one of {sorted(map(str, labels))}")
    arm = labels[value]
    if arm not in _ARMS:
        raise RowError(column, f"arms maps {value!r} to {arm!r}, not treatment or control")
    return arm


def _flag(row: Mapping[str, Any], column: str) -> int:
    value = row.get(column)
    if isinstance(value, bool) or value in (0, 1):
        return int(value)
    if hasattr(value, "item"):  # numpy scalars
        return _flag({column: value.item()}, column)
    raise RowError(column, f"{value!r} is neither true/false nor 0/1")


def _at(row: Mapping[str, Any], column: str) -> datetime:
    return time_of(row.get(column), column)


def _each(data: Any) -> Iterable[tuple[int, Mapping[str, Any]]]:
    for position, row in rows(data):
        if not isinstance(row, Mapping) or "__error__" in row:
            raise ValueError(f"row {position}: {row.get('__error__') if isinstance(row, Mapping) else 'not a mapping'}")
        yield position, row


def _fail(position: int, e: RowError) -> ValueError:
    return ValueError(f"row {position}, column {e.column}: {e.reason}")


def rates(
    data: Any,
    *,
    gate: str,
    metric: str,
    event: str,
    trials: str | None = None,
    arm: str = "arm",
    arms: Mapping[Any, str] | None = None,
    cohort: str | None = "cohort",
    at: str = "at",
    every: str | timedelta = "1m",
) -> list[Row]:
    """Rate signals (`events` of `trials`) per cohort, arm and interval of `every`.

    Without `trials`, each row is one trial and `event` says (true/false or 1/0) whether it
    was an event — one row per request, `event="is_error"`. With `trials`, each row already
    counts: `event` events out of `trials` trials. `arm` names the column saying treatment or
    control (`arms` maps other labels: `{"B": "treatment", "A": "control"}`); `cohort` the
    cohort column (None: the gate's default cohort)."""
    seconds = _seconds(every)
    totals: dict[tuple[str, str, str], list[int]] = {}
    for position, row in _each(data):
        try:
            key = (_bucket(_at(row, at), seconds), _label(row, cohort), _arm(row, arm, arms))
            if trials is None:
                counted = (_flag(row, event), 1)
            else:
                counted = (count(row, event), count(row, trials))
                if counted[0] > counted[1]:
                    raise RowError(event, f"{counted[0]} events in {counted[1]} trials")
        except RowError as e:
            raise _fail(position, e) from None
        total = totals.setdefault(key, [0, 0])
        total[0] += int(counted[0])
        total[1] += int(counted[1])
    return [
        {"gate": gate, "metric": metric, "cohort": c, "arm": a, "at": t, "events": e, "trials": n}
        for (t, c, a), (e, n) in sorted(totals.items())
    ]


def moments(
    data: Any,
    *,
    gate: str,
    metric: str,
    value: str,
    arm: str = "arm",
    arms: Mapping[Any, str] | None = None,
    cohort: str | None = "cohort",
    at: str = "at",
    every: str | timedelta = "1m",
) -> list[Row]:
    """Moments signals (`n`, `sum`, `sum_sq` of the `value` column) per cohort, arm and
    interval of `every`: a mean metric such as CSAT (one row per survey answer) or order
    value."""
    seconds = _seconds(every)
    totals: dict[tuple[str, str, str], list[float]] = {}
    for position, row in _each(data):
        try:
            key = (_bucket(_at(row, at), seconds), _label(row, cohort), _arm(row, arm, arms))
            x = real(row, value)
        except RowError as e:
            raise _fail(position, e) from None
        total = totals.setdefault(key, [0, 0.0, 0.0])
        total[0] += 1
        total[1] += x
        total[2] += x * x
    return [
        {"gate": gate, "metric": metric, "cohort": c, "arm": a, "at": t, "n": int(n), "sum": s, "sum_sq": q}
        for (t, c, a), (n, s, q) in sorted(totals.items())
    ]


def _topics(row: Mapping[str, Any], column: str | None) -> list[str]:
    if column is None:
        return []
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, Sequence) and all(isinstance(t, str) for t in value):
        return list(value)
    raise RowError(column, f"{value!r} is neither a list of topics nor a comma-separated string")


def observations(
    data: Any,
    *,
    gate: str,
    metric: str,
    value: str = "score",
    confidence: str | None = "confidence",
    topics: str | None = "topics",
    arm: str = "arm",
    arms: Mapping[Any, str] | None = None,
    cohort: str | None = "cohort",
    at: str = "at",
) -> list[Row]:
    """One observation signal per scored item — a review's sentiment `value` with the
    classifier's `confidence` (in [0, 1]; None: no such column) and its complaint `topics` (a
    list, or a comma-separated string; None: no such column)."""
    out: list[Row] = []
    for position, row in _each(data):
        try:
            signal: Row = {
                "gate": gate,
                "metric": metric,
                "cohort": _label(row, cohort),
                "arm": _arm(row, arm, arms),
                "at": _at(row, at).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "value": real(row, value),
            }
            if confidence is not None:
                c = real(row, confidence)
                if not 0.0 <= c <= 1.0:
                    raise RowError(confidence, f"{c} is not in [0, 1]")
                signal["confidence"] = c
            found = _topics(row, topics)
            if found:
                signal["topics"] = found
        except RowError as e:
            raise _fail(position, e) from None
        out.append(signal)
    return out
