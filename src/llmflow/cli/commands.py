"""The `llmflow` command: parses options, calls the library, renders. No logic of its own."""

from __future__ import annotations

import gc
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

try:  # typer 0.2x parses with its own copy of click; a usage error is one of its exceptions
    from typer._click.exceptions import ClickException
except ImportError:  # older typer: click itself
    from click.exceptions import ClickException

from ..redact import redact_text, redact_url
from .common import (
    Debug,
    ExperimentName,
    LeanGroup,
    ParentRun,
    TrackingUri,
    err,
    errors,
    open_store,
    out,
    quiet_mlflow,
)

app = typer.Typer(
    help="Run the same prompts against several LLM providers, track every call in MLflow, "
    "and compare them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=LeanGroup,
    rich_markup_mode=None,  # click's plain help: typer's rich help imports ~0.2 s of modules
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
    quiet_mlflow()
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
    )
    resume_command = f"llmflow run {experiment_file} --resume {{run_id}}"
    try:
        with errors(debug, resume_command), ProgressHooks(err.console) as hooks:
            result = run_experiment(request, hooks)
    finally:
        _ignore_late_interrupts()
    if result.comparison is not None:
        _print_comparison(result.comparison, Format.table)
    _print_outcome(result, out)
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
    from ..tracking.writer_pool import prestart

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
    notes += _judge_notes(result.judge_failures, result.unjudged)
    if result.traces_failed:
        reason = f": {_plain(result.traces_failure)}" if result.traces_failure else ""
        notes.append(f"[red]{result.traces_failed} trace(s) could not be written{reason}[/]")
    notes += [f"[green]registered[/] {_plain(line)}" for line in result.registered]
    notes += [_plain(line) for line in result.registry_notes]
    notes += [f"[red]{_plain(line)}[/]" for line in result.problems]
    notes += [f"[bold]{_plain(line)}[/]" for line in result.headline]
    if result.report_stored:
        notes.append(_plain(_report_place(result, out_dir)))
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


def _judge_notes(failures: list[str], unjudged: int = 0) -> list[str]:
    """One line for judge calls that failed (their checks count as scorer errors, failed),
    one for answers never judged (left out of the pass rate)."""
    notes = []
    if failures:
        notes.append(
            f"[red]{len(failures)} judge verdict(s) failed[/] ({_plain(failures[0])}): counted "
            "as failed checks; `llmflow score` asks the judge again"
        )
    if unjudged:
        notes.append(
            f"[red]{unjudged} answer(s) were not judged[/]: left out of the pass rate; "
            "--resume judges them"
        )
    return notes


def _plain(text: str) -> str:
    """Text from data (variant ids like `m[temperature=0.2]`, messages): shown as written, never
    read as rich markup, and without credentials."""
    from rich.markup import escape

    return escape(redact_text(text))


@app.command()
def compare(
    experiment: ExperimentName,
    run_id: ParentRun = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            show_default=False,
            help="A parent run id (or a unique prefix) to compare against, or 'previous' (the "
            "run of the same experiment file before this one). Prints the changes, * when a "
            "paired test on the prompts both runs answered says they are beyond chance.",
        ),
    ] = None,
    pairs: Annotated[
        bool,
        typer.Option(
            "--pairs",
            help="Print the pairwise verdicts instead: every two variants compared on the "
            "prompts both answered (McNemar, Wilcoxon or sign test; Holm-corrected), with the "
            "difference, its 95% interval, p-values and the verdict.",
        ),
    ] = False,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """Print the comparison of one `llmflow run`, read from MLflow."""
    with errors(debug):
        if baseline is not None:
            _print_deltas(tracking_uri, experiment, run_id, baseline)
            return
        comparison = _read_comparison(tracking_uri, experiment, run_id)
        if pairs:
            _print_pairs(_read_pairs(tracking_uri, experiment, comparison), comparison, fmt)
            return
    _print_comparison(comparison, fmt)


