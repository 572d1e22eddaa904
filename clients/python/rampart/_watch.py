"""`Client.watch`: a gate's state, then each decision as it commits, across node failures.

The stream resumes where it stopped: the watch keeps the last version it handed out per
gate and, when its node goes away (or ends the stream), asks the next node for the decisions
after those versions — no gap and no duplicate, as `rampart.v1.Gates/Watch` promises."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from rampart import _models as models
from rampart._transport import RETRYABLE, RampartError
from rampart.v1 import rampart_pb2 as pb
from rampart.v1 import rampart_pb2_grpc as rpc

if TYPE_CHECKING:
    from rampart._transport import Transport

Event = models.Gate | models.Decision


def event(message: pb.WatchEvent, versions: dict[str, int]) -> Event:
    """A watch event as a `Gate` or a `Decision`, its version noted in `versions`."""
    if message.HasField("state"):
        versions[message.state.gate] = message.state.version
        return models.Gate.of(message.state)
    versions[message.decision.gate] = message.decision.version
    return models.Decision.of(message.decision)


class Resumable:
    """What a watch keeps to resume: its gates, the last version it yielded of each, the node
    it reads from and how often it moved."""

    def __init__(self, client: Transport, gates: Sequence[str], after_version: Mapping[str, int] | None) -> None:
        if not gates:
            raise ValueError("gates: name at least one gate to watch")
        self._client = client
        self._gates = list(gates)
        #: The last version handed out per gate: where a reconnect resumes.
        self.versions: dict[str, int] = dict(after_version or {})
        self._node = client._current
        self._stream: Any = None
        self._closed = False
        #: How often the watch reconnected.
        self.reconnects = 0

    @property
    def endpoint(self) -> str:
        """The node the watch reads from now."""
        return self._client.endpoints[self._node]

    def _start(self) -> Any:
        """The Watch call on the current node, resuming after `versions`."""
        request = pb.WatchRequest(gates=self._gates, after_version=self.versions)
        return rpc.GatesStub(self._client._channels[self._node]).Watch(request, metadata=self._client._metadata)

    def _move_on(self, deadline: float | None) -> float:
        """After a failure: the next node, and the outage's deadline (set by its first
        failure); past it, `RampartError`."""
        now = time.monotonic()
        deadline = deadline if deadline is not None else now + self._client.patience_s
        if now > deadline:
            raise RampartError(grpc.StatusCode.UNAVAILABLE, f"no node resumed the watch within {self._client.patience_s} s")
        self._stream = None
        self._node = (self._node + 1) % len(self._client._channels)
        self.reconnects += 1
        return deadline


class Watch(Resumable, Iterator[Event]):
    """An iterator of `Gate` (a gate's state, first for each gate not resumed) and `Decision`
    events. Reconnects to the next node on failure, patient for the client's `patience_s`
    after the last event or connection; `close()` (from any thread) ends it."""

    def __init__(self, client: Transport, gates: Sequence[str], after_version: Mapping[str, int] | None) -> None:
        super().__init__(client, gates, after_version)
        self._lock = threading.Lock()

    def __iter__(self) -> Watch:
        return self

    def _open(self) -> None:
        with self._lock:
            if self._closed:
                raise StopIteration
            self._stream = self._start()

    def __next__(self) -> Event:
        deadline: float | None = None  # set by the first failure of this outage
        pause = 0.05
        while True:
            if self._closed:
                raise StopIteration
            if self._stream is None:
                self._open()
            try:
                return self._event(next(self._stream))  # type: ignore[call-overload]
            except StopIteration:
                pass  # the node ended the stream (it is stopping): resume on another
            except grpc.RpcError as e:
                code = e.code()  # type: ignore[attr-defined]
                if self._closed or code == grpc.StatusCode.CANCELLED:
                    raise StopIteration from None
                if code not in RETRYABLE:
                    raise RampartError(code, e.details() or "") from None  # type: ignore[attr-defined]
            deadline = self._move_on(deadline)
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _event(self, message: pb.WatchEvent) -> Event:
        return event(message, self.versions)

    def close(self) -> None:
        """Ends the watch; an iteration waiting in another thread stops."""
        with self._lock:
            self._closed = True
            if self._stream is not None:
                self._stream.cancel()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
