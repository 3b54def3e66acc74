"""Two variants compared on the prompts both answered: the numbers behind every verdict.

Each function takes one value per prompt and per variant (a prompt's repeats already reduced to
one number: the prompt is the unit of evidence) and returns a `Test`: the difference a - b, its
95% interval, a two-sided p-value, and which way the evidence leans. Which test, and why:

- 0 or 1 per prompt (one repeat, or repeats that agree): exact McNemar, the binomial test on the
  prompts that only one variant passed (mid-p beside it); Newcombe's score interval for paired
  proportions (1998, method 10).
- other quality values (scores; pass rates of repeats that vary): Wilcoxon signed-rank, exact up
  to 50 non-zero differences; the t interval of the mean difference.
- latency and cost per call: the sign test (on how many prompts is a slower, or dearer, than
  b); the distribution-free interval of the median difference (order statistics).

McNemar and Wilcoxon follow `mlflow.genai.compare_evaluations` (MLflow 3.18), so both tools give
one p-value on the same data; MLflow switches to a chi-square approximation from 25 discordant
prompts, where llmflow stays exact. Variants that answered different prompts are compared
unpaired (`unpaired`): Fisher's exact test, Welch's t, or Mann-Whitney for latency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .stats import wilson_interval

Z95 = 1.959963984540054
_WILCOXON_EXACT_MAX_NONZERO = 50  # as MLflow: the exact distribution up to here


@dataclass(frozen=True)
class Test:
    method: str
    n: int  # prompts paired; unpaired: prompts of a plus prompts of b
    diff: float | None  # a - b: mean (quality, cost) or median per-prompt difference (latency)
    ci_low: float | None
    ci_high: float | None
    p_value: float
    direction: int  # +1: the evidence says a is higher, -1: b is higher, 0: neither
    a_higher: int = 0  # prompts on which a's value is above b's (paired tests only)
    b_higher: int = 0
    mid_p: float | None = None  # McNemar only
    ratio: float | None = None  # latency: median of the per-prompt ratios a / b
    sd_diff: float | None = None  # standard deviation of the per-prompt differences
    sd_log_ratio: float | None = None  # sign test: that of the per-prompt log ratios a / b
    paired: bool = True  # False: the variants did not answer the same prompts


def is_binary(*values: np.ndarray) -> bool:
    return all(bool(np.isin(v, (0.0, 1.0)).all()) for v in values)


def mcnemar(a: np.ndarray, b: np.ndarray) -> Test:
    """Exact McNemar on paired 0/1 outcomes, with Newcombe's interval of the difference."""
    both, a_only, b_only, neither = paired_table(a, b)
    n = len(a)
    discordant = a_only + b_only
    if discordant:
        p = binomial_half_p(a_only, discordant)
        # two-sided mid-p: twice the smaller tail, less the probability of the table observed
        # (from the tails before the exact p is capped at 1: an even split has mid-p 1)
        tails = 2 * _binomial_half_cdf(min(a_only, b_only), discordant)
        mid_p = min(1.0, max(0.0, tails - _binomial_half_pmf(a_only, discordant)))
    else:
        p, mid_p = 1.0, 1.0
    low, high = newcombe_paired_interval(both, a_only, b_only, neither)
    return Test(
        method="mcnemar_exact",
        n=n,
        diff=(a_only - b_only) / n,
        ci_low=low,
        ci_high=high,
        p_value=min(p, 1.0),
        direction=int(np.sign(a_only - b_only)),
        a_higher=a_only,
        b_higher=b_only,
        mid_p=mid_p,
    )


def paired_table(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int]:
    """Paired 0/1 outcomes as McNemar's table: (both passed, a only, b only, neither)."""
    cells = ((1, 1), (1, 0), (0, 1), (0, 0))
    both, a_only, b_only, neither = (int(np.sum((a == i) & (b == j))) for i, j in cells)
    return both, a_only, b_only, neither


