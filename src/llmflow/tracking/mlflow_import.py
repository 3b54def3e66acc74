"""MLflow's import in the trace writer's child, without pyarrow and scipy (_process.py).

MLflow's tracing with its SQLAlchemy store is 223 MB of RSS, 180 MB without pyarrow, which pandas
loads whenever it is installed, and scipy, which `mlflow.models.utils` loads for sparse model
inputs; the writer's peak over a 1,000-call run is 80 MB less. The child writes traces, runs,
metrics and JSON tables: never an Arrow table or a sparse matrix. Keep it so: a model the child
logs or registers takes no input example (MLflow, imported without scipy, would refuse a sparse
one; pandas, without pyarrow, keeps strings as objects).
"""

from __future__ import annotations

from .._process import import_lean
from .mlflow_compat import SQL_STORE_MODULE, TRACING_MODULE

UNUSED_BY_THE_WRITER = ("pyarrow", "scipy")


def import_mlflow(tracking_uri: str) -> None:
    """Import MLflow's tracing and, for a sqlite URI, its SQLAlchemy store (seconds), as soon as
    the child starts, while the parent opens the providers, rather than when the first call
    arrives. The store itself is opened later, once the parent has made it: two processes
    creating one new sqlite file would collide."""
    import_lean(TRACING_MODULE, UNUSED_BY_THE_WRITER)
    if tracking_uri.startswith("sqlite:"):
        import_lean(SQL_STORE_MODULE, UNUSED_BY_THE_WRITER)
