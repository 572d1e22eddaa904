"""`rampart.plot`: a metric against its baseline per window, with the decided interval and the
contract's watch / stop / kill thresholds, and each cohort's exposure over time with its
decisions marked. Needs matplotlib (`pip install 'rampart-client[plot]'`; YAML contracts also
need PyYAML, in the same extra). Colours are the Okabe–Ito palette, which survives colour
blindness, and every zone also has its own marker shape."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rampart import _models as models

#: Zone → (colour, marker).
ZONES = {
    "healthy": ("#009E73", "o"),
    "watch": ("#E69F00", "s"),
    "stop": ("#D55E00", "v"),
    "kill": ("#CC79A7", "X"),
    "unreliable": ("#999999", "d"),
}
#: Threshold → line colour.
THRESHOLDS = {"watch": "#E69F00", "stop": "#D55E00", "kill": "#CC79A7"}
TREATMENT, BASELINE, INTERVAL = "#0072B2", "#000000", "#56B4E9"


def _contract(contract: str | Path | Mapping[str, Any] | None) -> Mapping[str, Any]:
    if contract is None:
        return {}
    if isinstance(contract, Mapping):
        return contract
    text = contract.read_text(encoding="utf-8") if isinstance(contract, Path) else contract
    try:
        return json.loads(text)  # type: ignore[no-any-return]
    except ValueError:
        pass
    try:
        import yaml
    except ImportError as e:
        raise ImportError("a YAML contract needs PyYAML: pip install 'rampart-client[plot]'") from e
    return yaml.safe_load(text)  # type: ignore[no-any-return]


def _fraction(value: Any) -> float:
    if isinstance(value, str) and value.strip().endswith("%"):
        return float(value.strip()[:-1]) / 100.0
    return float(value)


def threshold(rule: Mapping[str, Any], better: str, baseline: float | None) -> float | None:
    """Where a zone's rule (`{absolute: a}`, `{relative: r}`, `{above: x}` or `{below: x}`)
    starts for a window whose baseline is `baseline`."""
    sign = -1.0 if better == "higher" else 1.0
    if "above" in rule:
        return float(rule["above"])
    if "below" in rule:
        return float(rule["below"])
    if baseline is None:
        return None
    if "absolute" in rule:
        return baseline + sign * float(rule["absolute"])
    if "relative" in rule:
        return baseline * (1.0 + sign * _fraction(rule["relative"]))
    return None


def _evidence(result: Any) -> list[models.Evidence]:
    if isinstance(result, models.Backtest):
        return list(result.evidence)
    rows = list(result) if isinstance(result, Iterable) else None
    if rows is None or not all(isinstance(item, models.Evidence) for item in rows):
        raise TypeError("plot takes a Backtest, or client.evidence(gate)")
    return rows


def metric(
    result: Any,
    name: str,
    cohort: str,
    contract: str | Path | Mapping[str, Any] | None = None,
    ax: Any = None,
) -> Any:
    """The treatment's value of metric `name` in `cohort` per window against its baseline,
    the decided interval (baseline + the delta's interval) shaded, each window's zone as its
    marker, and, given the contract, its thresholds. `result`: a `Backtest`, or the
    `client.evidence(gate)` table."""
    import matplotlib.pyplot as plt

    rows = sorted(
        (e for e in _evidence(result) if e.metric == name and e.cohort == cohort and e.window_start is not None),
        key=lambda e: e.window_start,  # type: ignore[arg-type, return-value]
    )
    ax = ax if ax is not None else plt.subplots(figsize=(9, 3.5))[1]
    if not rows:
        ax.set_title(f"{name} in {cohort}: no evidence yet")
        return ax
    x = [e.window_start for e in rows]
    base = [e.baseline if e.baseline is not None else e.control for e in rows]
    ax.plot(x, base, color=BASELINE, linestyle="--", label="baseline")
    ax.plot(x, [e.treatment for e in rows], color=TREATMENT, label="treatment")
    low = [b + e.delta_low if b is not None and e.delta_low is not None else float("nan") for b, e in zip(base, rows)]
    high = [b + e.delta_high if b is not None and e.delta_high is not None else float("nan") for b, e in zip(base, rows)]
    ax.fill_between(x, low, high, color=INTERVAL, alpha=0.3, label="decided interval")
    for zone, (colour, marker) in ZONES.items():
        points = [(e.window_start, e.treatment) for e in rows if e.zone == zone and e.treatment is not None]
        if points:
            ax.scatter(*zip(*points), color=colour, marker=marker, s=40, zorder=3, label=zone)
    spec = next((m for m in _contract(contract).get("metrics", []) if m.get("name") == name), None)
    if spec is not None:
        better = spec.get("better", "higher")
        for zone, colour in THRESHOLDS.items():
            if zone in spec:
                line = [threshold(spec[zone], better, b) for b in base]
                ax.step(x, [float("nan") if v is None else v for v in line], where="post",
                        color=colour, linestyle=":", label=f"{zone} threshold")
    ax.set_title(f"{name} in {cohort}, per window")
    ax.set_xlabel("window start (UTC)")
    ax.set_ylabel(name)
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def exposure(result: Any, ax: Any = None) -> Any:
    """Each cohort's exposure (percent) over time as steps, every decision that changed
    something marked with its action. `result`: a `Backtest` or `client.decisions(gate)`."""
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.subplots(figsize=(9, 3))[1]
    series: dict[str, list[tuple[Any, float]]] = {}
    marks: list[tuple[Any, float, str]] = []
    if isinstance(result, models.Backtest):
        for d in result.decisions:
            points = series.setdefault(d.cohort, [])
            if not points:
                points.append((d.window_start, d.from_exposure))
            points.append((d.window_end, d.to_exposure))
            if d.verdict != "stay":
                marks.append((d.window_end, d.to_exposure, d.verdict))
    else:
        for d in result:
            for c in d.changes:
                points = series.setdefault(c["cohort"], [])
                if not points:
                    points.append((d.at, c["from_exposure"]))
                points.append((d.at, c["to_exposure"]))
                if c["from_exposure"] != c["to_exposure"] or d.action.startswith("override"):
                    marks.append((d.at, c["to_exposure"], d.action))
    palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]
    styles = ["-", "--", "-.", ":"]  # cohorts at the same exposure stay apart
    for i, (cohort, points) in enumerate(sorted(series.items())):
        ax.step(*zip(*points), where="post", color=palette[i % len(palette)], linestyle=styles[i % len(styles)],
                linewidth=2.2 - 0.4 * (i % 3), label=cohort)
    for at, pct, action in marks:
        ax.annotate(action, (at, pct), textcoords="offset points", xytext=(0, 6), fontsize="x-small", ha="center")
        ax.plot([at], [pct], marker="|", color="#000000", markersize=10)
    ax.set_ylim(-5, 105)
    ax.set_title("exposure per cohort")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("exposure (%)")
    if series:
        ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def plot(
    result: Any,
    name: str,
    contract: str | Path | Mapping[str, Any] | None = None,
    decisions: Any = None,
) -> Any:
    """A figure: metric `name` per cohort (`metric`), then exposure (`exposure`). `result`: a
    `Backtest` (it has both), or `client.evidence(gate)` with `decisions=client.decisions(gate)`."""
    import matplotlib.pyplot as plt

    if decisions is None and not isinstance(result, models.Backtest):
        raise ValueError("decisions: give client.decisions(gate) with client.evidence(gate)")
    evidence = _evidence(result)
    cohorts = sorted({e.cohort for e in evidence if e.metric == name})
    figure, axes = plt.subplots(len(cohorts) + 1, 1, figsize=(9, 3.2 * (len(cohorts) + 1)), squeeze=False)
    for ax, cohort in zip(axes[:, 0], cohorts):
        metric(evidence, name, cohort, contract, ax)
    exposure(result if decisions is None else decisions, axes[-1, 0])
    figure.tight_layout()
    return figure
