"""Quality in the comparison and the report: columns, the honest ranking, the Pareto front."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from llmflow.report.comparison import Comparison, to_json, to_markdown
from llmflow.report.pairs import Evidence, pairwise
from llmflow.report.render import write_report
from llmflow.report.verdicts import pareto_front
from llmflow.report.verdicts import quality as quality_findings
from llmflow.scoring import wilson_interval
from llmflow.tracking.read import row_from
from tests.report.builders import report_data, variant


def evidence(name: str, passed: int, n: int, latency: float = 1.0, cost: float | None = None):
    """One call per prompt p0..p<n-1>: the first `passed` pass; every latency the same but for a
    hair that keeps the prompts' order (so a sign test sees a consistent lean)."""
    found = Evidence(name)
    for i in range(n):
        found.add("pass_rate", f"p{i}", float(i < passed))
        found.add("latency_s", f"p{i}", latency + i * 1e-6)
        if cost is not None:
            found.add("cost_per_call_usd", f"p{i}", cost)
    return found


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


def test_a_better_pass_rate_is_claimed_only_when_the_paired_test_says_so():
    clear_pairs = pairwise([evidence("a", 95, 100), evidence("b", 50, 100)])
    clear = quality_findings([row("a", 95, 100, 1.0), row("b", 50, 100, 1.0)], clear_pairs)
    assert clear[0].startswith("**a** has the best pass rate: 95.0% against 50.0% for b, +45.0 pts")
    assert "exact McNemar test on the 100 prompts both answered" in clear[0]
    noisy_pairs = pairwise([evidence("a", 9, 10), evidence("b", 7, 10)])
    noisy = quality_findings([row("a", 9, 10, 1.0), row("b", 7, 10, 1.0)], noisy_pairs)
    assert "**not distinguishable** from b" in noisy[0]
    assert "2 passed by a only and 0 by b only: p = 0.5" in noisy[0]


def test_the_pareto_front_keeps_the_trade_offs():
    good_slow = row("good-slow", 95, 100, 2.0)
    bad_fast = row("bad-fast", 50, 100, 0.5)
    dominated = row("dominated", 50, 100, 2.5)
    pairs = pairwise(
        [
            evidence("good-slow", 95, 100, 2.0),
            evidence("bad-fast", 50, 100, 0.5),
            evidence("dominated", 50, 100, 2.5),
        ]
    )
    front = pareto_front([good_slow, bad_fast, dominated], pairs)
    assert [r.label for r in front] == ["good-slow", "bad-fast"]


def test_a_difference_the_tests_cannot_see_dominates_nothing():
    """Slower by a hair on 3 prompts and equal in quality: no test says worse, so both stay."""
    a, b = row("a", 2, 3, 1.0), row("b", 2, 3, 1.001)
    pairs = pairwise([evidence("a", 2, 3, 1.0), evidence("b", 2, 3, 1.001)])
    assert [r.label for r in pareto_front([a, b], pairs)] == ["a", "b"]


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
