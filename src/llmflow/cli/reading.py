"""The commands that read runs: `compare` (and its pairwise verdicts), `report`, `score`, and
`plan`, which sizes a run before it is paid for. Parsing and rendering only; the library works."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    Debug,
    ExperimentName,
    Format,
    ParentRun,
    TrackingUri,
    err,
    errors,
    judge_notes,
    open_store,
    out,
)


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
    print_comparison(comparison, fmt)


def _read_pairs(tracking_uri: str | None, experiment: str, comparison):
    """The pairwise verdicts, from the variant runs' calls tables: read straight from a local
    store's artifact folder, else through MLflow."""
    from ..report.data import comparison_pairs
    from ..stored_report import load_report_data
    from ..tracking.read import call_rows_at
    from ..tracking.uri import resolve_tracking_uri

    run_ids = [r.run_id for r in comparison.rows if not r.skipped]
    tables = call_rows_at(resolve_tracking_uri(tracking_uri), run_ids)
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
    from ..stored_report import load_report_data
    from ..tracking.read import previous_run_id

    store = open_store(tracking_uri)
    current = load_report_data(store.client, experiment, run_id)
    parent = current.comparison.parent_run_id
    baseline_id = (
        previous_run_id(store.client, experiment, parent) if baseline == "previous" else baseline
    )
    before = load_report_data(store.client, experiment, baseline_id)
    found = base.deltas(before, current)
    sys.stdout.write(base.to_markdown(found, before.comparison.parent_run_id, parent))


def _read_comparison(tracking_uri: str | None, experiment: str, run_id: str | None):
    """From a local sqlite store directly (MLflow's import alone takes seconds), else, or when
    that reader cannot tell, through MLflow."""
    from ..tracking.read import comparison_at
    from ..tracking.uri import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    return comparison_at(uri, experiment, run_id, lambda: open_store(tracking_uri).client)


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
    from ..tracking.mlflow_sources import StoreSources
    from ..tracking.uri import resolve_tracking_uri

    with errors(debug):
        observed = None
        if earlier is not None and discordance is not None:
            from ..errors import ConfigError

            raise ConfigError("--discordance and --from both give the disagreement: give one")
        if earlier is not None:
            observed = _observed_discordance(tracking_uri, earlier, run_id)
        sources = StoreSources(resolve_tracking_uri(tracking_uri))  # a dataset's prompts
        found = size(experiment_file, detect, discordance, observed, sources)
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


def report(
    experiment: ExperimentName,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the report into.")],
    run_id: ParentRun = None,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """Regenerate the report of one `llmflow run` from MLflow alone: report.md, report.html
    (self-contained), results.csv, results.json and the plots."""
    from ..report.render import write_report
    from ..stored_report import load_report_data

    with errors(debug):
        store = open_store(tracking_uri)
        files = write_report(load_report_data(store.client, experiment, run_id), out)
    for path in files:
        print(path)


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
    for note in judge_notes(found.judge_failures):
        err.print(note)
    if found.untraced:
        err.print(
            f"warning: {found.untraced} scored call(s) have no trace llmflow can find in the"
            " run, so no assessment: their scores are in the metrics and calls.json only",
            markup=False,
        )
    if found.judge_failures:
        raise typer.Exit(1)


def print_comparison(comparison, fmt: Format) -> None:
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


def attach(app: typer.Typer) -> None:
    for command in (compare, report, score, plan):
        app.command()(command)