def _read_pairs(tracking_uri: str | None, experiment: str, comparison):
    """The pairwise verdicts, from the variant runs' calls tables: read straight from a local
    store's artifact folder, else through MLflow."""
    from ..report.data import comparison_pairs, load_report_data
    from ..report.sqlite_read import read_calls_tables
    from ..tracking.uri import resolve_tracking_uri

    run_ids = [r.run_id for r in comparison.rows if not r.skipped]
    tables = read_calls_tables(resolve_tracking_uri(tracking_uri), run_ids)
    if tables is not None:
        return comparison_pairs(comparison, tables)
    client = open_store(tracking_uri).client
    return load_report_data(client, experiment, comparison=comparison).pairs


def _print_pairs(found, comparison, fmt: Format) -> None:
    from ..report import pairs as pairs_module
    from ..report import pairs_text

    if fmt is Format.json:
        sys.stdout.write(pairs_module.to_json(found))
    elif fmt is Format.csv:
        sys.stdout.write(pairs_module.to_csv(found))
    elif fmt is Format.table and out.is_terminal and found:
        from .tables import fit_table

        title = f"{comparison.experiment} (run {comparison.parent_run_id[:8]}): pairwise verdicts"
        header = pairs_text.PAIR_COLUMNS
        rows = pairs_text.pair_rows(found)
        table = fit_table(
            out.console,
            title,
            header,
            rows,
            left=header[:3] + header[-2:],
            label_columns=3,
            essential=("Metric", "A", "B", "A - B", "p (Holm)", "Verdict"),
            whole="-f md or -f json has them all",
        )
        out.print(table)
    else:
        sys.stdout.write(pairs_text.to_markdown(found))


def _print_deltas(tracking_uri: str | None, experiment: str, run_id: str | None, baseline: str):
    from ..report import baseline as base
    from ..report.data import load_report_data

    store = open_store(tracking_uri)
    current = load_report_data(store.client, experiment, run_id)
    parent = current.comparison.parent_run_id
    baseline_id = (
        base.previous_run_id(store.client, experiment, parent)
        if baseline == "previous"
        else baseline
    )
    before = load_report_data(store.client, experiment, baseline_id)
    found = base.deltas(before, current)
    sys.stdout.write(base.to_markdown(found, before.comparison.parent_run_id, parent))


def _read_comparison(tracking_uri: str | None, experiment: str, run_id: str | None):
    """From a local sqlite store directly (MLflow's import alone takes seconds), else, or when
    that reader cannot tell, through MLflow."""
    from ..report import load_comparison
    from ..report.sqlite_read import read_comparison
    from ..tracking.uri import resolve_tracking_uri

    found = read_comparison(resolve_tracking_uri(tracking_uri), experiment, run_id)
    return found or load_comparison(open_store(tracking_uri).client, experiment, run_id)


