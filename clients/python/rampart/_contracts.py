"""`Client.contract`: apply, get, list and delete gates' contracts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rampart import _models as models
from rampart import _signals
from rampart.v1 import rampart_pb2 as pb
from rampart.v1 import rampart_pb2_grpc as rpc

if TYPE_CHECKING:
    from rampart._transport import Transport


def contract_text(contract: str | Path | Mapping[str, Any]) -> str:
    """A contract as YAML: its text, a `Path` to it, or a dict (JSON is YAML)."""
    if isinstance(contract, Path):
        return contract.read_text(encoding="utf-8")
    if isinstance(contract, Mapping):
        return json.dumps(contract)
    if isinstance(contract, str):
        return contract
    raise TypeError(f"contract: expected YAML text, a Path or a dict, got {type(contract).__name__}")


def backtest_request(contract: str | Path | Mapping[str, Any], signals: Any) -> tuple[pb.BacktestRequest, Any, list[Any]]:
    """The Backtest request of a contract and signal rows, the rows that are signals and those
    that are not (for `backtest_result`)."""
    good, rejected = _signals.prepare(signals)
    request = pb.BacktestRequest(
        yaml=contract_text(contract), arrivals=[pb.BacktestArrival(signal=s, received=r) for _, s, r in good]
    )
    return request, good, rejected


def backtest_result(answer: pb.BacktestResponse, good: Any, rejected: list[Any]) -> models.Backtest:
    """The report, the cluster's rejections named by the rows they came from."""
    for r in answer.rejected:
        position = good[r.index][0] if r.index < len(good) else r.index
        rejected.append(_signals.RejectedRow(position, r.field.rsplit(".", 1)[-1], r.reason))
    return models.Backtest.of(answer, rejected)


def _info(c: pb.ContractInfo) -> models.ContractInfo:
    return models.ContractInfo(c.gate, c.contract_version, c.yaml, c.description, c.owner)


class Contracts:
    """The cluster's contracts (`client.contract`)."""

    def __init__(self, client: Transport) -> None:
        self._client = client

    def apply(self, contract: str | Path | Mapping[str, Any]) -> models.Applied:
        """Creates or updates the gate the contract names. A contract equal to the current one
        (after parsing: formatting and comments do not count) writes nothing and answers
        `changed=False`, so a pipeline can apply its contract on every run; that also makes
        the call safe to retry on another node."""
        request = pb.PutContractRequest(yaml=contract_text(contract), if_changed=True)
        r = self._client._call(rpc.ContractsStub, "PutContract", request)
        return models.Applied(r.gate, r.contract_version, r.gate_version, changed=not r.unchanged)

    def get(self, gate: str) -> models.ContractInfo:
        """The gate's current contract."""
        return _info(self._client._call(rpc.ContractsStub, "GetContract", pb.GetContractRequest(gate=gate)))

    def list(self) -> models.Table[models.ContractInfo]:
        """Every gate's contract."""
        answer = self._client._call(rpc.ContractsStub, "ListContracts", pb.ListContractsRequest())
        return models.Table(_info(c) for c in answer.contracts)

    def delete(self, gate: str) -> int:
        """Deletes the gate's contract (its decision log stays); the gate's version after it.
        Not retried: a lost answer raises, and the next `get` says whether it went."""
        answer = self._client._call(rpc.ContractsStub, "DeleteContract", pb.DeleteContractRequest(gate=gate), retry=())
        return int(answer.gate_version)
