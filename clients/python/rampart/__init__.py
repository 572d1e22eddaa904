"""rampart's Python client, for notebooks and data pipelines.

    import rampart
    client = rampart.connect("127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103")
    result = client.push(df)            # a DataFrame of signals; counted once however often run
    client.gate("checkout-v2")          # exposure per cohort, kill switch, last decision
    client.backtest(Path("contract.yaml"), df)   # what the engine would decide; nothing stored
    client.contract.apply(Path("contract.yaml"))  # live; a second apply of the same writes nothing
    for event in client.watch("checkout-v2"):     # the state, then each decision as it commits
        print(event)

Helpers build signals from raw rows: `rampart.rates` (event counts), `rampart.moments` (a
column of values), `rampart.observations` (scored reviews with confidence and topics).
`rampart.plot(backtest, "review_sentiment", contract)` draws a metric against its baseline
per window and the exposure over time (matplotlib: the `[plot]` extra).

The stubs of `rampart.v1` (`rampart.v1.rampart_pb2`, `rampart_pb2_grpc`) are generated from
the repository's `proto/` when the package is built.
"""

from rampart._client import Client, PushResult, RampartError, connect
from rampart._helpers import moments, observations, rates
from rampart._plot import exposure as plot_exposure
from rampart._plot import metric as plot_metric
from rampart._plot import plot
from rampart._models import (
    Applied,
    Backtest,
    BacktestDecision,
    Cohort,
    ContractInfo,
    Decision,
    Evaluation,
    Evidence,
    Gate,
    Table,
)
from rampart._signals import RejectedRow
from rampart._watch import Watch

__all__ = [
    "Applied",
    "Backtest",
    "BacktestDecision",
    "Client",
    "Cohort",
    "ContractInfo",
    "Decision",
    "Evaluation",
    "Evidence",
    "Gate",
    "PushResult",
    "RampartError",
    "RejectedRow",
    "Table",
    "Watch",
    "connect",
    "moments",
    "observations",
    "plot",
    "plot_exposure",
    "plot_metric",
    "rates",
]
