"""report.md, report.html (one self-contained file), results.csv and results.json."""

from __future__ import annotations

import re
from pathlib import Path

from ..metrics import SCORE_PREFIX
from ..providers import TRADITIONAL
from . import blocks, pairs_text, verdicts
from .blocks import Block, Bullets, Figures, Heading, Paragraph, Table
from .cells import CLASSIFY_COLUMNS, cell, classification_cells, has_quality, interval_cell
from .classification import LABEL_COLUMNS, classification_findings, label_tables, plot_confusions
from .comparison import (
    EXTRA_COLUMNS,
    SEED_COLUMNS,
    table_rows,
    to_csv,
    to_json,
    warnings,
)
from .data import ReportData
from .interpret import interpret
from .pairs import interval
from .pairs import to_json as pairs_json
from .plots import make_plots
from .quality import plot_pass_rate_vs_latency, score_table

SEED_WIDTH = len(SEED_COLUMNS)


def write_report(data: ReportData, out_dir: Path) -> list[Path]:
    """Write the whole report into out_dir; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = make_plots(data, out_dir)
    if (quality_plot := plot_pass_rate_vs_latency(data.comparison.rows, out_dir)) is not None:
        plots["Pass rate against median latency"] = quality_plot
    plots.update(plot_confusions(data, out_dir))
    findings, next_steps = main_findings(data)
    report = sections(data, findings, next_steps, plots)
    files = {
        "report.md": blocks.to_markdown(report),
        "report.html": blocks.to_html(report, f"{data.comparison.experiment}: provider comparison"),
        "results.csv": to_csv(data.comparison),
        "results.json": to_json(data.comparison),
        "pairs.json": pairs_json(data.pairs),
    }
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8")
    return [out_dir / name for name in files] + list(plots.values())


def main_findings(data: ReportData) -> tuple[list[str], list[str]]:
    """The Interpretation's findings, the verdict first (classification, then quality, then
    speed, cost and the rest), and what to try next; markdown sentences."""
    findings, next_steps = interpret(data)
    rows, pairs = data.comparison.rows, data.pairs
    verdict = classification_findings(rows, pairs) + verdicts.quality(rows, pairs)
    return verdict + findings, next_steps


def headline(data: ReportData, lines: int = 2) -> list[str]:
    """The report's first findings as plain text, for the end of `llmflow run`."""
    return [re.sub(r"\*\*|`", "", finding) for finding in main_findings(data)[0][:lines]]


def _tables(data: ReportData) -> tuple[list[list[str]], list[str], list[list[str]]]:
    rows = table_rows(data.comparison)
    seed = [row[:SEED_WIDTH] for row in rows]
    extended_header = [
        "Model",
        *EXTRA_COLUMNS,
        "p99 (s)",
        "median 95% CI (s)",
        "TPOT (ms)",
        "tokens/s",
        "cached",
        "cold start (s)",
        "empty answers",
        "no token count",
    ]
    extended = []
    for row, r in zip(rows, data.comparison.rows, strict=True):
        interval = interval_cell(
            r, "latency_p50_s", "latency_p50_ci_low_s", "latency_p50_ci_high_s"
        )
        extended.append(
            [
                row[0],
                *row[SEED_WIDTH:],
                cell(r, "latency_p99_s"),
                interval,
                _milliseconds(r.tpot_s),
                _one_decimal(r.output_tokens_per_s),
                str(r.n_cached),
                cell(r, "cold_start_latency_s"),
                str(r.n_empty),
                "n/a" if r.provider in TRADITIONAL else str(r.n_usage_missing),
            ]
        )
    return seed, extended_header, extended


def sections(
    data: ReportData, findings: list[str], next_steps: list[str], plots: dict[str, Path]
) -> list[Block]:
    """The whole report as blocks, rendered alike to report.md and report.html."""
    seed, extended_header, extended = _tables(data)
    c = data.comparison
    return [
        Heading(f"{c.experiment}: provider comparison", level=1),
        Paragraph(f"MLflow run `{c.parent_run_id}` in `{data.tracking_uri}`."),
        Table(SEED_COLUMNS, seed),
        Bullets([f"**Warning**: {w}" for w in warnings(c)], css_class="warnings"),
        *_quality_section(data),
        *_label_sections(data),
        *pairs_text.section(data.pairs, [v.label for v in data.measured]),
        Heading("Distribution and details"),
        Table(extended_header, extended),
        Heading("Interpretation"),
        Bullets(findings),
        Heading("What to try next"),
        Bullets(next_steps or ["Nothing stands out."]),
        Heading("Plots"),
        Figures(plots),
    ]


def _quality_section(data: ReportData) -> list[Block]:
    rows = data.comparison.rows
    if not has_quality(rows):
        return []
    intervals = {
        v.label: {
            metric.removeprefix(SCORE_PREFIX): interval(values)
            for metric, values in v.evidence.values.items()
            if metric.startswith(SCORE_PREFIX)
        }
        for v in data.measured
        if v.evidence is not None
    }
    return [Heading("Quality"), Table(*score_table(rows, intervals))]


def _label_sections(data: ReportData) -> list[Block]:
    """Task classify: the headline numbers of every variant, then each one's per-label table."""
    rows = [r for r in data.comparison.rows if r.accuracy is not None and not r.skipped]
    out: list[Block] = []
    if rows:
        headline = [[r.label, *classification_cells(r)] for r in rows]
        out += [Heading("Classification"), Table(["Model", *CLASSIFY_COLUMNS], headline)]
    for label, rows in label_tables(data):
        out += [Heading(f"Per label: {label}"), Table(LABEL_COLUMNS, rows)]
    return out


def _one_decimal(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _milliseconds(seconds: float | None) -> str:
    """Three significant digits: a time per token of 2.6e-05 s is 0.026 ms, never 0.0000."""
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.3g}"
