"""report.md, report.html (one self-contained file), results.csv and results.json."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from .classification import (
    LABEL_COLUMNS,
    classification_findings,
    label_tables,
    plot_confusions,
)
from .comparison import EXTRA_COLUMNS, SEED_COLUMNS, table_rows, to_csv, to_json, warnings
from .data import ReportData
from .interpret import interpret
from .plots import make_plots
from .quality import has_quality, plot_pass_rate_vs_latency, quality_findings, score_table

SEED_WIDTH = len(SEED_COLUMNS)


def write_report(data: ReportData, out_dir: Path) -> list[Path]:
    """Write the whole report into out_dir; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = make_plots(data, out_dir)
    if (quality_plot := plot_pass_rate_vs_latency(data.comparison.rows, out_dir)) is not None:
        plots["Pass rate against median latency"] = quality_plot
    plots.update(plot_confusions(data, out_dir))
    findings, next_steps = interpret(data)
    rows = data.comparison.rows
    findings = classification_findings(rows) + quality_findings(rows) + findings
    files = {
        "report.md": markdown(data, findings, next_steps, plots),
        "report.html": html_page(data, findings, next_steps, plots),
        "results.csv": to_csv(data.comparison),
        "results.json": to_json(data.comparison),
    }
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8")
    return [out_dir / name for name in files] + list(plots.values())


def _tables(data: ReportData) -> tuple[list[list[str]], list[str], list[list[str]]]:
    rows = table_rows(data.comparison)
    seed = [row[:SEED_WIDTH] for row in rows]
    extended_header = [
        "Model",
        *EXTRA_COLUMNS,
        "p99 (s)",
        "median 95% CI (s)",
        "TPOT (s)",
        "tokens/s",
        "cached",
        "cold start (s)",
        "empty answers",
        "no token count",
    ]
    extended = []
    for row, r in zip(rows, data.comparison.rows, strict=True):
        interval = (
            f"{r.latency_p50_ci_low_s:.3f}-{r.latency_p50_ci_high_s:.3f}"
            if r.latency_p50_ci_low_s is not None
            else "-"
        )
        extended.append(
            [
                row[0],
                *row[SEED_WIDTH:],
                _num(r.latency_p99_s),
                interval,
                _num(r.tpot_s, 4),
                _num(r.output_tokens_per_s, 1),
                str(r.n_cached),
                _num(r.cold_start_latency_s),
                str(r.n_empty),
                str(r.n_usage_missing),
            ]
        )
    return seed, extended_header, extended


def markdown(data: ReportData, findings: list[str], next_steps: list[str], plots: dict) -> str:
    seed, extended_header, extended = _tables(data)
    c = data.comparison
    lines = [
        f"# {c.experiment}: provider comparison",
        "",
        f"MLflow run `{c.parent_run_id}` in `{data.tracking_uri}`.",
        "",
        _md_table(list(SEED_COLUMNS), seed),
        "",
        *_md_warnings(c),
        *_md_quality(c),
        *_md_labels(data),
        "## Distribution and details",
        "",
        _md_table(extended_header, extended),
        "",
        "## Interpretation",
        "",
    ]
    lines += [f"- {f}" for f in findings] + ["", "## What to try next", ""]
    lines += [f"- {s}" for s in next_steps] or ["- Nothing stands out."]
    lines += ["", "## Plots", ""] + [f"![{title}]({path.name})" for title, path in plots.items()]
    return "\n".join(lines) + "\n"


def _md_quality(comparison) -> list[str]:
    if not has_quality(comparison.rows):
        return []
    return ["## Quality", "", _md_table(*score_table(comparison.rows)), ""]


def _md_labels(data: ReportData) -> list[str]:
    out = []
    for label, rows in label_tables(data):
        out += [f"## Per label: {label}", "", _md_table(LABEL_COLUMNS, rows), ""]
    return out


def _html_labels(data: ReportData) -> str:
    return "".join(
        f"<h2>Per label: {html.escape(label)}</h2>\n" + _html_table(LABEL_COLUMNS, rows)
        for label, rows in label_tables(data)
    )


def _html_quality(comparison) -> str:
    if not has_quality(comparison.rows):
        return ""
    return "<h2>Quality</h2>\n" + _html_table(*score_table(comparison.rows))


def _md_warnings(comparison) -> list[str]:
    found = [f"- **Warning**: {w}" for w in warnings(comparison)]
    return [*found, ""] if found else []


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(row) + " |" for row in rows])


def html_page(data: ReportData, findings: list[str], next_steps: list[str], plots: dict) -> str:
    seed, extended_header, extended = _tables(data)
    c = data.comparison
    images = "".join(
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,'
        f'{base64.b64encode(path.read_bytes()).decode()}"><figcaption>{html.escape(title)}'
        "</figcaption></figure>"
        for title, path in plots.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(c.experiment)}: provider comparison</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, th:first-child {{ text-align: left; }}
code {{ background: #f3f3f3; padding: 0 0.2rem; }} figure {{ margin: 1.5rem 0; }}
img {{ max-width: 100%; border: 1px solid #eee; }} figcaption {{ color: #555; }}
.warnings {{ color: #8a4b00; }}
</style></head><body>
<h1>{html.escape(c.experiment)}: provider comparison</h1>
<p>MLflow run <code>{html.escape(c.parent_run_id)}</code>
in <code>{html.escape(data.tracking_uri)}</code>.</p>
{_html_table(list(SEED_COLUMNS), seed)}
{_html_warnings(warnings(c))}
{_html_quality(c)}
{_html_labels(data)}
<h2>Distribution and details</h2>
{_html_table(extended_header, extended)}
<h2>Interpretation</h2>
<ul>{"".join(f"<li>{_inline(f)}</li>" for f in findings)}</ul>
<h2>What to try next</h2>
<ul>{"".join(f"<li>{_inline(s)}</li>" for s in next_steps) or "<li>Nothing stands out.</li>"}</ul>
<h2>Plots</h2>
{images}
</body></html>
"""


def _html_warnings(found: list[str]) -> str:
    items = "".join(f"<li><strong>Warning</strong>: {html.escape(w)}</li>" for w in found)
    return f'<ul class="warnings">{items}</ul>' if found else ""


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _inline(text: str) -> str:
    """The little markdown the interpretation uses: **bold** and `code`."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
