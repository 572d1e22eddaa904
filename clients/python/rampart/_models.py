"""What the client returns: dataclasses of gates, evaluations, decisions, evidence, contracts
and backtests, each
readable in a notebook (`_repr_html_`) and, in lists, as a pandas DataFrame (`.to_pandas()`)."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from google.protobuf.json_format import MessageToDict

from rampart.v1 import rampart_pb2 as pb

T = TypeVar("T")


def _time(ts: Any, present: bool) -> datetime | None:
    return ts.ToDatetime(tzinfo=timezone.utc) if present else None


def html_table(rows: list[dict[str, Any]]) -> str:
    """Rows as a small HTML table."""
    if not rows:
        return "<p><em>nothing</em></p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _flat(item: Any) -> dict[str, Any]:
    """A dataclass as one table row: nested lists as their length, dicts as JSON."""
    row: dict[str, Any] = {}
    for f in fields(item):
        value = getattr(item, f.name)
        if isinstance(value, list):
            row[f.name] = len(value)
        elif isinstance(value, dict) or is_dataclass(value):
            row[f.name] = json.dumps(asdict(value) if is_dataclass(value) else value, default=str)  # type: ignore[arg-type]
        else:
            row[f.name] = value
    return row


class Table(list[T], Generic[T]):
    """A list of results that shows as a table in a notebook and becomes a DataFrame."""

    def __init__(self, items: Iterable[T] = ()) -> None:
        super().__init__(items)

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame([_flat(i) for i in self])

    def _repr_html_(self) -> str:
        return html_table([_flat(i) for i in self])


@dataclass(frozen=True)
class Cohort:
    cohort: str
    exposure: float
    stage: int
    status: str
    #: When the current stage began (for a new gate: its first window's start).
    stage_since: datetime | None = None


@dataclass(frozen=True)
class Decision:
    """One entry of a gate's decision log, with the evidence it was taken on."""

    gate: str
    version: int
    cohort: str
    action: str
    reason: str
    kill_switch: bool
    decided_by: str
    at: datetime | None
    window_start: datetime | None
    window_end: datetime | None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    #: Per cohort: exposure and status before and after (cohort, from_exposure, to_exposure,
    #: from_status, to_status).
    changes: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, d: pb.Decision) -> Decision:
        return cls(
            gate=d.gate,
            version=d.version,
            cohort=d.cohort,
            action=d.action,
            reason=d.reason,
            kill_switch=d.kill_switch,
            decided_by=d.decided_by,
            at=_time(d.at, d.HasField("at")),
            window_start=_time(d.window_start, d.HasField("window_start")),
            window_end=_time(d.window_end, d.HasField("window_end")),
            evidence=[MessageToDict(e, preserving_proto_field_name=True) for e in d.evidence],
            changes=[
                {"cohort": c.cohort, "from_exposure": c.from_exposure, "to_exposure": c.to_exposure,
                 "from_status": c.from_status, "to_status": c.to_status}
                for c in d.changes
            ],
        )

    def _repr_html_(self) -> str:
        return html_table([_flat(self)]) + html_table(self.evidence)


def _optional(message: Any, name: str) -> float | None:
    return getattr(message, name) if message.HasField(name) else None


#: Evidence fields with a column of their own in `Evidence`; the rest go to its `detail`.
_EVIDENCE_COLUMNS = (
    "metric", "cohort", "treatment", "control", "baseline", "baseline_source", "delta", "relative",
    "p_value", "e_value", "alpha", "samples_treatment", "samples_control", "zone", "test", "summary",
)


@dataclass(frozen=True)
class Evidence:
    """What one metric showed in one cohort's window, as a decision judged it: one row per
    decision and metric (`Client.evidence`). `delta_low`/`delta_high` bound `delta`
    (treatment − control or baseline); every other figure the engine recorded is in
    `detail` (docs/engine.md says what each means)."""

    gate: str
    version: int
    action: str
    decided_by: str
    at: datetime | None
    metric: str
    cohort: str
    window_start: datetime | None
    window_end: datetime | None
    treatment: float | None
    control: float | None
    baseline: float | None
    baseline_source: str
    delta: float | None
    delta_low: float | None
    delta_high: float | None
    relative: float | None
    p_value: float | None
    e_value: float | None
    alpha: float | None
    samples_treatment: int
    samples_control: int
    zone: str
    test: str
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def rows(cls, d: pb.Decision) -> list[Evidence]:
        """One row per metric of a logged decision."""
        at = _time(d.at, d.HasField("at"))
        return [cls.of(e, d.gate, d.version, d.action, d.decided_by, at) for e in d.evidence]

    @classmethod
    def of(cls, e: pb.MetricEvidence, gate: str, version: int, action: str, decided_by: str, at: datetime | None) -> Evidence:
        interval = e.HasField("delta_interval")
        detail = {
            k: v
            for k, v in MessageToDict(e, preserving_proto_field_name=True).items()
            if k not in _EVIDENCE_COLUMNS and k not in ("window_start", "window_end", "delta_interval")
        }
        return cls(
            gate=gate,
            version=version,
            action=action,
            decided_by=decided_by,
            at=at,
            metric=e.metric,
            cohort=e.cohort,
            window_start=_time(e.window_start, e.HasField("window_start")),
            window_end=_time(e.window_end, e.HasField("window_end")),
            treatment=_optional(e, "treatment"),
            control=_optional(e, "control"),
            baseline=_optional(e, "baseline"),
            baseline_source=e.baseline_source,
            delta=_optional(e, "delta"),
            delta_low=e.delta_interval.low if interval else None,
            delta_high=e.delta_interval.high if interval else None,
            relative=_optional(e, "relative"),
            p_value=_optional(e, "p_value"),
            e_value=_optional(e, "e_value"),
            alpha=_optional(e, "alpha"),
            samples_treatment=e.samples_treatment,
            samples_control=e.samples_control,
            zone=e.zone,
            test=e.test,
            summary=e.summary,
            detail=detail,
        )