def binomial_half_p(k: int, n: int) -> float:
    """The exact two-sided p-value of k successes in n trials at probability 1/2: twice the
    smaller tail, which for 1/2 is scipy's binomtest. scipy.special's binomial distribution
    function (what scipy.stats.binom.cdf calls) spares `llmflow compare` scipy.stats' import."""
    return min(1.0, 2 * _binomial_half_cdf(min(k, n - k), n))


def _binomial_half_cdf(k: int, n: int) -> float:
    from scipy.special import bdtr

    return float(bdtr(k, n, 0.5))


def _binomial_half_pmf(k: int, n: int) -> float:
    from scipy.special import bdtr

    return float(bdtr(k, n, 0.5) - (bdtr(k - 1, n, 0.5) if k else 0.0))


def newcombe_paired_interval(
    both: int, a_only: int, b_only: int, neither: int, z: float = Z95
) -> tuple[float, float]:
    """The 95% interval of p_a - p_b from paired 0/1 outcomes: Newcombe (1998), method 10.

    It squares and adds the two Wilson intervals, corrected by the correlation of the pairs.
    Unlike the Wald interval it stays inside [-1, 1] and keeps a width when no prompt tells the
    variants apart; unlike the exact conditional one it is never one-sided."""
    n = both + a_only + b_only + neither
    pa, pb = (both + a_only) / n, (both + b_only) / n
    la, ua = wilson_interval(both + a_only, n, z)  # type: ignore[misc]
    lb, ub = wilson_interval(both + b_only, n, z)  # type: ignore[misc]
    margins = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    phi = (both * neither - a_only * b_only) / math.sqrt(margins) if margins else 0.0
    diff = pa - pb
    down = (pa - la) ** 2 - 2 * phi * (pa - la) * (ub - pb) + (ub - pb) ** 2
    up = (ua - pa) ** 2 - 2 * phi * (ua - pa) * (pb - lb) + (pb - lb) ** 2
    return max(-1.0, diff - math.sqrt(max(down, 0.0))), min(1.0, diff + math.sqrt(max(up, 0.0)))


def signed_rank(a: np.ndarray, b: np.ndarray) -> Test:
    """Wilcoxon signed-rank on the per-prompt differences; the t interval of their mean.

    scipy picks the method (`auto`): the exact distribution up to 50 non-zero differences
    without ties, as MLflow does; with ties (per-prompt means of repeats, a judge's few levels)
    a permutation test up to 13 of them, else the normal approximation with its tie correction.
    The ranks lean one way and the mean may lean the other (many small gains, a few large
    losses): then the prompts say nothing one way, and the test gives no direction."""
    from scipy import stats as sp

    d = a - b
    nonzero = d[d != 0]
    p, direction, method = 1.0, 0, "wilcoxon_exact"
    if len(nonzero):
        p = float(sp.wilcoxon(nonzero, method="auto").pvalue)
        ranks = sp.rankdata(np.abs(nonzero))
        leaning = int(np.sign(ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()))
        direction = leaning if leaning == int(np.sign(d.mean())) else 0
        method = _wilcoxon_method(nonzero)
    low, high = t_interval(d)
    return Test(
        method=method,
        n=len(d),
        diff=float(d.mean()),
        ci_low=low,
        ci_high=high,
        p_value=min(p, 1.0),
        direction=direction,
        a_higher=int(np.sum(d > 0)),
        b_higher=int(np.sum(d < 0)),
        sd_diff=float(d.std(ddof=1)) if len(d) > 1 else None,
    )


def _wilcoxon_method(nonzero: np.ndarray) -> str:
    """What scipy's `auto` used on these non-zero differences (scipy/stats/_wilcoxon.py)."""
    ties = len(np.unique(np.abs(nonzero))) < len(nonzero)
    if len(nonzero) > _WILCOXON_EXACT_MAX_NONZERO:
        return "wilcoxon_asymptotic"
    if not ties:
        return "wilcoxon_exact"
    return "wilcoxon_permutation" if len(nonzero) <= 13 else "wilcoxon_asymptotic"