@app.command()
def plan(
    experiment_file: Annotated[
        Path, typer.Argument(help="Experiment YAML to size.", show_default=False)
    ],
    detect: Annotated[
        float,
        typer.Option(
            "--detect",
            min=0,
            max=1,
            help="Difference of pass rates to detect between two variants (0.05 = 5 points).",
        ),
    ] = 0.05,
    discordance: Annotated[
        float | None,
        typer.Option(
            "--discordance",
            min=0,
            max=1,
            show_default=False,
            help="Assumed share of prompts on which two variants disagree (one passes, the "
            "other fails). Default 0.2, unless --from reads it from a run.",
        ),
    ] = None,
    earlier: Annotated[
        str | None,
        typer.Option(
            "--from",
            show_default=False,
            help="An experiment whose latest run (or --run) gives the disagreement observed "
            "between its variants.",
        ),
    ] = None,
    run_id: ParentRun = None,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """How many prompts the run would need to tell its variants apart, before paying for it.

    At 80% power and 5% after Holm's correction for every pair of variants; no model is called.
    """
    from ..sizing import describe, size

    with errors(debug):
        observed = None
        if earlier is not None:
            observed = _observed_discordance(tracking_uri, earlier, run_id)
        found = size(experiment_file, detect, discordance, observed)
    for line in describe(found):
        out.print(line, markup=False, soft_wrap=True)


def _observed_discordance(tracking_uri: str | None, experiment: str, run_id: str | None):
    """(where, the share of discordant prompts of each paired pass-rate comparison)."""
    from ..errors import LlmflowError

    comparison = _read_comparison(tracking_uri, experiment, run_id)
    found = _read_pairs(tracking_uri, experiment, comparison)
    shares = [
        (p.a_higher + p.b_higher) / p.n_pairs
        for p in found
        if p.metric in ("pass_rate", "accuracy") and p.method == "mcnemar_exact" and p.n_pairs
    ]
    where = f"run {comparison.parent_run_id[:8]} of {experiment!r}"
    if not shares:
        raise LlmflowError(
            f"{where} has no two variants with pass/fail answers on the same prompts: "
            "give --discordance instead"
        )
    return f"{where} (median of {len(shares)} pair(s))", shares


@app.command()
def report(
    experiment: ExperimentName,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the report into.")],
    run_id: ParentRun = None,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """Regenerate the report of one `llmflow run` from MLflow alone: report.md, report.html
    (self-contained), results.csv, results.json and the plots."""
    from ..report.data import load_report_data
    from ..report.render import write_report

    with errors(debug):
        store = open_store(tracking_uri)
        files = write_report(load_report_data(store.client, experiment, run_id), out)
    for path in files:
        print(path)


@app.command()
def score(
    experiment: ExperimentName,
    run_id: ParentRun = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Experiment file whose scorers:/assert: to use. Default: the copy stored in "
            "the run.",
            show_default=False,
        ),
    ] = None,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """Score the stored answers of a run again (no model is called): new assessments on the
    same traces; the metrics, calls.json, comparison and report updated."""
    from ..rescore import rescore

    with errors(debug):
        found = rescore(open_store(tracking_uri), experiment, run_id, config)
    for variant, metrics in found.variants.items():
        rate = metrics.get("pass_rate")
        shown = "no scored call" if rate is None else f"pass rate {rate:.1%}"
        print(f"{variant}: {shown} (n={int(metrics.get('n_scored', 0))})")
    what = f"{found.assessments} new assessment(s)" if found.changed else "nothing changed"
    paid = f"; {found.judge_calls} judge call(s) made" if found.judge_calls else ""
    print(f"run {found.parent_run_id}: {what}{paid}")
    for line in found.registry:
        print(f"registry: {line}")
    for note in _judge_notes(found.judge_failures):
        err.print(note)
    if found.untraced:
        err.print(
            f"warning: {found.untraced} scored call(s) have no trace llmflow can find in the"
            " run, so no assessment: their scores are in the metrics and calls.json only",
            markup=False,
        )
    if found.judge_failures:
        raise typer.Exit(1)


def _print_comparison(comparison, fmt: Format) -> None:
    """A rich table on a terminal; markdown when stdout is a pipe or file, unless asked."""
    from ..report import to_csv, to_json, to_markdown

    if fmt is Format.table and out.is_terminal:
        out.print(comparison_table(out.console, comparison))
        return
    render = {Format.csv: to_csv, Format.json: to_json}.get(fmt, to_markdown)
    sys.stdout.write(render(comparison))


def comparison_table(console, comparison):
    """The comparison as it fits the terminal's width, its warnings under it."""
    from ..report.comparison import ESSENTIAL_COLUMNS, TEXT_COLUMNS, table_cells, warnings
    from .tables import fit_table

    header, rows = table_cells(comparison)
    title = f"{comparison.experiment} (run {comparison.parent_run_id[:8]})"
    caption = "\n".join(f"Warning: {w}" for w in warnings(comparison))
    return fit_table(
        console,
        title,
        header,
        rows,
        caption=caption,
        left=TEXT_COLUMNS,
        essential=ESSENTIAL_COLUMNS,
        whole="-f md or -f json has them all",
    )


from . import registry  # noqa: E402  (attaches register, promote, models)

registry.attach(app)


def main() -> None:
    """The console script. Ctrl-C before a command has started (imports take a second) is
    an interruption like any other: one line and exit code 130, no traceback."""
    from ..lean_import import claim_process

    claim_process()
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
    # the interpreter's last garbage collection walks every object MLflow, SQLAlchemy and
    # matplotlib made: seconds of CPU at exit, for memory the process is about to give back
    gc.freeze()
    sys.exit(code if isinstance(code, int) else 0)
