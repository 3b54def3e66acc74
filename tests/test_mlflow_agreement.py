"""llmflow's paired tests give MLflow's p-values on the same data (`mlflow.genai.
compare_evaluations`, MLflow 3.18): McNemar's exact test on pass/fail values while fewer than 25
prompts disagree, the Wilcoxon signed-rank test on other values. Skipped where the installed
MLflow has no such comparison (before 3.18). Where the two differ (llmflow stays exact past 25
discordant prompts; its interval of a score's difference is the t interval, MLflow's a BCa
bootstrap), the README says so."""

from __future__ import annotations

import numpy as np
import pytest

from llmflow.report.pairs import Evidence, oriented, pairwise

paired_comparison = pytest.importorskip(
    "mlflow.genai.evaluation.comparison.paired_comparison",
    reason="this MLflow has no compare_evaluations (it came in 3.18)",
)


def mlflow_p(candidate: np.ndarray, baseline: np.ndarray, binary: bool) -> tuple[str, float]:
    result = paired_comparison._compare_paired_values(
        "check",
        baseline,
        candidate,
        value_type="binary" if binary else "numeric",
    )
    return result.method, result.p_value


def compared(metric: str, a: np.ndarray, b: np.ndarray):
    va, vb = Evidence("a"), Evidence("b")
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        va.add(metric, f"p{i}", float(x))
        vb.add(metric, f"p{i}", float(y))
    return oriented(pairwise([va, vb]), metric, "a", "b")


@pytest.mark.parametrize("seed", range(5))
def test_pass_fail_values_get_mcnemars_p(seed: int):
    rng = np.random.default_rng(seed)
    a = (rng.random(40) < 0.7).astype(float)
    b = np.where(rng.random(40) < 0.3, 1 - a, a)  # at most ~12 discordant: MLflow stays exact
    method, p = mlflow_p(a, b, binary=True)
    ours = compared("pass_rate", a, b)
    assert method == "mcnemar_exact" == ours.method
    assert ours.p_value == pytest.approx(p)


@pytest.mark.parametrize("n", [12, 40, 120])
def test_scores_get_wilcoxons_p(n: int):
    rng = np.random.default_rng(n)
    a = rng.uniform(0, 1, n)
    b = np.clip(a + rng.normal(0.05, 0.1, n), 0, 1)
    method, p = mlflow_p(a, b, binary=False)
    ours = compared("score.rouge-l", a, b)
    assert ours.method == method  # wilcoxon_exact up to 50 non-zero differences, then asymptotic
    assert ours.p_value == pytest.approx(p)
