"""An asyncio client (`grpc.aio`) for services and pipelines that already run an event loop:
the same calls as `rampart.Client`, awaited, and `watch` as an async iterator. In Jupyter,
where a loop is running already, `await` these directly; elsewhere `asyncio.run(...)`.

    import rampart.aio
    async with rampart.aio.connect() as client:
        await client.push(frame)
        async for event in client.watch("checkout-v2"):
            ...
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from rampart import _models as models
from rampart import _signals
from rampart._client import MAX_BATCH, PushResult
from rampart._contracts import backtest_request, backtest_result, contract_text
from rampart._transport import RETRYABLE, Nodes, RampartError, SerializedIngest, check_push, leader_index, settings
from rampart._watch import Event, Resumable, event
from rampart.v1 import rampart_pb2 as pb
from rampart.v1 import rampart_pb2_grpc as rpc


class AsyncClient(Nodes):
    """A connection to a rampart cluster for asyncio code. Use `rampart.aio.connect()`."""

    KIND = grpc.aio

    async def close(self) -> None:
        for c in self._channels:
            await c.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _call(
        self,
        stub: Callable[[grpc.aio.Channel], Any],
        method: str,
        request: Any,
        retry: Collection[grpc.StatusCode] = RETRYABLE,
    ) -> Any:
        """As `Client._call`: failures in `retry` go to the next node, with backoff, until
        `patience_s` has passed. Only for calls safe to repeat."""
        deadline = time.monotonic() + self.patience_s
        pause = 0.05
        while True:
            try:
                call = getattr(stub(self._channels[self._current]), method)
                return await call(request, timeout=self.timeout_s, metadata=self._metadata)
            except grpc.aio.AioRpcError as e:
                if e.code() not in retry or time.monotonic() > deadline:
                    raise RampartError(e.code(), e.details() or "") from None
                self._current = (self._current + 1) % len(self._channels)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)

    async def push(self, data: Any, *, batch_size: int = MAX_BATCH, in_flight: int = 4) -> PushResult:
        """As `Client.push` (the same checks, batches and keys: a batch pushed by either
        client counts once)."""
        check_push(batch_size, in_flight, MAX_BATCH)
        total, makers, rejected = _signals.prepared_batches(data, batch_size)
        result = PushResult(rejected=rejected)
        if total:
            try:
                status = await self._call(rpc.AdminStub, "Status", pb.StatusRequest())
                leader = leader_index(status, self.endpoints)
                self._current = self._current if leader is None else leader
            except RampartError:
                pass
        slots = asyncio.Semaphore(in_flight)

        async def send(position: int, make: Callable[[], _signals.Batch]) -> tuple[_signals.Batch, Any]:
            async with slots:
                chunk = make()
                return chunk, await self._call(SerializedIngest, "Ingest", _signals.request(position, chunk))

        for chunk, answer in await asyncio.gather(*(send(i, m) for i, m in enumerate(makers))):
            result.add(chunk, answer)
        result.rejected.sort(key=lambda r: r.row)
        return result

    async def gates(self) -> models.Table[models.Gate]:
        answer = await self._call(rpc.GatesStub, "ListGates", pb.ListGatesRequest())
        return models.Table(models.Gate.of(g) for g in answer.gates)

    async def gate(self, name: str) -> models.Gate:
        return models.Gate.of(await self._call(rpc.GatesStub, "GetGate", pb.GetGateRequest(gate=name)))

    async def evaluate(self, gate: str, unit: str, cohort: str = "") -> models.Evaluation:
        request = pb.EvaluateRequest(gate=gate, unit_id=unit, cohort=cohort)
        return models.Evaluation.of(gate, unit, await self._call(rpc.GatesStub, "Evaluate", request))

    async def decisions(self, gate: str, after_version: int = 0, limit: int = 1000) -> models.Table[models.Decision]:
        request = pb.ListDecisionsRequest(gate=gate, after_version=after_version, limit=limit)
        answer = await self._call(rpc.GatesStub, "ListDecisions", request)
        return models.Table(models.Decision.of(d) for d in answer.decisions)

    async def evidence(self, gate: str, after_version: int = 0, limit: int = 1000) -> models.Table[models.Evidence]:
        request = pb.ListDecisionsRequest(gate=gate, after_version=after_version, limit=limit)
        answer = await self._call(rpc.GatesStub, "ListDecisions", request)
        return models.Table(row for d in answer.decisions for row in models.Evidence.rows(d))

    async def apply_contract(self, contract: str | Path | Mapping[str, Any]) -> models.Applied:
        """As `client.contract.apply`: an unchanged contract writes nothing."""
        request = pb.PutContractRequest(yaml=contract_text(contract), if_changed=True)
        r = await self._call(rpc.ContractsStub, "PutContract", request)
        return models.Applied(r.gate, r.contract_version, r.gate_version, changed=not r.unchanged)

    async def backtest(self, contract: str | Path | Mapping[str, Any], signals: Any) -> models.Backtest:
        request, good, rejected = backtest_request(contract, signals)
        return backtest_result(await self._call(rpc.ContractsStub, "Backtest", request), good, rejected)

    def watch(self, gates: str | Sequence[str], after_version: Mapping[str, int] | None = None) -> AsyncWatch:
        """As `Client.watch`, an async iterator that resumes on another node from the last
        version it yielded."""
        return AsyncWatch(self, [gates] if isinstance(gates, str) else list(gates), after_version)  # type: ignore[arg-type]


class AsyncWatch(Resumable):
    """Gate states, then decisions, across node failures (see `rampart.Watch`)."""

    def __aiter__(self) -> AsyncWatch:
        return self

    async def __anext__(self) -> Event:
        deadline: float | None = None
        pause = 0.05
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._stream is None:
                self._stream = self._start()
            try:
                message = await self._stream.read()
                if message is not grpc.aio.EOF:
                    return event(message, self.versions)
            except asyncio.CancelledError:
                if self._closed:
                    raise StopAsyncIteration from None
                raise
            except grpc.aio.AioRpcError as e:
                if self._closed or e.code() == grpc.StatusCode.CANCELLED:
                    raise StopAsyncIteration from None
                if e.code() not in RETRYABLE:
                    raise RampartError(e.code(), e.details() or "") from None
            deadline = self._move_on(deadline)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    def close(self) -> None:
        """Ends the watch."""
        self._closed = True
        if self._stream is not None:
            self._stream.cancel()


def connect(
    endpoints: str | Sequence[str] | None = None,
    token: str | None = None,
    ca: str | Path | None = None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
) -> AsyncClient:
    """As `rampart.connect`, an `AsyncClient` (call it inside a running event loop)."""
    endpoints, token, credentials = settings(endpoints, token, ca, cert, key)
    return AsyncClient(endpoints, token=token, credentials=credentials)
