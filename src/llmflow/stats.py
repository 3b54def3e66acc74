"""Summary statistics of a variant's calls. Pure functions over CallRecords."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from .types import CallRecord


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation, as numpy's default. None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(records: Iterable[CallRecord]) -> dict[str, float]:
    """The per-variant metrics written to MLflow (keys as in the README).

    Latency statistics use only calls that succeeded and were not served from the cache.
    Token sums cover every successful call. `estimated_cost_usd` is present only when every
    successful call was priced (a partial sum would understate the cost).
    """
    records = list(records)
    ok = [r for r in records if r.ok]
    timed = [r for r in ok if not r.cached and r.timing is not None]
    latencies = [r.timing.latency_s for r in timed]
    ttfts = [r.timing.ttft_s for r in timed if r.timing.ttft_s is not None]
    tpots = [t for r in timed if (t := r.tpot_s) is not None]
    speeds = [s for r in timed if (s := r.output_tokens_per_s) is not None]

    n_errors = len(records) - len(ok)
    metrics: dict[str, float | None] = {
        "n_calls": len(records),
        "n_errors": n_errors,
        "error_rate": n_errors / len(records) if records else None,
        "n_cached": sum(r.cached for r in ok),
        "n_timed": len(timed),
        "latency_s": mean(latencies),
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "latency_p99_s": percentile(latencies, 99),
        "ttft_p50_s": percentile(ttfts, 50),
        "ttft_p95_s": percentile(ttfts, 95),
        "tpot_s": mean(tpots),
        "output_tokens_per_s": mean(speeds),
        "input_tokens": sum(r.usage.input_tokens or 0 for r in ok),
        "output_tokens": sum(r.usage.output_tokens or 0 for r in ok),
        "reasoning_tokens": sum(r.usage.reasoning_tokens for r in ok),
        "total_tokens": sum(r.usage.total_tokens or 0 for r in ok),
    }
    costs = [r.cost for r in ok if not r.cached]
    unpriced = sum(1 for c in costs if c is None or c.usd is None)
    metrics["n_unpriced"] = unpriced
    if ok and not unpriced:
        metrics["estimated_cost_usd"] = sum(c.usd for c in costs if c and c.usd is not None)
    return {k: float(v) for k, v in metrics.items() if v is not None}
