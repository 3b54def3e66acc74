"""`llmflow batches list | collect | cancel`: the batch jobs of a run (batch/jobs.py does the
work; `collect` is `llmflow run FILE --resume RUN`)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from .common import Debug, LeanGroup, ReportDir, TrackingUri, err, errors, out, plain
from .running import run_and_report

batches_app = typer.Typer(
    help="The batch jobs of runs of models with `batch:` (read from .llmflow/journals here): "
    "list them with their state at the provider, collect their answers, or cancel them.",
    no_args_is_help=True,
    cls=LeanGroup,
    rich_markup_mode=None,  # as the main app: plain help, without importing rich
)

RunId = Annotated[
    str | None,
    typer.Argument(
        help="The llmflow run (its parent run id, or a unique prefix of it, as `llmflow run` "
        "printed it). Default: the latest run here that has batch jobs.",
        show_default=False,
    ),
]
_HEADER = ("Job", "Provider job id", "Variant", "Requests", "Journal", "Provider state", "Age")


@batches_app.command("list")
def list_jobs(
    run_id: RunId = None,
    experiment: Annotated[
        str | None,
        typer.Option(
            "--experiment",
            "-e",
            help="Every run of this MLflow experiment that has batch jobs, newest first.",
            show_default=False,
        ),
    ] = None,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Ask no provider: show what the journal says alone."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """List a run's batch jobs and their state at the provider.

    Each job: llmflow's label, the provider's job id, the variant, its requests, what the
    journal says (submitted, collected, cancelled, not created) and the provider's state, asked
    once (requests done of the total where it says). A provider that cannot be reached (file
    gone, key not set, no answer) leaves the journal's word, with the reason.

    Example: llmflow batches list 3f2a9c1e
    """
    from ..batch import jobs as batch_jobs
    from ..errors import ConfigError, LlmflowError

    with errors(debug):
        if run_id is not None and experiment is not None:
            raise ConfigError("give a RUN_ID or --experiment, not both")
        if experiment is not None:
            journals = batch_jobs.journals_with_jobs(None, _experiment_id(experiment, tracking_uri))
            if not journals:
                raise LlmflowError(f"no run of experiment {experiment!r} here has batch jobs")
        else:
            journals = [batch_jobs.run_journal(run_id)]
        listed = [batch_jobs.list_jobs(path, ask_provider=not offline) for path in journals]
    if as_json:
        print(json.dumps([_as_json(run) for run in listed], indent=2))
        return
    for run in listed:
        _print_run(run)
        for reason in sorted({row.unknown for row in run.jobs if row.unknown}):
            err.print(f"provider state unknown: {plain(reason)}")
        if any(row.open for row in run.jobs):
            err.print(f"collect them: llmflow batches collect {run.header.parent_run_id[:8]}")


@batches_app.command("collect")
def collect(
    run_id: RunId = None,
    out_dir: ReportDir = None,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """Collect a run's batch jobs: `llmflow run FILE --resume RUN`, FILE read from its journal.

    Waits for the jobs and collects their answers into the run's MLflow runs, from the
    experiment file the run started from (which must not have changed). Calls whose requests
    errored or expired in an earlier collection, or were cancelled, are sent again.

    Example: llmflow batches collect 3f2a9c1e
    """
    from ..batch.jobs import run_journal
    from ..errors import ConfigError
    from ..journal import read_header

    with errors(debug):
        journal = run_journal(run_id)
        header = read_header(journal)
        if header is None or header.config_path is None:
            raise ConfigError(
                f"{journal}: names no experiment file (a journal from before llmflow kept it): "
                "collect with llmflow run FILE --resume RUN_ID"
            )
    run_and_report(
        Path(header.config_path),
        header.parent_run_id,
        out=out_dir,
        tracking_uri=tracking_uri,
        debug=debug,
    )


@batches_app.command("cancel")
def cancel(run_id: RunId = None, debug: Debug = False) -> None:
    """Cancel a run's batch jobs not collected yet, at their providers.

    What the jobs answered before the cancel is kept: `llmflow batches collect` (or `llmflow
    run --resume`) then collects it and fails the calls that never ran as BatchExpired,
    "cancelled", which ends the run; a `--resume` after that sends them again. Calls that were
    never in a job are not affected (`--resume` sends them).

    Example: llmflow batches cancel 3f2a9c1e
    """
    from ..batch import jobs as batch_jobs

    with errors(debug):
        run = batch_jobs.cancel_jobs(batch_jobs.run_journal(run_id))
    _print_run(run)
    kept = [row for row in run.jobs if row.open and row.journaled != "cancelled"]
    for row in kept:
        err.print(f"[red]not cancelled[/] {row.job_id or row.label}: {plain(row.unknown or '')}")
    cancelled = sum(1 for row in run.jobs if row.journaled == "cancelled")
    err.print(
        f"{cancelled} job(s) cancelled; collect what they answered before it: "
        f"llmflow batches collect {run.header.parent_run_id[:8]}"
    )
    if any(row.job_id for row in kept):  # a job still running that should not be
        raise typer.Exit(1)


def _experiment_id(name: str, tracking_uri: str | None) -> str:
    from ..errors import LlmflowError
    from ..redact import redact_url
    from .common import open_store

    store = open_store(tracking_uri)
    experiment = store.client.get_experiment_by_name(name)
    if experiment is None:
        raise LlmflowError(f"no experiment {name!r} in {redact_url(store.tracking_uri)}")
    return experiment.experiment_id


def _print_run(run) -> None:
    """The run's jobs: a table fitted to the terminal; piped, markdown."""
    from .tables import fit_table, markdown_table

    rows = [_cells(row) for row in run.jobs]
    title = f"batch jobs of run {run.header.parent_run_id[:8]} ({run.journal})"
    if out.is_terminal:
        out.print(fit_table(out.console, title, _HEADER, rows, left=_HEADER[:3] + _HEADER[4:6]))
    else:
        sys.stdout.write(f"{title}\n\n{markdown_table(_HEADER, rows)}")


def _cells(row) -> list[str]:
    if row.state is None:
        state = "-"
    elif row.total is not None:
        state = f"{row.state} {row.done}/{row.total}"
    else:
        state = row.state
    return [
        row.label[:8],
        row.job_id or "-",
        row.variant_id,
        str(row.requests),
        row.journaled,
        state,
        _age(row.created_s),
    ]


def _age(created_s: float | None) -> str:
    if created_s is None:
        return "-"
    seconds = max(0.0, time.time() - created_s)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _as_json(run) -> dict:
    from dataclasses import asdict

    return {
        "run_id": run.header.parent_run_id,
        "journal": str(run.journal),
        "jobs": [asdict(row) for row in run.jobs],
    }


def attach(app: typer.Typer) -> None:
    app.add_typer(batches_app, name="batches")
