"""The classify part of the report from hand-made rows: the verdict on the classic model (only
beyond the noise), the cost per 1,000 predictions, and a 100% pass rate in the quality plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmflow.report.classification import classification_findings
from llmflow.report.comparison import Comparison, to_markdown
from llmflow.report.pairs import Evidence, pairwise
from llmflow.report.quality import plot_pass_rate_vs_latency
from llmflow.scoring import wilson_interval
from llmflow.tracking.read import row_from


def row(name: str, provider: str, correct: int, n: int = 80, p50: float = 0.01):
    low, high = wilson_interval(correct, n)
    metrics = {
        "accuracy": correct / n,
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
        "pass_rate": correct / n,
        "pass_rate_ci_low": low,
        "pass_rate_ci_high": high,
        "macro_f1": 0.5,
        "n_unparsed": 2,
        "n_calls": n,
        "latency_p50_s": p50,
        "cost_per_call_usd": 0.00002,
        "estimated_cost_usd": 0.0016,
    }
    params = {"provider": provider, "model": name, "variant_id": name, "cost_model": "genai"}
    return row_from(f"run-{name}", params, metrics, {"llmflow.variant_id": name})


def correct_on(name: str, cases: range, n: int = 80) -> Evidence:
    """Right on the test cases in `cases`, wrong on the others."""
    found = Evidence(name)
    for i in range(n):
        found.add("accuracy", f"t{i}", float(i in cases))
    return found


@pytest.mark.parametrize(
    ("llm_cases", "verdict"),
    [
        (range(80), "**gemini** beats the classic model on accuracy beyond chance"),
        # right on 66 cases, but not the classic model's 70: 10 against 14 discordant cases
        (range(10, 76), "No LLM beats the classic model beyond chance"),
        (range(30), "**No LLM beats the classic model**: tfidf-logreg 87.5%"),
    ],
)
def test_the_verdict_only_beyond_chance(llm_cases: range, verdict: str):
    correct = len(llm_cases)
    rows = [row("tfidf-logreg", "sklearn", 70), row("gemini", "gemini", correct, p50=0.8)]
    pairs = pairwise([correct_on("tfidf-logreg", range(70)), correct_on("gemini", llm_cases)])
    found = classification_findings(rows, pairs)
    assert verdict in found[0]
    assert "gemini: median 800.0 ms each (800.0 s one at a time), $0.02" in found[1]


def test_the_table_shows_accuracy_for_classify():
    comparison = Comparison("e", "p", (row("tfidf-logreg", "sklearn", 70),))
    table = to_markdown(comparison)
    assert "| Accuracy | Accuracy 95% CI | Macro F1 | Unparsed |" in table
    assert "| 87.5% | 78.5%-93.1% | 0.500 | 2 |" in table


def test_a_perfect_pass_rate_is_plotted(tmp_path: Path):
    # its Wilson upper bound is 1 - 1e-16: the error bar must not come out negative
    assert wilson_interval(80, 80)[1] < 1.0
    assert plot_pass_rate_vs_latency([row("m", "sklearn", 80)], tmp_path).exists()
