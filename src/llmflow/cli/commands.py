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

from ..redact import redact_url
from .common import (
    Debug,
    Format,
    LeanGroup,
    TrackingUri,
    err,
    errors,
    judge_notes,
    plain,
)
from .reading import print_comparison

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
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            show_default=False,
            help="Also write the report (md, html, csv, json, PNGs) into this directory.",
        ),
    ] = None,
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
    _prestart_writer(tracking_uri)
    from ..experiment import LATEST, RunRequest, run_experiment
    from .progress import ProgressHooks

    request = RunRequest(
        experiment_file=experiment_file,
        tracking_uri=tracking_uri,
        register_all=register,
        use_cache=cache,
        max_cost_usd=max_cost,
        report_dir=out,
        resume=(run_id or LATEST) if resume else None,
        detach=detach,
    )
    resume_command = f"llmflow run {experiment_file} --resume {{run_id}}"
    try:
        with errors(debug, resume_command), ProgressHooks(err.console) as hooks:
            result = run_experiment(request, hooks)
    finally:
        _ignore_late_interrupts()
    if result.comparison is not None:
        print_comparison(result.comparison, Format.table)
    _print_outcome(result, out)
    if result.batch_jobs_left:  # --detach: not an outcome yet
        err.print(
            f"{result.batch_jobs_left} batch job(s) left running at the provider; collect them "
            f"with: llmflow run {experiment_file} --resume {result.parent_run_id}"
        )
        raise typer.Exit(0)
    raise typer.Exit(result.exit_code)


def _ignore_late_interrupts() -> None:
    """The runs are ended and the outcome is being printed: a last Ctrl-C of several (the third
    often lands here) must not turn the exit into a KeyboardInterrupt and exit code -2."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _prestart_writer(tracking_uri: str | None) -> None:
    """The trace writer's process starts importing MLflow before this one imports the rest of
    llmflow (a second or two of the smallest run's wall time)."""
    from ..tracking.uri import resolve_tracking_uri
    from ..worker.pool import prestart

    prestart(resolve_tracking_uri(tracking_uri))


def _print_outcome(result, out_dir: Path | None) -> None:
    """What the table does not say, on stderr: cache, failures, registry; then the verdict (the
    report's first findings), where the report is, and the store. A skipped model was said when
    it was skipped, above the progress bar."""
    notes = []
    if result.resumed_calls:
        notes.append(f"resumed: {result.resumed_calls} call(s) came from the journal")
    if result.n_cached_calls:
        notes.append(
            f"{result.n_cached_calls} call(s) answered from the cache, not measured (not in "
            "latency statistics; --no-cache to send them)"
        )
    if result.n_failed_calls:
        notes.append(
            f"[red]{result.n_failed_calls} call(s) failed[/]: see calls.json in each variant run"
        )
    if result.n_empty_answers and result.comparison is None:  # else the table's warning says it
        notes.append(
            f"[yellow]{result.n_empty_answers} answer(s) were empty[/]: counted as successes, "
            "shown as n_empty; see responses.md in each variant run"
        )
    notes += judge_notes(result.judge_failures, result.unjudged)
    if result.traces_failed:
        reason = f": {plain(result.traces_failure)}" if result.traces_failure else ""
        notes.append(f"[red]{result.traces_failed} trace(s) could not be written{reason}[/]")
    notes += [f"[green]registered[/] {plain(line)}" for line in result.registered]
    notes += [plain(line) for line in result.registry_notes]
    notes += [f"[red]{plain(line)}[/]" for line in result.problems]
    notes += [f"[bold]{plain(line)}[/]" for line in result.headline]
    if result.report_stored:
        notes.append(plain(_report_place(result, out_dir)))
    uri = redact_url(result.tracking_uri)
    notes.append(
        f"MLflow: {uri}  experiment {result.experiment_name!r}  run {result.parent_run_id}\n"
        f"Browse it: mlflow ui --backend-store-uri {uri}"
    )
    for note in notes:
        err.print(note)


def _report_place(result, out_dir: Path | None) -> str:
    """Where the report is: the parent run's artifacts, and the --out folder when given."""
    stored = f"Report: report/report.html and report.md in run {result.parent_run_id}"
    if out_dir is not None:
        return f"{stored}; also {out_dir.resolve() / 'report.html'}"
    import shlex

    command = f"llmflow report -e {shlex.quote(result.experiment_name)}"
    return f"{stored} ({command} --run {result.parent_run_id[:8]} --out DIR)"


from . import datasets, reading, registry  # noqa: E402  (attach compare, report, score, plan; ...)

reading.attach(app)
registry.attach(app)
datasets.attach(app)


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
