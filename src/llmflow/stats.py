"""Summary statistics of a variant's calls. Pure functions over CallRecords."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from .types import CallRecord, Usage


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation, as numpy's default. None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Sequence[float]) -> float | None:
    """The mean, its sum exactly rounded (fsum): the same whatever order the values came in."""
    return math.fsum(values) / len(values) if values else None


def bootstrap_ci(
    values: Sequence[float] | Sequence[Sequence[float]],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap confidence interval of the median; None under 2 values.

    `values` may be grouped (one list per prompt, its repeats inside): then whole prompts are
    resampled with all their repeats (a cluster bootstrap), since ten repeats of one prompt are
    not ten independent observations. Seeded, so a report regenerated from the same calls shows
    the same interval. Vectorized: 2,000 resamples of 1,000 calls take milliseconds.
    """
    import numpy as np

    groups = [list(g) for g in values] if values and _grouped(values) else [[v] for v in values]
    groups = [g for g in groups if g]
    if sum(len(g) for g in groups) < 2 or len(groups) < 2:
        return None
    width = max(len(g) for g in groups)
    data = np.full((len(groups), width), np.nan)
    for i, g in enumerate(groups):
        data[i, : len(g)] = g
    median = np.median if width == 1 else np.nanmedian
    rng = np.random.default_rng(seed)
    chunk = max(1, 200_000 // data.size)  # resamples at a time: a few MB, not resamples x n
    medians = []
    for start in range(0, resamples, chunk):
        picked = rng.integers(0, len(groups), size=(min(chunk, resamples - start), len(groups)))
        medians.append(median(data[picked].reshape(len(picked), -1), axis=1))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(np.concatenate(medians), [tail, 100 - tail])
    return float(low), float(high)


def _grouped(values: Sequence) -> bool:
    return not isinstance(values[0], (int, float))


def wilson_interval(passed: float, n: float, z: float = 1.959964) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a proportion; None for n == 0. Unlike the normal
    approximation it stays within [0, 1] and is not zero-width at 0% or 100%. `n` may be an
    effective number of observations (clustered_rate_interval)."""
    if n <= 0:
        return None
    p = passed / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def clustered_rate_interval(clusters: Iterable[Sequence[bool]]) -> tuple[float, float] | None:
    """The 95% interval of a rate over calls that come in prompts (clusters of repeats).

    With one call per prompt it is Wilson's interval. With repeats it is Wilson's at the
    effective number of observations p(1 - p) / SE^2, where SE is the cluster-robust standard
    error of the rate (Kish's design effect): ten identical repeats of each of 20 prompts count
    as about 20 observations, not 200; repeats that vary independently count nearly in full.
    At 0% or 100% the spread says nothing, and the prompts are counted instead."""
    found = [[bool(x) for x in c] for c in clusters if len(c)]
    calls = sum(len(c) for c in found)
    if not calls:
        return None
    passed = sum(sum(c) for c in found)
    if all(len(c) == 1 for c in found):
        return wilson_interval(passed, calls)
    p, g = passed / calls, len(found)
    spread = sum((sum(c) - p * len(c)) ** 2 for c in found)
    if g < 2 or p in (0.0, 1.0):
        effective = float(g)
    elif spread == 0:  # every prompt at the same rate: all the variation is within prompts
        effective = float(calls)
    else:
        variance = g / (g - 1) * spread / calls**2
        effective = min(max(p * (1 - p) / variance, 1.0), float(calls))
    return wilson_interval(p * effective, effective)


def summarize(records: Iterable[CallRecord]) -> dict[str, float]:
    """The per-variant metrics written to MLflow (keys as in the README).

    Warmup calls are only counted apart (n_warmup, warmup_latency_s, cold_start_latency_s) and
    in the money spent. Latency statistics use calls that succeeded and were not served from the
    cache. Token sums cover every successful measured call and are absent when any of them has
    no count (`n_usage_missing` says how many). `estimated_cost_usd` (all spend, warmup included)
    is present only when every paid call was priced.

    The calls are read once, one at a time, and only their numbers kept (Summary): a variant's
    100,000 calls can be read back from disk rather than held as records.
    """
    summary = Summary()
    for record in records:
        summary.add(record)
    return summary.metrics()


class Summary:
    """summarize() over calls seen one at a time: the numbers it needs, not the records (the
    few warmups apart)."""

    def __init__(self) -> None:
        self.warmups: list[CallRecord] = []
        self.n_calls = self.n_ok = self.n_cached = self.n_empty = self.n_usage_missing = 0
        self.latencies: list[float] = []
        self.by_prompt: dict[str, list[float]] = {}
        self.ttfts: list[float] = []
        self.tpots: list[float] = []
        self.speeds: list[float] = []
        self.measured_costs: list[float | None] = []  # usd of each measured call, None: unpriced
        self.tokens = _TokenSums()
        self.n_batched = 0
        self.batch_wall_s: float | None = None  # the longest batch job's, of the batched calls

    def add(self, r: CallRecord) -> None:
        if r.warmup:
            self.warmups.append(r)
            return
        self.n_calls += 1
        if r.batch_job is not None:
            self.n_batched += 1
            self.batch_wall_s = max(self.batch_wall_s or 0.0, r.batch_wall_s or 0.0)
        if not r.ok:
            return
        self.n_ok += 1
        self.n_cached += r.cached
        self.n_empty += r.completion is not None and not r.completion.text.strip()
        self.n_usage_missing += r.usage.total_tokens is None
        self.tokens.add(r.usage)
        if not r.cached:
            self.measured_costs.append(r.cost.usd if r.cost is not None else None)
        if r.cached or r.timing is None:
            return
        self.latencies.append(r.timing.latency_s)
        self.by_prompt.setdefault(r.case_id, []).append(r.timing.latency_s)
        if r.timing.ttft_s is not None:
            self.ttfts.append(r.timing.ttft_s)
        if (tpot := r.tpot_s) is not None:
            self.tpots.append(tpot)
        if (speed := r.output_tokens_per_s) is not None:
            self.speeds.append(speed)

    def metrics(self) -> dict[str, float]:
        latencies, n_errors = self.latencies, self.n_calls - self.n_ok
        metrics: dict[str, float | None] = {
            "n_calls": self.n_calls,
            "n_errors": n_errors,
            "error_rate": n_errors / self.n_calls if self.n_calls else None,
            "n_cached": self.n_cached,
            "n_timed": len(latencies),
            "n_batched": self.n_batched or None,
            "batch_wall_s": self.batch_wall_s,
            "latency_s": mean(latencies),
            "latency_p50_s": percentile(latencies, 50),
            "latency_p95_s": percentile(latencies, 95),
            "latency_p99_s": percentile(latencies, 99),
            "ttft_p50_s": percentile(self.ttfts, 50),
            "ttft_p95_s": percentile(self.ttfts, 95),
            "tpot_s": mean(self.tpots),
            "output_tokens_per_s": mean(self.speeds),
            "n_empty": self.n_empty,
            "n_usage_missing": self.n_usage_missing,
            **(self.tokens.sums() if self.n_ok else {}),
        }
        # the prompts in one order, whatever order the calls came in (finished, or read back
        # sorted): the seeded bootstrap resamples them by position
        by_prompt = [self.by_prompt[case] for case in sorted(self.by_prompt)]
        if (interval := bootstrap_ci(by_prompt)) is not None:
            metrics["latency_p50_ci_low_s"], metrics["latency_p50_ci_high_s"] = interval
        warmups = sorted(self.warmups, key=lambda r: -r.repeat)
        metrics.update(_warmup_metrics(warmups))
        metrics.update(self._costs(warmups))
        return {k: float(v) for k, v in metrics.items() if v is not None}

    def _costs(self, warmups: list[CallRecord]) -> dict[str, float | None]:
        paid = self.measured_costs + [r.cost.usd if r.cost else None for r in warmups if r.ok]
        unpriced = sum(1 for usd in paid if usd is None)
        costs: dict[str, float | None] = {"n_unpriced": unpriced}
        if self.n_ok and not unpriced:
            costs["estimated_cost_usd"] = math.fsum(usd for usd in paid if usd is not None)
            if self.measured_costs:
                costs["cost_per_call_usd"] = mean(
                    [usd for usd in self.measured_costs if usd is not None]
                )
        return costs


class _TokenSums:
    """Token sums over successful calls; a sum is unknown (None) when any call lacks that count,
    since a partial sum would look measured."""

    def __init__(self) -> None:
        self.inputs = self.outputs = self.reasoning = self.total = 0
        self.inputs_missing = self.outputs_missing = False

    def add(self, usage: Usage) -> None:
        if usage.input_tokens is None:
            self.inputs_missing = True
        else:
            self.inputs += usage.input_tokens
        if usage.output_tokens is None:
            self.outputs_missing = True
        else:
            self.outputs += usage.output_tokens
        self.reasoning += usage.reasoning_tokens
        self.total += usage.total_tokens or 0

    def sums(self) -> dict[str, int | None]:
        known = not self.inputs_missing and not self.outputs_missing
        return {
            "input_tokens": None if self.inputs_missing else self.inputs,
            "output_tokens": None if self.outputs_missing else self.outputs,
            "reasoning_tokens": self.reasoning if known else None,
            "total_tokens": self.total if known else None,
        }


def _warmup_metrics(warmups: list[CallRecord]) -> dict[str, float | None]:
    timed = [r.timing.latency_s for r in warmups if r.ok and r.timing is not None]
    if not warmups:
        return {}
    return {
        "n_warmup": len(warmups),
        "warmup_latency_s": mean(timed),
        "cold_start_latency_s": timed[0] if timed else None,
    }
