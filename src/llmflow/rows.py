"""The comparison's rows: one per variant, plain data, as `llmflow compare -f json` gives them
(the keys are that contract: tests/report/golden/compare_json_row.json). Built from a variant's
params, metrics (stats.summarize's keys, declared in metrics.py) and what its tags say; read
from MLflow by tracking/read.py, built in memory by report/data.py, rendered by report/."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .metrics import BY_KEY as METRIC_BY_KEY
from .metrics import SCORE_PREFIX

PRICED, LOCAL, UNPRICED = "priced", "local", "unpriced"  # a row's cost_kind


@dataclass(frozen=True)
class ComparisonRow:
    """One variant's line in the comparison; keys are the `--format json` contract."""

    model: str
    provider: str
    temperature: float | str | None
    task_type: str
    latency_s: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    ttft_p50_s: float | None
    total_tokens: int | None
    input_tokens: int | None
    output_tokens: int | None
    estimated_cost_usd: float | None
    cost_kind: str
    n_calls: int
    n_errors: int
    run_id: str
    variant_id: str
    skipped: str | None = None
    latency_p99_s: float | None = None
    latency_p50_ci_low_s: float | None = None
    latency_p50_ci_high_s: float | None = None
    ttft_p95_s: float | None = None
    tpot_s: float | None = None
    output_tokens_per_s: float | None = None
    cost_per_call_usd: float | None = None
    n_timed: int = 0
    n_cached: int = 0
    n_batched: int = 0  # sent through a batch API: no latency measured
    batch_wall_s: float | None = None
    cold_start_latency_s: float | None = None
    swept: dict[str, Any] | None = None
    n_empty: int = 0  # successful calls whose answer is blank
    n_usage_missing: int = 0  # successful calls without a token count: the sums are then None
    # quality, when the experiment has checks: pass rate with its 95% Wilson interval
    pass_rate: float | None = None
    pass_rate_ci_low: float | None = None
    pass_rate_ci_high: float | None = None
    n_scored: int = 0
    n_score_errors: int = 0
    judge_cost_usd: float | None = None
    scores: dict[str, float] | None = None  # mean of each check's values, by check name
    # task classify: accuracy (the label check's pass rate) with its 95% Wilson interval
    accuracy: float | None = None
    accuracy_ci_low: float | None = None
    accuracy_ci_high: float | None = None
    macro_f1: float | None = None
    n_unparsed: int | None = None  # answers naming no label

    @property
    def label(self) -> str:
        return self.variant_id or self.model

    @property
    def n_answered(self) -> int:
        return self.n_calls - self.n_errors


@dataclass(frozen=True)
class Comparison:
    experiment: str
    parent_run_id: str
    rows: tuple[ComparisonRow, ...]


def build_row(
    run_id: str,
    params: dict[str, str],
    metrics: dict[str, float],
    *,
    variant_id: str = "",
    swept: dict[str, Any] | None = None,
    skipped: str | None = None,
    pricing: str | None = None,
) -> ComparisonRow:
    """A variant's row from its params (as MLflow holds them: text), its metrics and what its
    run says of it; `pricing` is how its calls are priced (PRICED or LOCAL), None for a run
    written before that was said (then read from the cost_model param). A NaN metric is one
    its checks no longer feed (`llmflow score`): unknown, as if absent."""
    metrics = {k: v for k, v in metrics.items() if not math.isnan(v)}
    return ComparisonRow(
        model=params.get("model", ""),
        provider=params.get("provider", ""),
        temperature=_number_or_text(params.get("temperature")),
        task_type=params.get("task_type", ""),
        cost_kind=cost_kind(metrics, pricing, params.get("cost_model", "")),
        run_id=run_id,
        variant_id=variant_id or params.get("variant_id", ""),
        skipped=skipped,
        swept=swept,
        **{**_metric_fields(metrics), **quality_fields(metrics), **classification_fields(metrics)},
    )


def cost_kind(metrics: dict[str, float], pricing: str | None, cost_model: str) -> str:
    """UNPRICED without an estimated cost; else how the calls were priced, which runs written
    before the cost-kind tag say only in the cost_model param's text ("local: ...")."""
    if "estimated_cost_usd" not in metrics:
        return UNPRICED
    if pricing in (PRICED, LOCAL):
        return pricing
    return LOCAL if cost_model.startswith("local") else PRICED


def quality_fields(metrics: dict[str, float]) -> dict[str, Any]:
    """The quality fields of a row, from a variant's metrics."""
    scores = {
        k.removeprefix(SCORE_PREFIX): v for k, v in metrics.items() if k.startswith(SCORE_PREFIX)
    }
    return {
        "pass_rate": metrics.get("pass_rate"),
        "pass_rate_ci_low": metrics.get("pass_rate_ci_low"),
        "pass_rate_ci_high": metrics.get("pass_rate_ci_high"),
        "n_scored": int(metrics.get("n_scored", 0)),
        "n_score_errors": int(metrics.get("n_score_errors", 0)),
        "judge_cost_usd": metrics.get("judge_cost_usd"),
        "scores": dict(sorted(scores.items())) or None,
    }


def classification_fields(metrics: dict[str, float]) -> dict[str, Any]:
    """The classification fields of a row, from a variant's metrics."""
    unparsed = metrics.get("n_unparsed")
    return {
        "accuracy": metrics.get("accuracy"),
        "accuracy_ci_low": metrics.get("accuracy_ci_low"),
        "accuracy_ci_high": metrics.get("accuracy_ci_high"),
        "macro_f1": metrics.get("macro_f1"),
        "n_unparsed": int(unparsed) if unparsed is not None else None,
    }


def _metric_fields(metrics: dict[str, float]) -> dict[str, Any]:
    """Every declared metric that is a ComparisonRow field: counts absent from the run are 0
    (nothing was counted), every other metric absent is unknown (None)."""
    out: dict[str, Any] = {}
    for name in ComparisonRow.__dataclass_fields__:
        declared = METRIC_BY_KEY.get(name)
        if declared is None:
            continue
        value = metrics.get(name)
        if value is None:
            out[name] = 0 if declared.aggregation == "count" else None
        else:
            out[name] = int(value) if declared.integer else value
    return out


def _number_or_text(value: str | None) -> float | str | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value
