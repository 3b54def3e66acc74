"""The `llmflow` command: parses options, calls the library, renders. No logic of its own."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ._cli_common import Debug, TrackingUri, err, errors, open_store, out, quiet_mlflow

app = typer.Typer(
    help="Run the same prompts against several LLM providers, track every call in MLflow, "
    "and compare them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class Format(str, Enum):
    table = "table"
    md = "md"
    csv = "csv"
    json = "json"


@app.command()
def run(
    experiment_file: Annotated[
        Path,
        typer.Argument(help="Experiment YAML: prompts, models and settings.", show_default=False),
    ],
    register: Annotated[
        bool,
        typer.Option(
            "--register",
            help="Register every variant (as llm_<provider>_<task> unless register_as names it).",
        ),
    ] = False,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """Send every prompt to every model, record each call in MLflow, print the comparison.

    Exit code 0 when every call succeeded, 1 when some failed or a model was skipped,
    2 when the experiment file is invalid.
    """
    from ._progress import ProgressHooks
    from .experiment import RunRequest, run_experiment

    quiet_mlflow()
    request = RunRequest(
        experiment_file=experiment_file, tracking_uri=tracking_uri, register_all=register
    )
    with errors(debug), ProgressHooks(err) as hooks:
        result = run_experiment(request, hooks)
    if result.comparison is not None:
        _print_comparison(result.comparison, Format.table)
    for skipped in result.skipped:
        err.print(f"[yellow]skipped[/] {skipped.variant.id}: {skipped.reason}", highlight=False)
    if result.n_failed_calls:
        err.print(
            f"[red]{result.n_failed_calls} call(s) failed[/]: see calls.json in each variant run"
        )
    if result.traces_failed:
        err.print(f"[red]{result.traces_failed} trace(s) could not be written[/]")
    for line in result.registered:
        err.print(f"[green]registered[/] {line}")
    for line in result.problems:
        err.print(f"[red]{line}[/]")
    err.print(
        f"MLflow: {result.tracking_uri}  experiment {result.experiment_name!r}  "
        f"run {result.parent_run_id}\n"
        f"Browse it: mlflow ui --backend-store-uri {result.tracking_uri}",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(result.exit_code)


@app.command()
def compare(
    experiment: Annotated[str, typer.Option("--experiment", "-e", help="MLflow experiment name.")],
    run_id: Annotated[
        str | None, typer.Option("--run", help="Parent run id. Default: the latest llmflow run.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """Print the comparison of one `llmflow run`, read from MLflow."""
    from .report import load_comparison

    with errors(debug):
        store = open_store(tracking_uri)
        comparison = load_comparison(store.client, experiment, run_id)
    _print_comparison(comparison, fmt)


def _print_comparison(comparison, fmt: Format) -> None:
    """A rich table on a terminal; markdown when stdout is a pipe or file, unless asked."""
    from .report import to_csv, to_json, to_markdown, to_rich_table

    if fmt is Format.table and out.is_terminal:
        out.print(to_rich_table(comparison))
        return
    render = {Format.csv: to_csv, Format.json: to_json}.get(fmt, to_markdown)
    sys.stdout.write(render(comparison))


from . import cli_registry  # noqa: E402  (attaches register, promote, models)

cli_registry.attach(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
