"""The client: connections to one or several nodes, failing over between them, and the calls
notebooks and pipelines make. Synchronous on `grpcio` (works inside Jupyter, where
`asyncio.run` fails)."""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc

from rampart import _models as models
from rampart import _signals
from rampart._contracts import Contracts, backtest_request, backtest_result
from rampart._transport import RETRYABLE, Nodes, RampartError, SerializedIngest, check_push, leader_index, settings
from rampart._watch import Watch
from rampart.v1 import rampart_pb2 as pb
from rampart.v1 import rampart_pb2_grpc as rpc

T = TypeVar("T")

#: Most signals the server takes in one batch (its `max_batch_signals` default).
MAX_BATCH = 1000
#: Override kinds, as `override` takes them.
OVERRIDE_KINDS = {
    "hold": pb.HOLD,
    "resume": pb.RESUME,
    "approve": pb.APPROVE,
    "rollback": pb.ROLLBACK,
    "kill": pb.KILL,
    "set_exposure": pb.SET_EXPOSURE,
}


@dataclass
class PushResult:
    """What a push did: signals counted now, signals already counted by an earlier push of
    the same batches (nothing counted twice), and every row not counted with why."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[_signals.RejectedRow] = field(default_factory=list)

    def add(self, chunk: _signals.Batch, answer: pb.IngestResponse) -> None:
        """Counts a batch's answer; the cluster's rejections name the rows they came from."""
        counted = len(chunk) - len({r.index for r in answer.rejected})
        if answer.duplicate:
            self.duplicates += counted
        else:
            self.accepted += counted
        for r in answer.rejected:
            row = chunk[r.index][0] if r.index < len(chunk) else r.index
            column = r.field.split(".", 1)[1] if "." in r.field else r.field
            self.rejected.append(_signals.RejectedRow(row, column, r.reason))

    def _repr_html_(self) -> str:
        return models.html_table(
            [{"accepted": self.accepted, "duplicates": self.duplicates, "rejected": len(self.rejected)}]
        )


class Client(Nodes):
    """A connection to a rampart cluster. Use `rampart.connect()`."""

    @property
    def contract(self) -> Contracts:
        """Contracts: `client.contract.apply(yaml_or_dict)`, `.get(gate)`, `.list()`, `.delete(gate)`."""
        return Contracts(self)

    def close(self) -> None:
        for c in self._channels:
            c.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(
        self,
        stub: Callable[[grpc.Channel], Any],
        method: str,
        request: Any,
        retry: Collection[grpc.StatusCode] = RETRYABLE,
    ) -> Any:
        """`method` on the current node; on a failure in `retry`, on the next node, with
        backoff, until `patience_s` has passed. Only for calls safe to repeat."""
        deadline = time.monotonic() + self.patience_s
        pause = 0.05
        while True:
            channel = self._channels[self._current]
            try:
                return getattr(stub(channel), method)(request, timeout=self.timeout_s, metadata=self._metadata)
            except grpc.RpcError as e:
                code = e.code()  # type: ignore[attr-defined]
                if code not in retry or time.monotonic() > deadline:
                    raise RampartError(code, e.details() or "") from None  # type: ignore[attr-defined]
                self._current = (self._current + 1) % len(self._channels)
                time.sleep(pause)
                pause = min(pause * 2, 1.0)

    def _to_leader(self) -> None:
        """Makes the leader the current node when it is one of the endpoints, so writes are
        not forwarded (one hop less per batch); otherwise leaves the current node."""
        try:
            status = self._call(rpc.AdminStub, "Status", pb.StatusRequest())
        except RampartError:
            return  # writes find the leader through whichever node answers
        leader = leader_index(status, self.endpoints)
        if leader is not None:
            self._current = leader

    # ---------- signals

    def push(
        self,
        data: Any,
        *,
        batch_size: int = MAX_BATCH,
        in_flight: int = 4,
        progress: bool | None = None,
    ) -> PushResult:
        """Pushes signal rows: a list of dicts, a pandas DataFrame, or the path of a
        JSON-lines file (the format of `rampart signal push`). Rows are checked here first;
        those that cannot be signals are reported (row, column, reason) and the rest sent in
        batches of `batch_size`, `in_flight` at a time, each under a key derived from its
        position and content, so running the same cell again counts nothing twice (with the
        same `batch_size`; the cluster keeps keys 24 h). Batches are retried across nodes
        until the cluster answers. `progress`: a tqdm bar (default: when there is more than
        one batch and tqdm is installed)."""
        check_push(batch_size, in_flight, MAX_BATCH)
        total, makers, rejected = _signals.prepared_batches(data, batch_size)
        result = PushResult(rejected=rejected)
        if total:
            self._to_leader()
        bar = _progress(total, progress if progress is not None else len(makers) > 1)

        def send(numbered: tuple[int, Callable[[], _signals.Batch]]) -> tuple[_signals.Batch, Any]:
            position, make = numbered
            chunk = make()
            return chunk, self._call(SerializedIngest, "Ingest", _signals.request(position, chunk))

        with ThreadPoolExecutor(max_workers=in_flight) as pool:
            for chunk, answer in pool.map(send, enumerate(makers)):
                result.add(chunk, answer)
                if bar is not None:
                    bar.update(len(chunk))
        if bar is not None:
            bar.close()
        result.rejected.sort(key=lambda r: r.row)
        return result

    # ---------- gates

    def gates(self) -> models.Table[models.Gate]:
        """Every gate (linearizable: what the leader has committed)."""
        answer = self._call(rpc.GatesStub, "ListGates", pb.ListGatesRequest())
        return models.Table(models.Gate.of(g) for g in answer.gates)

    def gate(self, name: str) -> models.Gate:
        """One gate: cohorts, exposure, status, kill switch, last decision."""
        return models.Gate.of(self._call(rpc.GatesStub, "GetGate", pb.GetGateRequest(gate=name)))

    def evaluate(self, gate: str, unit: str, cohort: str = "") -> models.Evaluation:
        """The variant `unit` gets (sticky bucketing, as every door answers)."""
        request = pb.EvaluateRequest(gate=gate, unit_id=unit, cohort=cohort)
        return models.Evaluation.of(gate, unit, self._call(rpc.GatesStub, "Evaluate", request))

    def decisions(self, gate: str, after_version: int = 0, limit: int = 1000) -> models.Table[models.Decision]:
        """The gate's decisions after `after_version`, oldest first, with their evidence."""
        request = pb.ListDecisionsRequest(gate=gate, after_version=after_version, limit=limit)
        answer = self._call(rpc.GatesStub, "ListDecisions", request)
        return models.Table(models.Decision.of(d) for d in answer.decisions)

    def evidence(self, gate: str, after_version: int = 0, limit: int = 1000) -> models.Table[models.Evidence]:
        """The evidence of the gate's decisions after `after_version`: one row per decision
        and metric (treatment, control or baseline, delta with its interval, p- or e-value,
        zone, samples), e.g. `client.evidence("checkout-v2").to_pandas()`."""
        return models.Table(
            row
            for d in self._call(
                rpc.GatesStub, "ListDecisions", pb.ListDecisionsRequest(gate=gate, after_version=after_version, limit=limit)
            ).decisions
            for row in models.Evidence.rows(d)
        )

    def watch(self, gates: str | Sequence[str], after_version: Mapping[str, int] | None = None) -> Watch:
        """The gates' states, then every decision as it commits: `for event in
        client.watch(["checkout-v2"]): ...` yields `Gate` and `Decision`. Gates in
        `after_version` start after that version (no state first). Survives the loss of its
        node: it resumes on another from the last version it yielded, with no gap and no
        duplicate. `close()` ends it."""
        return Watch(self, [gates] if isinstance(gates, str) else list(gates), after_version)

    # ---------- overrides

    def override(
        self,
        gate: str,
        kind: str,
        *,
        reason: str,
        cohort: str = "",
        exposure: float | None = None,
        actor: str | None = None,
    ) -> models.Decision:
        """A human's decision on a gate (operator role): `kind` is hold, resume, approve,
        rollback, kill or set_exposure (with `exposure`, a percentage); `cohort` empty acts on
        every cohort. `actor` defaults to `RAMPART_ACTOR`, else the login name. Returns the
        decision recorded. When the answer is lost (the node fails), the gate's log is checked
        before the override is sent again, so a retry does not record it twice."""
        k = kind.lower().replace("-", "_")
        if k not in OVERRIDE_KINDS:
            raise ValueError(f"kind: {kind!r} is not one of {sorted(OVERRIDE_KINDS)}")
        if (exposure is None) == (k == "set_exposure"):
            raise ValueError("exposure: give it with set_exposure, and only then")
        if not reason.strip():
            raise ValueError("reason: every override says why")
        who = (actor or os.environ.get("RAMPART_ACTOR") or getpass.getuser()).strip()
        request = pb.OverrideRequest(
            gate=gate, cohort=cohort, kind=OVERRIDE_KINDS[k], exposure=exposure or 0.0, actor=who, reason=reason
        )
        seen = self.gate(gate).version
        deadline = time.monotonic() + self.patience_s
        while True:
            try:
                return models.Decision.of(self._call(rpc.OverridesStub, "Override", request, retry=()))
            except RampartError as e:
                if e.code not in RETRYABLE or time.monotonic() > deadline:
                    raise
            landed = self._override_landed(gate, seen, f"override:{k}", cohort, who, reason.strip())
            if landed is not None:
                return landed
            self._current = (self._current + 1) % len(self._channels)
            time.sleep(0.1)

    def _override_landed(
        self, gate: str, after: int, action: str, cohort: str, actor: str, reason: str
    ) -> models.Decision | None:
        """The override committed after version `after`, if one did (a lost answer)."""
        for d in self._call(rpc.GatesStub, "ListDecisions", pb.ListDecisionsRequest(gate=gate, after_version=after)).decisions:
            if (
                d.action == action
                and d.cohort == cohort
                and d.decided_by.startswith(f"operator:{actor}")
                and d.reason.endswith(f": {reason}")
            ):
                return models.Decision.of(d)
        return None

    # ---------- backtest

    def backtest(self, contract: str | Path | Mapping[str, Any], signals: Any) -> models.Backtest:
        """Replays `signals` (rows as `push` takes them) against `contract` (its YAML text, a
        `Path` to it, or a dict) with the cluster's engine; nothing is stored. Rows that cannot be
        signals are in the result's `rejected`."""
        request, good, rejected = backtest_request(contract, signals)
        return backtest_result(self._call(rpc.ContractsStub, "Backtest", request), good, rejected)


def _progress(total: int, wanted: bool) -> Any:
    if not wanted:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="signal", desc="push")


def connect(
    endpoints: str | Sequence[str] | None = None,
    token: str | None = None,
    ca: str | Path | None = None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
) -> Client:
    """A client of the cluster at `endpoints` (a list, or a comma-separated string; default
    `RAMPART_ENDPOINT`, else 127.0.0.1:7101), with `token` (default `RAMPART_TOKEN`) and, for
    a cluster serving mutual TLS, `ca`, `cert` and `key` (default `RAMPART_CA/CERT/KEY`)."""
    endpoints, token, credentials = settings(endpoints, token, ca, cert, key)
    return Client(endpoints, token=token, credentials=credentials)
