"""A fast path for the commonest large push: a pandas DataFrame of rate signals (`events` of
`trials`) with a time-zone-aware `at` column. Checks run over whole columns; rows that fail
them go through the row-by-row checks of `_signals.signal`, so their errors read exactly as
they would otherwise. The signals built are the same messages, byte for byte, as the row path
builds (so idempotency keys do not depend on the path taken)."""

from __future__ import annotations

from typing import Any

from rampart.v1 import rampart_pb2 as pb

#: The columns a frame may have to take the fast path; `cohort` is optional.
RATE_COLUMNS = {"gate", "metric", "cohort", "arm", "at", "events", "trials"}


def _labels(column: Any, required: bool) -> Any:
    """Rows whose value is a usable label: a non-empty string (or, if not `required`, missing)."""
    uniques = column.dropna().unique()
    valid = [u for u in uniques if isinstance(u, str) and (u != "" or not required)]
    ok = column.isin(valid)
    return ok | column.isna() if not required else ok


def _counts(column: Any) -> tuple[Any, Any] | None:
    """(values as int64, rows where they are non-negative integers), or None for a dtype
    this path does not read (the row path will)."""
    import numpy as np

    values = column.to_numpy()
    if values.dtype.kind in "iu":
        return values.astype(np.int64), values >= 0
    if values.dtype.kind == "f":
        ok = np.isfinite(values) & (values >= 0) & (np.floor(values) == values) & (values < 2**62)
        return np.where(ok, values, 0).astype(np.int64), ok
    return None


def _rate(gate: str, metric: str, cohort: str, arm: int, seconds: int, micros: int, events: int, trials: int) -> pb.Signal:
    # Fields set one by one: a third faster than nested constructors under upb.
    signal = pb.Signal(gate=gate, metric=metric, cohort=cohort, arm=arm)  # type: ignore[arg-type]
    signal.at.seconds = seconds
    signal.at.nanos = micros * 1000
    signal.rate.events = events
    signal.rate.trials = trials
    return signal


class RateFrame:
    """A frame's rows that passed the column checks, as signals built on demand (a push
    builds each batch while earlier ones are on the wire), and the positions of the rows that
    did not (for the row-by-row checks)."""

    def __init__(self, columns: list[list[Any]], positions: list[int], failed: list[int]) -> None:
        self._columns = columns
        self.positions = positions
        self.failed = failed

    def __len__(self) -> int:
        return len(self.positions)

    def signals(self, start: int, stop: int) -> list[tuple[int, pb.Signal, None]]:
        """The good rows `start..stop` (in the order of `positions`) as signals."""
        return [
            (position, _rate(*values), None)
            for position, *values in zip(self.positions[start:stop], *(c[start:stop] for c in self._columns))
        ]


def rate_frame(frame: Any) -> RateFrame | None:
    """The frame's signals (built on demand) and the rows that failed a check, or None when
    the frame is not one this path reads."""
    import numpy as np
    import pandas as pd

    columns = set(frame.columns)
    if not columns <= RATE_COLUMNS or not RATE_COLUMNS - {"cohort"} <= columns:
        return None
    at = frame["at"]
    if not isinstance(at.dtype, pd.DatetimeTZDtype):
        return None
    events, trials = _counts(frame["events"]), _counts(frame["trials"])
    if events is None or trials is None:
        return None
    cohort = frame["cohort"] if "cohort" in columns else pd.Series([""] * len(frame), index=frame.index, dtype=object)
    ok = (
        _labels(frame["gate"], True).to_numpy()
        & _labels(frame["metric"], True).to_numpy()
        & _labels(cohort, False).to_numpy()
        & frame["arm"].isin(["treatment", "control"]).to_numpy()
        & at.notna().to_numpy()
        & events[1]
        & trials[1]
        & (events[0] <= trials[0])
    )
    # Microseconds, as the row path's datetime conversion keeps.
    micros = at.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[us]").astype(np.int64)
    seconds, rest = np.divmod(micros, 1_000_000)
    arms = np.where(frame["arm"].to_numpy() == "treatment", pb.ARM_TREATMENT, pb.ARM_CONTROL)
    cohorts = cohort.to_numpy(dtype=object)
    cohorts = np.where(pd.isna(cohorts), "", cohorts)
    picked = [
        frame["gate"].to_numpy(dtype=object)[ok].tolist(),
        frame["metric"].to_numpy(dtype=object)[ok].tolist(),
        cohorts[ok].tolist(),
        arms[ok].tolist(),
        seconds[ok].tolist(),
        rest[ok].tolist(),
        events[0][ok].tolist(),
        trials[0][ok].tolist(),
    ]
    return RateFrame(picked, np.flatnonzero(ok).tolist(), np.flatnonzero(~ok).tolist())
