"""What the parts of the client share: the error it raises, the codes worth another try, and
the connection the contract and watch calls go through (`Transport`, which `Client` is)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

import grpc

#: Codes worth another try on another node: the node is down, has no leader or is too slow.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class RampartError(RuntimeError):
    """A call the cluster refused or could not answer: the status code and its message (for
    a bad field, the message starts with the field's name)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class Transport(Protocol):
    """The nodes a client talks to and its one way to call them."""

    endpoints: list[str]
    patience_s: float
    _channels: list[grpc.Channel]
    _metadata: Sequence[tuple[str, str]]
    _current: int

    def _call(
        self,
        stub: Callable[[grpc.Channel], Any],
        method: str,
        request: Any,
        retry: Collection[grpc.StatusCode] = RETRYABLE,
    ) -> Any: ...
