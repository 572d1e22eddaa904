"""Signals from rows: local validation (errors name the row and the column), conversion to
`rampart.v1.Signal`, batches, and an idempotency key derived from each batch's content, so
pushing the same rows again counts nothing twice."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from rampart.v1 import rampart_pb2 as pb

#: Columns a signal row may have (the JSON-lines format of `rampart signal push`).
COLUMNS = frozenset(
    {"gate", "metric", "cohort", "arm", "at", "events", "trials", "n", "sum", "sum_sq",
     "value", "confidence", "topics", "values", "received"}
)
ARMS = {"treatment": pb.ARM_TREATMENT, "control": pb.ARM_CONTROL}


@dataclass(frozen=True)
class RejectedRow:
    """A row that was not counted: its position in what was pushed (from 0; a file's line
    number from 1), the column at fault and why."""

    row: int
    column: str
    reason: str


class RowError(ValueError):
    """One row cannot be a signal."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def count(row: Mapping[str, Any], column: str) -> int:
    value = row.get(column)
    if isinstance(value, bool) or _missing(value):
        raise RowError(column, "expected a non-negative integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise RowError(column, f"{value!r} is not an integer") from None
    if number != value or number < 0:
        raise RowError(column, f"{value!r} is not a non-negative integer")
    return number


def real(row: Mapping[str, Any], column: str) -> float:
    value = row.get(column)
    if isinstance(value, bool) or _missing(value):
        raise RowError(column, "expected a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RowError(column, f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise RowError(column, f"{value!r} is not finite")
    return number


def _text(row: Mapping[str, Any], column: str, required: bool = True) -> str:
    value = row.get(column)
    if _missing(value) or value == "":
        if required:
            raise RowError(column, "missing")
        return ""
    if not isinstance(value, str):
        raise RowError(column, f"expected a string, got {value!r}")
    return value


def time_of(value: Any, column: str) -> datetime:
    """A time column's value (an RFC 3339 string, a datetime or a pandas Timestamp, with a
    time zone) in UTC."""
    if _missing(value):
        raise RowError(column, "missing")
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        value = value.to_pydatetime()
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise RowError(column, f"{value!r} is not an RFC 3339 time") from None
    if not isinstance(value, datetime):
        raise RowError(column, f"expected a time, got {value!r}")
    if value.tzinfo is None:
        raise RowError(column, "has no time zone (give UTC, e.g. 2026-01-01T10:00:00Z)")
    return value.astimezone(timezone.utc)


def _timestamp(row: Mapping[str, Any], column: str = "at") -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(time_of(row.get(column), column))
    return ts


def signal(row: Mapping[str, Any]) -> pb.Signal:
    """One row as a signal; `RowError` names the column when it cannot be one."""
    unknown = sorted(k for k in row if k not in COLUMNS and not _missing(row[k]))
    if unknown:
        raise RowError(unknown[0], f"unknown column; a signal has {sorted(COLUMNS)}")
    arm = _text(row, "arm")
    if arm not in ARMS:
        raise RowError("arm", f"{arm!r} is not treatment or control")
    out = pb.Signal(
        gate=_text(row, "gate"),
        metric=_text(row, "metric"),
        cohort=_text(row, "cohort", required=False),
        arm=ARMS[arm],
        at=_timestamp(row),
    )
    present = {k for k in ("events", "trials", "n", "sum", "sum_sq", "value", "values") if not _missing(row.get(k))}
    if present & {"events", "trials"}:
        events, trials = count(row, "events"), count(row, "trials")
        if events > trials:
            raise RowError("events", f"{events} events in {trials} trials")
        out.rate.CopyFrom(pb.Rate(events=events, trials=trials))
    elif present & {"n", "sum", "sum_sq"}:
        out.moments.CopyFrom(pb.Moments(n=count(row, "n"), sum=real(row, "sum"), sum_sq=real(row, "sum_sq")))
    elif "value" in present:
        observation = pb.Observation(value=real(row, "value"))
        if not _missing(row.get("confidence")):
            confidence = real(row, "confidence")
            if not 0.0 <= confidence <= 1.0:
                raise RowError("confidence", f"{confidence} is not in [0, 1]")
            observation.confidence = confidence
        topics = row.get("topics")
        if topics is not None and not (isinstance(topics, float) and math.isnan(topics)):
            if isinstance(topics, str) or not all(isinstance(t, str) for t in topics):
                raise RowError("topics", "expected a list of strings")
            observation.topics.extend(topics)
        out.observation.CopyFrom(observation)
    elif "values" in present:
        values = row["values"]
        if isinstance(values, str):
            raise RowError("values", "expected a list of numbers")
        out.sketch.CopyFrom(pb.Sketch(values=[real({"values": v}, "values") for v in values]))
    else:
        raise RowError("events", "no measurement: give events and trials, n/sum/sum_sq, value, or values")
    return out


def rows(data: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(position, row) of what `push` was given: records, a pandas DataFrame, or the path of
    a JSON-lines file (positions are then line numbers from 1)."""
    if isinstance(data, (str, Path)):
        with open(data, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                try:
                    parsed = json.loads(text)
                except ValueError as e:
                    yield number, {"__error__": f"line is not JSON: {e}"}
                    continue
                yield number, parsed if isinstance(parsed, dict) else {"__error__": "line is not a JSON object"}
        return
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        for i, record in enumerate(data.to_dict(orient="records")):
            yield i, record
        return
    if isinstance(data, Mapping):
        raise TypeError("push takes many rows: a list of dicts, a DataFrame or a path")
    for i, record in enumerate(data):
        yield i, record


def received(row: Mapping[str, Any]) -> Timestamp | None:
    """When a row says it reached the cluster (`received`, read by backtests only)."""
    return None if _missing(row.get("received")) else _timestamp(row, "received")


def _checked(records: Iterable[tuple[int, Any]]) -> tuple[list[tuple[int, pb.Signal, Timestamp | None]], list[RejectedRow]]:
    good: list[tuple[int, pb.Signal, Timestamp | None]] = []
    bad: list[RejectedRow] = []
    for position, row in records:
        if not isinstance(row, Mapping):
            bad.append(RejectedRow(position, "row", f"expected a mapping, got {type(row).__name__}"))
            continue
        if "__error__" in row:
            bad.append(RejectedRow(position, "line", str(row["__error__"])))
            continue
        try:
            good.append((position, signal(row), received(row)))
        except RowError as e:
            bad.append(RejectedRow(position, e.column, e.reason))
    return good, bad


def _fast(data: Any) -> tuple[Any, list[RejectedRow]] | None:
    """A DataFrame of rate signals through the column checks (`_frames`), with the rows that
    failed them checked one by one for their errors; None for data that path does not read,
    or when a row it failed turns out to be a signal (then the row path decides it all)."""
    if not (hasattr(data, "to_dict") and hasattr(data, "columns")):
        return None
    from rampart._frames import rate_frame

    fast = rate_frame(data)
    if fast is None:
        return None
    extra, bad = _checked(zip(fast.failed, data.iloc[fast.failed].to_dict(orient="records")))
    return (fast, bad) if not extra else None


def prepare(data: Any) -> tuple[list[tuple[int, pb.Signal, Timestamp | None]], list[RejectedRow]]:
    """The rows that are signals (with their positions and `received` times) and those that
    are not."""
    fast = _fast(data)
    if fast is not None:
        return fast[0].signals(0, len(fast[0])), fast[1]
    return _checked(rows(data))


def prepared_batches(data: Any, size: int) -> tuple[int, list[Callable[[], Batch]], list[RejectedRow]]:
    """As `prepare`, the signals in batches of `size`: how many signals, one function per
    batch that builds it (a DataFrame's batches are built when sent), and the rejected rows."""
    fast = _fast(data)
    if fast is not None:
        frame, bad = fast
        return len(frame), [partial(frame.signals, i, i + size) for i in range(0, len(frame), size)], bad
    good, bad = _checked(rows(data))
    return len(good), [partial(list, b) for b in batches(good, size)], bad


Batch = list[tuple[int, pb.Signal, Timestamp | None]]


def batches(signals: Batch, size: int) -> Iterable[Batch]:
    for start in range(0, len(signals), size):
        yield signals[start : start + size]


def request(position: int, batch: Batch) -> bytes:
    """The batch as a serialized `IngestRequest` under a key from its position in its push
    and its content: the same rows pushed again get the same keys, and two equal batches of
    one push (equal rows repeat in aggregates) different ones. Serialized once, here: the key
    hashes the same bytes that are sent."""
    body = pb.IngestRequest(signals=[s for _, s, _ in batch]).SerializeToString(deterministic=True)
    digest = hashlib.sha256(position.to_bytes(8, "big"))
    digest.update(body)
    key = f"py-{digest.hexdigest()[:40]}".encode()
    # Field 1 (idempotency_key) before the signals: a message's fields may be concatenated.
    return b"\x0a" + bytes([len(key)]) + key + body
