"""rampart's Python client, for notebooks and data pipelines.

    import rampart
    client = rampart.connect("127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103")
    result = client.push(df)            # a DataFrame of signals; counted once however often run
    client.gate("checkout-v2")          # exposure per cohort, kill switch, last decision
    client.backtest(Path("contract.yaml"), df)   # what the engine would decide; nothing stored

The stubs of `rampart.v1` (`rampart.v1.rampart_pb2`, `rampart_pb2_grpc`) are generated from
the repository's `proto/` when the package is built.
"""

from rampart._client import Client, PushResult, RampartError, connect
from rampart._models import Backtest, BacktestDecision, Cohort, Decision, Evaluation, Gate, Table
from rampart._signals import RejectedRow

__all__ = [
    "Backtest",
    "BacktestDecision",
    "Client",
    "Cohort",
    "Decision",
    "Evaluation",
    "Gate",
    "PushResult",
    "RampartError",
    "RejectedRow",
    "Table",
    "connect",
]
