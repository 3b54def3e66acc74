"""MLflow's import in the trace writer's child, without two libraries it would load there and
never use.

`import mlflow` with its SQLAlchemy store is 240 MB of RSS; 56 MB of it are pyarrow, which pandas
loads whenever it is installed, and scipy, which `mlflow.models.utils` loads for sparse model
inputs. Both importers catch the ImportError of a missing one, and the child writes traces,
runs, metrics and JSON tables: never an Arrow table or a sparse matrix. So both are hidden while
MLflow is imported, and visible again afterwards, since a model trained in the run imports
scikit-learn, which needs scipy. Should a later MLflow need them at import, it is imported again
with nothing hidden.
"""

from __future__ import annotations

import sys

UNUSED_BY_THE_WRITER = ("pyarrow", "scipy")


def import_mlflow(tracking_uri: str) -> None:
    """Import MLflow's tracing and, for a sqlite URI, its SQLAlchemy store (seconds), as soon as
    the child starts, while the parent opens the providers, rather than when the first call
    arrives. The store itself is opened later, once the parent has made it: two processes
    creating one new sqlite file would collide."""
    hidden = [name for name in UNUSED_BY_THE_WRITER if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment] - the import system's "not installed"
    try:
        _import(tracking_uri)
    except ImportError:
        _show(hidden)
        _import(tracking_uri)  # the modules that failed left sys.modules: they are imported anew
    finally:
        _show(hidden)


def _import(tracking_uri: str) -> None:
    import mlflow.tracing.utils  # noqa: F401

    if tracking_uri.startswith("sqlite:"):
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401


def _show(hidden: list[str]) -> None:
    for name in hidden:
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]
