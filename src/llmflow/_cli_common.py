"""What every `llmflow` command shares: consoles, common options, error rendering."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True, soft_wrap=True, highlight=False)

TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI. Default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here.",
        show_default=False,
    ),
]
Debug = Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")]
ExperimentName = Annotated[
    str, typer.Option("--experiment", "-e", help="MLflow experiment name.", show_default=False)
]
ParentRun = Annotated[
    str | None,
    typer.Option(
        "--run", help="Parent run id. Default: the latest llmflow run.", show_default=False
    ),
]


def quiet_mlflow() -> None:
    """MLflow's INFO lines (database migrations, queue flushes) are noise to a CLI user."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def open_store(tracking_uri: str | None):
    """The RunStore for --tracking-uri (or its defaults); imports MLflow only now."""
    from .config import resolve_tracking_uri
    from .tracking.runs import RunStore

    quiet_mlflow()
    return RunStore(resolve_tracking_uri(tracking_uri))


class errors:
    """Turn llmflow's errors into one red line and an exit code (2 for bad input)."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, tb) -> bool:
        from .errors import ConfigError, LlmflowError

        if error is None or not isinstance(error, LlmflowError) or self.debug:
            return False
        err.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(2 if isinstance(error, ConfigError) else 1)
