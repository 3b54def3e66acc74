"""The `llmflow` command: parses options, calls the library, renders. No logic of its own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

try:  # typer 0.2x parses with its own copy of click; a usage error is one of its exceptions
    from typer._click.exceptions import ClickException
except ImportError:  # older typer: click itself
    from click.exceptions import ClickException

from .common import Debug, LeanGroup, ReportDir, TrackingUri, err
from .running import run_and_report

app = typer.Typer(
    help="Run the same prompts against several LLM providers, track every call in MLflow, "
    "and compare them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=LeanGroup,
    rich_markup_mode=None,  # click's plain help: typer's rich help imports ~0.2 s of modules
)


@app.command()
def run(
    experiment_file: Annotated[
        Path,
        typer.Argument(help="Experiment YAML: prompts, models and settings.", show_default=False),
    ],
    run_id: Annotated[
        str | None,
        typer.Argument(
            help="With --resume: the run to continue, or a unique prefix of its id (default: "
            "the latest).",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted run: only unfinished calls are sent, into the same "
            "MLflow runs (read from .llmflow/journals in this directory).",
        ),
    ] = False,
    register: Annotated[
        bool,
        typer.Option(
            "--register",
            help="Register every variant (as llm_<provider>_<task> unless register_as names it).",
        ),
    ] = False,
    cache: Annotated[
        bool | None,
        typer.Option(
            "--cache/--no-cache",
            show_default=False,
            help="Answer repeated calls from the response cache (not measured), or never. "
            "Default: the file's `cache:` setting, which is off.",
        ),
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost",
            min=0,
            show_default=False,
            help="Budget in USD; overrides max_cost_usd of the file.",
        ),
    ] = None,
    out: ReportDir = None,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Batched models: submit their batch jobs and exit; --resume collects them.",
        ),
    ] = False,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """Send every prompt to every model, record each call in MLflow, print the comparison.

    Exit code 0 when every call succeeded, 1 when some failed or a model was skipped,
    2 when the experiment file is invalid or the plan could exceed the budget, 130 on Ctrl-C.
    """
    if run_id is not None and not resume:
        err.print("[red]error:[/] a RUN_ID after the experiment file needs --resume")
        raise typer.Exit(2)
    from ..run_types import LATEST

    resumed = (run_id or LATEST) if resume else None
    run_and_report(
        experiment_file, resumed, register, cache, max_cost, out, detach, tracking_uri, debug
    )


from . import batches, datasets, reading, registry  # noqa: E402  (attach compare, report, ...)

reading.attach(app)
registry.attach(app)
datasets.attach(app)
batches.attach(app)


def main() -> None:
    """The console script. Ctrl-C before a command has started (imports take a second) is
    an interruption like any other: one line and exit code 130, no traceback."""
    from .._process import freeze_heap_before_exit, prepare_cli_process

    prepare_cli_process()
    try:
        code = app(standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        err.print("[yellow]interrupted[/]")
        code = 130
    except ClickException as e:
        e.show()
        code = e.exit_code
    except typer.Exit as e:
        code = e.exit_code
    freeze_heap_before_exit()
    sys.exit(code if isinstance(code, int) else 0)
