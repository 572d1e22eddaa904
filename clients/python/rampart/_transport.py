"""What the parts of the client share: the error it raises, the codes worth another try, the
nodes and their channels (`Nodes`, under both the sync and the asyncio client), the settings
`connect` reads, and the connection the contract and watch calls go through (`Transport`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, Protocol

import grpc

from rampart.v1 import rampart_pb2 as pb

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


#: Keepalive pings on every channel, so a watch notices a node that vanished without a word
#: (a partition, a host gone) within about half a minute.
CHANNEL_OPTIONS = [("grpc.keepalive_time_ms", 20_000), ("grpc.keepalive_timeout_ms", 10_000)]


def leader_index(status: pb.ClusterStatus, endpoints: Sequence[str]) -> int | None:
    """Which of `endpoints` is the leader `status` names, if one is."""
    if not status.HasField("leader_id"):
        return None
    addrs = {n.addr for n in status.nodes if n.id == status.leader_id}
    return next((i for i, e in enumerate(endpoints) if target(e)[0] in addrs), None)


def channel(kind: Any, endpoint: str, credentials: grpc.ChannelCredentials | None) -> Any:
    """A channel to `endpoint` from `kind` (the `grpc` module, or `grpc.aio`)."""
    address, tls = target(endpoint)
    if tls or credentials is not None:
        return kind.secure_channel(address, credentials or grpc.ssl_channel_credentials(), options=CHANNEL_OPTIONS)
    return kind.insecure_channel(address, options=CHANNEL_OPTIONS)


def target(endpoint: str) -> tuple[str, bool]:
    """`host:port` and whether it is TLS, from an endpoint as the CLI takes it."""
    if endpoint.startswith("https://"):
        return endpoint[len("https://") :].rstrip("/"), True
    return endpoint.removeprefix("http://").rstrip("/"), False


class Nodes:
    """The endpoints, their channels, the token and the patience both clients share."""

    #: The module channels come from: `grpc`, or `grpc.aio`.
    KIND: Any = grpc

    def __init__(
        self,
        endpoints: Sequence[str],
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        patience_s: float = 20.0,
        timeout_s: float = 10.0,
    ) -> None:
        if not endpoints:
            raise ValueError("endpoints: name at least one node")
        self.endpoints = list(endpoints)
        self.patience_s = patience_s
        self.timeout_s = timeout_s
        self._metadata: Sequence[tuple[str, str]] = (("authorization", f"Bearer {token}"),) if token else ()
        self._channels: list[Any] = [channel(self.KIND, e, credentials) for e in self.endpoints]
        self._current = 0


class SerializedIngest:
    """`Signals/Ingest` for a request serialized already (`_signals.request`)."""

    def __init__(self, chan: Any) -> None:
        self.Ingest = chan.unary_unary(
            "/rampart.v1.Signals/Ingest", request_serializer=None, response_deserializer=pb.IngestResponse.FromString
        )


def settings(
    endpoints: str | Sequence[str] | None,
    token: str | None,
    ca: str | Path | None,
    cert: str | Path | None,
    key: str | Path | None,
) -> tuple[list[str], str | None, grpc.ChannelCredentials | None]:
    """`connect`'s arguments, with the environment's defaults, as endpoints, token and TLS."""
    if endpoints is None:
        endpoints = os.environ.get("RAMPART_ENDPOINT", "127.0.0.1:7101")
    if isinstance(endpoints, str):
        endpoints = [e.strip() for e in endpoints.split(",") if e.strip()]
    token = token if token is not None else os.environ.get("RAMPART_TOKEN")
    files = [f if f is not None else os.environ.get(f"RAMPART_{n}") for f, n in ((ca, "CA"), (cert, "CERT"), (key, "KEY"))]
    credentials = None
    if any(files):
        if not all(files):
            raise ValueError("ca, cert, key: give all three (or none)")
        ca_pem, cert_pem, key_pem = (Path(f).read_bytes() for f in files)  # type: ignore[arg-type]
        credentials = grpc.ssl_channel_credentials(ca_pem, key_pem, cert_pem)
    return list(endpoints), token, credentials


def check_push(batch_size: int, in_flight: int, most: int) -> None:
    """`push`'s arguments, or ValueError naming the one at fault."""
    if not 1 <= batch_size <= most:
        raise ValueError(f"batch_size: {batch_size} is not in [1, {most}]")
    if in_flight < 1:
        raise ValueError(f"in_flight: {in_flight} is not a positive number of batches")
