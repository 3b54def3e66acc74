"""Quality in the comparison and the report: columns, the honest ranking, the Pareto front."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from llmflow.report.comparison import Comparison, row_from, to_json, to_markdown
from llmflow.report.quality import pareto_front, quality_findings
from llmflow.report.render import write_report
from llmflow.scoring import wilson_interval
from tests.report.builders import report_data, variant


def row(name: str, passed: int, n: int, latency: float, cost: float | None = None):
    low, high = wilson_interval(passed, n)
    metrics = {
        "n_calls": n,
        "n_errors": 0,
        "latency_p50_s": latency,
        "pass_rate": passed / n,
        "pass_rate_ci_low": low,
        "pass_rate_ci_high": high,
        "n_scored": n,
        "score.icontains": passed / n,
    }
    if cost is not None:
        metrics["cost_per_call_usd"] = metrics["estimated_cost_usd"] = cost
    return row_from(f"run-{name}", {"model": name, "variant_id": name}, metrics, {})


def test_the_comparison_shows_pass_rate_and_its_interval():
    comparison = Comparison("e", "p", (row("a", 90, 100, 1.0), row("b", 5, 10, 0.5)))
    text = to_markdown(comparison)
    assert "| Pass rate | Pass 95% CI | Scored |" in text
    assert "| 90.0% | 82.6%-94.5% | 100 |" in text
    data = json.loads(to_json(comparison))
    assert data[0]["pass_rate"] == 0.9 and data[0]["scores"] == {"icontains": 0.9}


def test_without_checks_the_comparison_is_unchanged():
    plain = replace(row("a", 1, 1, 1.0), pass_rate=None, n_scored=0)
    assert "Pass rate" not in to_markdown(Comparison("e", "p", (plain,)))


def test_a_better_pass_rate_is_claimed_only_when_the_intervals_do_not_overlap():
    clear = quality_findings([row("a", 95, 100, 1.0), row("b", 50, 100, 1.0)])
    assert clear[0].startswith("**a** has the best quality")
    noisy = quality_findings([row("a", 9, 10, 1.0), row("b", 7, 10, 1.0)])
    assert "**not distinguishable** from b" in noisy[0]


def test_the_pareto_front_keeps_the_trade_offs():
    good_slow = row("good-slow", 95, 100, 2.0)
    bad_fast = row("bad-fast", 50, 100, 0.5)
    dominated = row("dominated", 50, 100, 2.5)
    front = pareto_front([good_slow, bad_fast, dominated])
    assert [r.label for r in front] == ["good-slow", "bad-fast"]


def test_the_report_has_a_quality_section_and_plot(tmp_path: Path):
    data = report_data(variant("a", [0.1, 0.2, 0.3]))
    rows = tuple(
        replace(r, pass_rate=2 / 3, pass_rate_ci_low=0.2, pass_rate_ci_high=0.94, n_scored=3)
        for r in data.comparison.rows
    )
    data = replace(data, comparison=replace(data.comparison, rows=rows))
    files = write_report(data, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "## Quality" in text and "Only a was checked: pass rate 66.7%" in text
    assert tmp_path / "quality_vs_latency.png" in files
    assert "<h2>Quality</h2>" in (tmp_path / "report.html").read_text()
