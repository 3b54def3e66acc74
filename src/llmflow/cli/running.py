"""`llmflow run`'s work once its options are parsed: the run, then its outcome rendered (the
comparison on stdout, the rest on stderr). `llmflow batches collect` runs it too."""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import typer

from ..redact import redact_url
from .common import Format, err, errors, judge_notes, plain
from .reading import print_comparison


def run_and_report(
    experiment_file: Path,
    resume: str | None,  # the run to resume (run_types.LATEST: the latest), None: a new run
    register: bool = False,
    cache: bool | None = None,
    max_cost: float | None = None,
    out: Path | None = None,
    detach: bool = False,
    tracking_uri: str | None = None,
    debug: bool = False,
) -> NoReturn:
    """Run the experiment and print its outcome; exits with the run's exit code."""
    _prestart_writer(tracking_uri)
    from ..experiment import RunRequest, run_experiment
    from .progress import ProgressHooks

    request = RunRequest(
        experiment_file=experiment_file,
        tracking_uri=tracking_uri,
        register_all=register,
        use_cache=cache,
        max_cost_usd=max_cost,
        report_dir=out,
        resume=resume,
        detach=detach,
    )
    resume_command = f"llmflow run {experiment_file} --resume {{run_id}}"
    try:
        with errors(debug, resume_command), ProgressHooks(err.console) as hooks:
            result = run_experiment(request, hooks)
    finally:
        _ignore_late_interrupts()
    if result.batch_jobs_left:  # --detach: not an outcome yet
        _print_detached(result, experiment_file, out)
        raise typer.Exit(0)
    if result.comparison is not None:
        print_comparison(result.comparison, Format.table)
    _print_outcome(result, out)
    raise typer.Exit(result.exit_code)


def _print_detached(result, experiment_file: Path, out_dir: Path | None) -> None:
    """--detach: the calls in batch jobs have no answer yet, so their variants have no row;
    the live variants of a mixed run do. Then what was submitted and how to collect it."""
    comparison = result.comparison
    if comparison is not None:
        rows = tuple(r for r in comparison.rows if r.n_calls or r.skipped)
        if rows:
            print_comparison(replace(comparison, rows=rows), Format.table)
    _print_outcome(result, out_dir)
    run_id, short = result.parent_run_id, result.parent_run_id[:8]
    err.print(
        f"submitted: {result.batch_jobs_left} batch job(s), {result.batch_calls_left} call(s), "
        "left running at the provider (answers within about a day); the runs stay KILLED "
        "until collected"
    )
    err.print(f"their state: llmflow batches list {short}")
    err.print(
        f"collect them with: llmflow batches collect {short}  (the same as: llmflow run "
        f"{plain(shlex.quote(str(experiment_file)))} --resume {run_id})"
    )


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
    command = f"llmflow report -e {shlex.quote(result.experiment_name)}"
    return f"{stored} ({command} --run {result.parent_run_id[:8]} --out DIR)"
