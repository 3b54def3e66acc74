"""Every per-variant metric llmflow records, declared once.

A `Metric` says what a key means, its unit, how it is aggregated over a variant's calls, which
way is better and whether a promotion gate may test it. Summaries (`stats.summarize`, the
scorers) write these keys; the comparison rows, the report's tables, the registry's version
tags, the gates and the table of docs/metrics.md all read them from here. Adding a metric is one
entry below (a test fails until `summarize` or a scorer writes only declared keys, and until
docs/metrics.md is regenerated with `python -m llmflow.docs_gen`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Better = Literal["lower", "higher"]


@dataclass(frozen=True)
class Metric:
    key: str
    meaning: str
    unit: str  # "s", "tokens", "USD", "calls", "rows", "ratio", "tokens/s", "score"
    aggregation: str  # how the calls become this one number
    better: Better | None = None  # None: a count that is neither good nor bad
    gate: bool = False  # recorded on registered versions, so a promotion gate may test it
    integer: bool = False

    def format(self, value: float | None) -> str:
        """The value as tables show it; `-` for unknown, never 0."""
        if value is None:
            return "-"
        if self.unit == "calls":
            return str(int(value))
        if self.integer:
            return f"{int(value):,}"
        if self.unit == "ratio":
            return f"{value:.1%}"
        if self.unit == "USD":
            return f"${value:.6f}".rstrip("0").rstrip(".") if value else "$0"
        return f"{value:.3f}"

    def format_interval(self, low: float | None, high: float | None) -> str:
        """An interval as tables show it, "low-high" each as `format` writes it; `-` when
        either end is unknown."""
        if low is None or high is None:
            return "-"
        return f"{self.format(low)}-{self.format(high)}"


def _count(key: str, meaning: str, gate: bool = False, better: Better | None = None) -> Metric:
    return Metric(key, meaning, "calls", "count", better=better, gate=gate, integer=True)


def _seconds(key: str, meaning: str, aggregation: str, gate: bool = False) -> Metric:
    return Metric(key, meaning, "s", aggregation, better="lower", gate=gate)


def _tokens(key: str, meaning: str, gate: bool = False) -> Metric:
    return Metric(key, meaning, "tokens", "sum", better="lower", gate=gate, integer=True)


TIMED = "of timed calls"  # succeeded, not cached, not warmup

METRICS: tuple[Metric, ...] = (
    _count("n_calls", "measured calls (warmup excluded)", gate=True),
    _count("n_errors", "calls that failed after their retries", gate=True, better="lower"),
    Metric("error_rate", "n_errors / n_calls", "ratio", "rate", better="lower", gate=True),
    _count("n_cached", "successful calls answered from the response cache"),
    _count("n_timed", "calls in the latency statistics: succeeded and not cached"),
    _count("n_batched", "calls sent through a provider's batch API: their latency is unknown"),
    Metric("batch_wall_s", "the longest batch job, created to ended", "s", "max of jobs"),
    _count("n_empty", "successful calls whose answer is blank (counted as successes, warned)"),
    _count("n_usage_missing", "successful calls without a token count: the sums are then absent"),
    _count("n_unpriced", "paid calls without a price: the cost is then absent"),
    _count("n_warmup", "warmup calls, counted apart from everything but the money spent"),
    _seconds("latency_s", "wall clock from request to last byte", f"mean {TIMED}", gate=True),
    _seconds("latency_p50_s", "median latency", f"p50 {TIMED}", gate=True),
    _seconds("latency_p95_s", "95th percentile latency", f"p95 {TIMED}", gate=True),
    _seconds("latency_p99_s", "99th percentile latency", f"p99 {TIMED}"),
    _seconds("latency_p50_ci_low_s", "95% interval of the median, low", "bootstrap over prompts"),
    _seconds("latency_p50_ci_high_s", "95% interval of the median, high", "bootstrap over prompts"),
    _seconds("ttft_p50_s", "median time to the first text (streaming)", f"p50 {TIMED}", True),
    _seconds("ttft_p95_s", "95th percentile time to the first text", f"p95 {TIMED}"),
    _seconds("tpot_s", "time per output token after the first", f"mean {TIMED}"),
    Metric(
        "output_tokens_per_s",
        "output_tokens / latency_s",
        "tokens/s",
        f"mean {TIMED}",
        better="higher",
    ),
    _seconds("warmup_latency_s", "latency of the warmup calls", "mean over warmup calls"),
    _seconds("cold_start_latency_s", "latency of the first warmup call", "first warmup call"),
    _tokens("input_tokens", "prompt tokens, cached ones included"),
    _tokens("output_tokens", "generated tokens, reasoning included", gate=True),
    _tokens("reasoning_tokens", "reasoning/thinking tokens (part of output_tokens)"),
    _tokens("total_tokens", "input_tokens + output_tokens", gate=True),
    Metric(
        "estimated_cost_usd",
        "all spend, warmup included; absent when any paid call is unpriced",
        "USD",
        "sum",
        better="lower",
        gate=True,
    ),
    Metric("cost_per_call_usd", "cost of a measured call", "USD", "mean", better="lower"),
    Metric(
        "pass_rate",
        "calls passing all their checks over the successful calls that had one",
        "ratio",
        "rate",
        better="higher",
        gate=True,
    ),
    Metric(
        "pass_rate_ci_low",
        "95% interval of pass_rate, low (repeats of a prompt are one cluster)",
        "ratio",
        "Wilson, clustered",
        "higher",
        gate=True,
    ),
    Metric(
        "pass_rate_ci_high",
        "95% interval of pass_rate, high",
        "ratio",
        "Wilson, clustered",
        "higher",
        gate=True,
    ),
    _count("n_scored", "successful calls with at least one check", gate=True),
    _count("n_passed", "scored calls that passed all their checks"),
    Metric(
        "n_score_errors",
        "checks that could not give a verdict (e.g. a judge's bad JSON)",
        "checks",
        "count",
        integer=True,
    ),
    Metric(
        "judge_cost_usd",
        "what the judges cost; absent when a judge is unpriced",
        "USD",
        "sum",
        better="lower",
    ),
    # task classify
    Metric(
        "accuracy",
        "answers that are the expected label (the label check's pass rate)",
        "ratio",
        "rate",
        better="higher",
        gate=True,
    ),
    Metric(
        "accuracy_ci_low",
        "95% interval of accuracy, low (repeats of a prompt are one cluster)",
        "ratio",
        "Wilson, clustered",
        "higher",
        gate=True,
    ),
    Metric(
        "accuracy_ci_high",
        "95% interval of accuracy, high",
        "ratio",
        "Wilson, clustered",
        "higher",
        gate=True,
    ),
    Metric(
        "macro_f1",
        "mean F1 over the labels that occur, true or predicted",
        "score",
        "macro average",
        better="higher",
        gate=True,
    ),
    _count("n_unparsed", "answers that name no label", better="lower"),
    _seconds("train_time_s", "fitting the traditional model on every training row", "one fit"),
    Metric("n_train", "training rows of the traditional model", "rows", "count", integer=True),
    Metric(
        "train_accuracy",
        "the traditional model's accuracy on its training rows",
        "ratio",
        "rate",
        "higher",
    ),
    Metric(
        "cv_accuracy",
        "its stratified k-fold accuracy on the training rows",
        "ratio",
        "k-fold mean",
        "higher",
    ),
)

# one metric per check, named by the check: score.<name>
SCORE_PREFIX = "score."
SCORE = Metric("score.<name>", "mean value of one check (true = 1)", "score", "mean", "higher")

BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}


def get(key: str) -> Metric | None:
    """The declaration of a metric key, a check's `score.<name>` included; None if unknown."""
    if key.startswith(SCORE_PREFIX):
        return SCORE
    return BY_KEY.get(key)


def gateable() -> tuple[str, ...]:
    """The metrics registered versions record, so the only ones a promotion gate may test."""
    return tuple(m.key for m in METRICS if m.gate)


def higher_is_better(key: str) -> bool:
    """The direction of a metric: pass rates and scores up; latency, cost and errors down."""
    metric = get(key)
    return metric is not None and metric.better == "higher"


def markdown_table() -> str:
    """The table of per-variant metrics in docs/metrics.md (docs_gen.py writes it there)."""
    lines = [
        "| metric | meaning | unit | aggregation | better | gate |",
        "|---|---|---|---|---|---|",
    ]
    for m in (*METRICS, SCORE):
        better = m.better or ""
        gate = "yes" if m.gate else ""
        lines.append(
            f"| `{m.key}` | {m.meaning} | {m.unit} | {m.aggregation} | {better} | {gate} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
