"""A 3-node rampart cluster of the release binary on free loopback ports, for the Python test
suites (the OpenFeature SDKs, the Python client): each node's gRPC, HTTP and flagd listeners,
cluster init, waits with deadlines, kill, logs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

DEADLINE_S = 30.0
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], deadline_s: float = DEADLINE_S) -> T:
    """Polls `check` until it returns something other than None, or fails naming `what`."""
    end = time.monotonic() + deadline_s
    last: Exception | None = None
    while time.monotonic() < end:
        try:
            value = check()
            if value is not None:
                return value
        except Exception as e:  # noqa: BLE001 - the last error is reported on timeout
            last = e
        time.sleep(0.05)
    raise AssertionError(f"timed out after {deadline_s}s waiting for {what} (last error: {last})")


def free_ports(n: int) -> list[int]:
    """`n` ports the kernel hands out, held open together so none repeats."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def decode(body: bytes) -> Any:
    """A response body: JSON when it parses, else its text; None when empty."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


@dataclass
class Node:
    id: int
    grpc: int
    http: int
    flagd: int | None
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc}"


class Cluster:
    """Three `rampart serve` processes, initialised as one cluster."""

    def __init__(
        self, binary: Path, work: Path, size: int = 3, access: str | None = None, admin_token: str | None = None
    ) -> None:
        """`access`, when given, is the text of every node's access file; `admin_token` is then
        the token that initialises the cluster."""
        self.binary = binary
        self.work = work
        self.token = admin_token
        access_file = work / "access.toml"
        if access is not None:
            access_file.write_text(access)
        help_text = subprocess.run(
            [str(binary), "serve", "--help"], capture_output=True, text=True, check=True
        ).stdout
        with_flagd = "--flagd" in help_text
        ports = free_ports(3 * size)
        self.nodes: list[Node] = []
        for i in range(size):
            grpc, http, flagd = ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]
            log = work / f"n{i + 1}.log"
            args = [
                str(binary), "serve", "--id", str(i + 1),
                "--listen", f"127.0.0.1:{grpc}",
                "--http", f"127.0.0.1:{http}",
                "--data", str(work / f"n{i + 1}"),
            ]
            if with_flagd:
                args += ["--flagd", f"127.0.0.1:{flagd}"]
            if access is not None:
                args += ["--access", str(access_file)]
            process = subprocess.Popen(
                args,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                env={**os.environ, "RAMPART_LOG": "warn"},
            )
            self.nodes.append(
                Node(i + 1, grpc, http, flagd if with_flagd else None, process, log)
            )
        members: list[str] = []
        for n in self.nodes:
            members += ["--member", f"{n.id}={n.grpc_endpoint}"]
        wait_for(
            "cluster init",
            lambda: subprocess.run(
                [str(binary), "--endpoint", self.nodes[0].grpc_endpoint, "cluster", "init", *members],
                capture_output=True,
                env={**os.environ, **({"RAMPART_TOKEN": admin_token} if admin_token else {})},
            ).returncode
            == 0
            or None,
        )
        for n in self.nodes:
            wait_for(f"/readyz on node {n.id}", lambda n=n: self.request(n, "GET", "/readyz")[0] == 200 or None)

    def request(
        self, node: Node, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """One HTTP call to `node`: its status and body (JSON decoded when it is JSON, None when
        there is none)."""
        data: bytes | None = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers = {"content-type": content_type}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(node.http_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, decode(response.read())
        except urllib.error.HTTPError as e:
            return e.code, decode(e.read())

    def leader(self) -> Node:
        def read() -> Node | None:
            for n in self.live():
                status, body = self.request(n, "GET", "/v1/cluster")
                if status == 200 and body.get("leader"):
                    return next(x for x in self.nodes if x.id == body["leader"])
            return None

        return wait_for("a leader", read)

    def follower(self) -> Node:
        leader = self.leader()
        return next(n for n in self.live() if n.id != leader.id)

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.process.poll() is None]

    def evaluate(self, node: Node, gate: str, unit: str, cohort: str) -> dict[str, Any]:
        """`rampart.v1.Gates/Evaluate` through the JSON API."""
        query = urllib.parse.urlencode({"unit": unit, "cohort": cohort})
        status, body = self.request(node, "GET", f"/v1/gates/{gate}/evaluate?{query}")
        assert status == 200, body
        return body

    def wait_converged(self, gate: str) -> int:
        """Every live node has applied the leader's latest version of `gate`; that version."""
        def same() -> int | None:
            versions = set()
            for n in self.live():
                status, body = self.request(n, "GET", f"/v1/gates/{gate}?consistency=local")
                if status != 200:
                    return None
                versions.add(body["version"])
            return versions.pop() if len(versions) == 1 else None

        return wait_for(f"every node at the same version of {gate}", same)

    def kill(self, node: Node) -> None:
        node.process.kill()
        node.process.wait(timeout=10)

    def stop(self) -> None:
        for n in self.nodes:
            if n.process.poll() is None:
                n.process.terminate()
        for n in self.nodes:
            try:
                n.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                n.process.kill()

    def logs(self) -> str:
        return "\n".join(f"--- node {n.id}\n{n.log.read_text(errors='replace')[-2000:]}" for n in self.nodes)




@contextmanager
def running(binary: Path, prefix: str, **kwargs: Any) -> Iterator[Cluster]:
    """A cluster (`Cluster`'s keyword arguments) in a temporary directory: its nodes' logs are
    printed if the body fails, and it is stopped after."""
    with tempfile.TemporaryDirectory(prefix=prefix) as work:
        c = Cluster(binary, Path(work), **kwargs)
        try:
            yield c
        except BaseException:
            print(c.logs())
            raise
        finally:
            c.stop()