@dataclass(frozen=True)
class ContractInfo:
    """A gate's contract: its version and its YAML as the cluster stores it (normalized)."""

    gate: str
    contract_version: int
    yaml: str
    description: str
    owner: str

    def _repr_html_(self) -> str:
        title = f"<p><b>{html.escape(self.gate)}</b> contract version {self.contract_version}</p>"
        return title + f"<pre>{html.escape(self.yaml)}</pre>"


@dataclass(frozen=True)
class Applied:
    """What `contract.apply` did: the gate, its contract and gate versions after it, and
    whether it wrote anything (`changed` is False when the contract equalled the current one)."""

    gate: str
    contract_version: int
    gate_version: int
    changed: bool

    def _repr_html_(self) -> str:
        return html_table([asdict(self)])


@dataclass(frozen=True)
class Gate:
    """A gate's state: its cohorts' exposure and status, the kill switch, the last decision."""

    gate: str
    version: int
    contract_version: int
    kill_switch: bool
    treatment: str
    fallback: str
    signals_accepted: int
    cohorts: list[Cohort] = field(default_factory=list)
    last_decision: Decision | None = None

    @classmethod
    def of(cls, g: pb.GateState) -> Gate:
        return cls(
            gate=g.gate,
            version=g.version,
            contract_version=g.contract_version,
            kill_switch=g.kill_switch,
            treatment=g.treatment,
            fallback=g.fallback,
            signals_accepted=g.signals_accepted,
            cohorts=[
                Cohort(c.cohort, c.exposure, c.stage, c.status, _time(c.stage_since, c.HasField("stage_since")))
                for c in g.cohorts
            ],
            last_decision=Decision.of(g.last_decision) if g.HasField("last_decision") else None,
        )

    def _repr_html_(self) -> str:
        title = f"<p><b>{html.escape(self.gate)}</b> v{self.version}, kill switch {'on' if self.kill_switch else 'off'}</p>"
        return title + html_table([asdict(c) for c in self.cohorts])


@dataclass(frozen=True)
class Evaluation:
    """The variant a unit gets."""

    gate: str
    unit: str
    variant: str
    treatment: bool
    bucket: int
    exposure: float
    kill_switch: bool
    gate_version: int

    @classmethod
    def of(cls, gate: str, unit: str, r: pb.EvaluateResponse) -> Evaluation:
        return cls(gate, unit, r.variant, r.treatment, r.bucket, r.exposure, r.kill_switch, r.gate_version)

    def _repr_html_(self) -> str:
        return html_table([asdict(self)])


@dataclass(frozen=True)
class BacktestDecision:
    cohort: str
    window_start: datetime | None
    window_end: datetime | None
    verdict: str
    from_exposure: float
    to_exposure: float
    status: str
    kill_switch: bool
    reason: str
    evidence: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Backtest:
    """What the engine would have decided: one decision per cohort and window, where each
    cohort ended, the rows that were not signals, and the report as `rampart backtest
    --json` prints it (`report`)."""

    gate: str
    signals_used: int
    windows: int
    kill_switch: bool
    decisions: Table[BacktestDecision]
    final_cohorts: list[Cohort]
    rejected: list[Any]
    report: dict[str, Any]
    #: The decisions' evidence, one row per window, cohort and metric (`version` numbers the
    #: decision from 1, `action` is its verdict).
    evidence: Table[Evidence] = field(default_factory=Table)

    @classmethod
    def of(cls, r: pb.BacktestResponse, rejected: list[Any]) -> Backtest:
        decisions = Table(
            BacktestDecision(
                cohort=d.cohort,
                window_start=_time(d.window_start, d.HasField("window_start")),
                window_end=_time(d.window_end, d.HasField("window_end")),
                verdict=d.verdict,
                from_exposure=d.from_exposure,
                to_exposure=d.to_exposure,
                status=d.status,
                kill_switch=d.kill_switch,
                reason=d.reason,
                evidence=[MessageToDict(e, preserving_proto_field_name=True) for e in d.evidence],
            )
            for d in r.decisions
        )
        return cls(
            gate=r.gate,
            signals_used=r.signals_used,
            windows=r.windows,
            kill_switch=r.kill_switch,
            decisions=decisions,
            final_cohorts=[Cohort(c.cohort, c.exposure, c.stage, c.status) for c in r.final_cohorts],
            rejected=rejected,
            report=json.loads(r.report_json),
            evidence=Table(
                Evidence.of(e, r.gate, i, d.verdict, "backtest", _time(d.window_end, d.HasField("window_end")))
                for i, d in enumerate(r.decisions, start=1)
                for e in d.evidence
            ),
        )

    def to_pandas(self) -> Any:
        return self.decisions.to_pandas()

    def _repr_html_(self) -> str:
        title = f"<p>backtest of <b>{html.escape(self.gate)}</b>: {self.windows} windows, {self.signals_used} signals</p>"
        return title + self.decisions._repr_html_()
