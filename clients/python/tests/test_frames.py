"""The DataFrame fast path of `push` (`rampart._frames`): it is taken for a frame of rate
signals, with or without a cohort column, and builds the same signals, byte for byte, and the
same rejections as the row-by-row path, so a push's idempotency keys do not depend on the path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rampart import _signals
from rampart._frames import rate_frame


def frame(n: int, cohort: bool) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    columns = {
        "gate": "g",
        "metric": "error_rate",
        "arm": np.where(rng.random(n) < 0.5, "treatment", "control"),
        "at": pd.Timestamp("2026-03-01T10:00:00Z") + pd.to_timedelta(rng.integers(0, 10**12, n), unit="ns"),
        "events": rng.integers(0, 5, n),
        "trials": 100,
    }
    if cohort:
        columns["cohort"] = np.where(rng.random(n) < 0.5, "ios", "android")
    out = pd.DataFrame(columns)
    out.loc[5, "events"] = -1
    out.loc[7, "arm"] = "canary"
    out.loc[9, "events"] = 500
    out.loc[11, "gate"] = ""
    return out


@pytest.mark.parametrize("cohort", [True, False])
@pytest.mark.filterwarnings("ignore:Discarding nonzero nanoseconds")
def test_the_fast_path_is_taken_and_builds_what_the_row_path_builds(cohort: bool) -> None:
    data = frame(5000, cohort)
    fast = rate_frame(data)
    assert fast is not None and fast.failed == [5, 7, 9, 11]
    good, bad = _signals.prepare(data)
    row_good, row_bad = _signals.prepare(data.to_dict(orient="records"))
    assert bad == row_bad and [(r.row, r.column) for r in bad] == [(5, "events"), (7, "arm"), (9, "events"), (11, "gate")]
    assert [(p, s.SerializeToString()) for p, s, _ in good] == [(p, s.SerializeToString()) for p, s, _ in row_good]
    total, makers, _ = _signals.prepared_batches(data, 1000)
    assert total == len(good) and [p for m in makers for p, _, _ in m()] == [p for p, _, _ in good]
    keys = [_signals.request(i, m()) for i, m in enumerate(makers)]
    assert keys == [_signals.request(i, b) for i, b in enumerate(_signals.batches(row_good, 1000))]


def test_frames_the_fast_path_does_not_read_take_the_row_path() -> None:
    naive = frame(20, True).assign(at=pd.Timestamp("2026-03-01T10:00:00"))
    assert rate_frame(naive) is None
    good, bad = _signals.prepare(naive)
    assert good == [] and len(bad) == 20 and (bad[0].column, bad[0].row) == ("at", 0), bad
    assert rate_frame(frame(20, True).assign(value=1.0)) is None