def t_interval(d: np.ndarray, z_level: float = 0.975) -> tuple[float | None, float | None]:
    """The t interval of the mean of d (None under two values): with prompts as the units it is
    the cluster-robust interval of a paired difference."""
    from scipy.special import stdtrit  # the t distribution's quantile, as scipy.stats.t.ppf

    if len(d) < 2:
        return None, None
    half = float(stdtrit(len(d) - 1, z_level) * d.std(ddof=1) / math.sqrt(len(d)))
    return float(d.mean()) - half, float(d.mean()) + half


def sign_test(a: np.ndarray, b: np.ndarray) -> Test:
    """Latency and cost: on how many prompts is a above b (binomial, ties left out); the median
    per-prompt difference with its distribution-free interval, and the median ratio a / b."""
    d = a - b
    above, below = int(np.sum(d > 0)), int(np.sum(d < 0))
    p = binomial_half_p(above, above + below) if above + below else 1.0
    low, high = median_interval(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(a / b)
    finite = log_ratio[np.isfinite(log_ratio)]
    return Test(
        method="sign_test",
        n=len(d),
        diff=float(np.median(d)),
        ci_low=low,
        ci_high=high,
        p_value=min(p, 1.0),
        direction=int(np.sign(above - below)),
        a_higher=above,
        b_higher=below,
        ratio=float(np.exp(np.median(finite))) if len(finite) else None,
        sd_log_ratio=float(finite.std(ddof=1)) if len(finite) > 1 else None,
    )


def median_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float | None, ...]:
    """The distribution-free interval of a median: the order statistics whose ranks the
    binomial(n, 1/2) puts outside (1 - confidence) / 2 on each side. Its coverage is at least
    `confidence`; under 6 values no interval reaches 95%, and None is returned."""
    from scipy.special import bdtr

    n = len(values)
    tail = (1 - confidence) / 2
    j = int(n / 2 - 2 * math.sqrt(n))  # below the answer; then up while the tail allows
    j = max(j, -1)
    while j + 1 < n and bdtr(j + 1, n, 0.5) <= tail:
        j += 1
    if j < 0:
        return None, None
    ordered = np.sort(values)
    return float(ordered[j]), float(ordered[n - 1 - j])


def unpaired(a: np.ndarray, b: np.ndarray, medians: bool = False) -> Test:
    """Variants that did not answer the same prompts. 0/1 outcomes: Fisher's exact test, with
    Newcombe's interval for independent proportions (1998, method 10); latency and cost
    (`medians`): Mann-Whitney, with the difference of the medians and no interval; other
    values: Welch's t."""
    from scipy import stats as sp

    n = len(a) + len(b)
    if len(a) < 2 or len(b) < 2:
        return Test("too_few_prompts", n, None, None, None, 1.0, 0, paired=False)
    if medians or (np.ptp(a) == 0 and np.ptp(b) == 0 and not is_binary(a, b)):
        p = float(sp.mannwhitneyu(a, b).pvalue)
        diff = float(np.median(a) - np.median(b))
        return Test("mann_whitney", n, diff, None, None, p, int(np.sign(diff)), paired=False)
    diff = float(a.mean() - b.mean())
    if is_binary(a, b):
        passed_a, passed_b = int(a.sum()), int(b.sum())
        table = [[passed_a, len(a) - passed_a], [passed_b, len(b) - passed_b]]
        p = float(sp.fisher_exact(table).pvalue)
        la, ua = wilson_interval(passed_a, len(a))  # type: ignore[misc]
        lb, ub = wilson_interval(passed_b, len(b))  # type: ignore[misc]
        pa, pb = a.mean(), b.mean()
        low = diff - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
        high = diff + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
        return Test("fisher_exact", n, diff, low, high, p, int(np.sign(diff)), paired=False)
    result = sp.ttest_ind(a, b, equal_var=False)
    interval = result.confidence_interval(0.95)
    return Test(
        "welch_t",
        n,
        diff,
        float(interval.low),
        float(interval.high),
        float(result.pvalue),
        int(np.sign(diff)),
        paired=False,
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: each p-value multiplied by the number of hypotheses not yet
    rejected, made monotone, capped at 1. Controls the family-wise error rate."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
