import pytest

from llmflow.stats import percentile, summarize
from llmflow.types import CallRecord, Completion, Cost, GenerationSettings, Timing, Usage


def record(
    latency: float | None,
    *,
    out: int = 10,
    cost: float | None = 0.001,
    cached=False,
    ttft: float | None = 0.1,
    error: str | None = None,
) -> CallRecord:
    ok = error is None
    return CallRecord(
        variant_id="v",
        case_id="c",
        repeat=0,
        messages=(),
        settings=GenerationSettings(),
        completion=Completion("hi", Usage(input_tokens=5, output_tokens=out)) if ok else None,
        timing=Timing(latency, ttft, 0, 0) if ok else None,
        cost=(Cost("priced", cost) if cost is not None else Cost("unpriced", None)) if ok else None,
        error_type=error,
        cached=cached,
    )


def test_percentile_matches_linear_interpolation():
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_summary_excludes_errors_and_cached_calls_from_latency():
    records = [
        record(1.0),
        record(3.0),
        record(100.0, cached=True),
        record(None, error="RateLimited"),
    ]
    m = summarize(records)
    assert m["n_calls"] == 4 and m["n_errors"] == 1 and m["error_rate"] == 0.25
    assert m["n_cached"] == 1
    assert m["latency_s"] == 2.0 and m["latency_p50_s"] == 2.0
    assert m["total_tokens"] == 3 * 15
    assert m["tpot_s"] == pytest.approx(((1.0 - 0.1) / 9 + (3.0 - 0.1) / 9) / 2)
    assert m["estimated_cost_usd"] == pytest.approx(0.002)  # cached calls cost nothing now


def test_cost_is_absent_when_any_call_is_unpriced():
    m = summarize([record(1.0), record(1.0, cost=None)])
    assert "estimated_cost_usd" not in m
    assert m["n_unpriced"] == 1


def test_non_streaming_calls_have_no_ttft():
    m = summarize([record(1.0, ttft=None)])
    assert "ttft_p50_s" not in m and "tpot_s" not in m


def _with(completion: Completion) -> CallRecord:
    return CallRecord(
        variant_id="v",
        case_id="c",
        repeat=0,
        messages=(),
        settings=GenerationSettings(),
        completion=completion,
        timing=Timing(1.0, None, 0, 0),
        cost=Cost("unpriced", None),
    )


def test_unknown_token_counts_make_the_sums_unknown_never_zero():
    m = summarize([_with(Completion("a", Usage())), _with(Completion("b", Usage(3, 4)))])
    assert m["n_usage_missing"] == 1
    for key in ("input_tokens", "output_tokens", "reasoning_tokens", "total_tokens"):
        assert key not in m
    m = summarize([_with(Completion("b", Usage(3, 4)))])
    assert m["n_usage_missing"] == 0 and m["total_tokens"] == 7


def test_a_half_known_usage_has_no_total():
    assert Usage(input_tokens=3).total_tokens is None
    assert Usage(3, 4).total_tokens == 7


def test_blank_answers_are_counted_as_empty():
    m = summarize([_with(Completion(" \n\n", Usage(3, 1))), _with(Completion("ok", Usage(3, 1)))])
    assert m["n_empty"] == 1


def test_a_variant_without_any_answer_has_no_token_sums():
    m = summarize([record(None, error="ServerError")])
    assert "total_tokens" not in m and "input_tokens" not in m
    assert summarize([]).get("total_tokens") is None


def test_the_metrics_do_not_depend_on_the_order_the_calls_came_in():
    """The worker reads a variant's calls back sorted by (case, repeat), where they used to be
    summarized in the order they finished: the seeded bootstrap interval of the median latency
    resamples prompts by position, so they are put in one order first."""
    import dataclasses
    import random

    calls = [
        dataclasses.replace(record(0.1 + (i * 7919 % 13) / 10), case_id=f"p{i % 4}", repeat=i // 4)
        for i in range(12)
    ]
    shuffled = random.Random(3).sample(calls, len(calls))
    assert summarize(shuffled) == summarize(calls)
    assert "latency_p50_ci_low_s" in summarize(calls)
