"""How many prompts a difference needs: the other half of "not distinguishable".

Approximations at 80% power and a two-sided level alpha (0.05 divided by the number of
comparisons of a sweep: Holm's first, strictest step):

- pass rates on paired prompts (McNemar): Connor (1987),
  n = (z_a * sqrt(q) + z_b * sqrt(q - d^2))^2 / d^2, where q is the share of prompts on which
  the two variants disagree (discordant) and d the difference of the pass rates;
- per-prompt means (scores, cost): the paired t approximation, n = ((z_a + z_b) * sd / d)^2,
  where sd is the standard deviation of the per-prompt differences;
- latency (sign test): the same on log latency, times pi / 2, the sign test's efficiency
  relative to the t test for normal differences.

Both exact tests (McNemar, the sign test) reach alpha only with enough prompts leaning one way:
2 * 0.5^k <= alpha, so 6 at 0.05. Fewer prompts detect nothing, whatever the approximations say.

What a run could have detected is the same formula solved for d at the run's own n.
"""

from __future__ import annotations

import math

POWER = 0.8
ALPHA = 0.05
SIGN_TEST_FACTOR = math.pi / 2


def _z(alpha: float) -> tuple[float, float]:
    from scipy.special import ndtri  # the normal quantile, as scipy.stats.norm.ppf

    return float(ndtri(1 - alpha / 2)), float(ndtri(POWER))


def fewest_one_way(alpha: float = ALPHA) -> int:
    """The fewest prompts, all leaning one way, with which an exact sign test (or McNemar's,
    on the discordant prompts) reaches a two-sided p <= alpha."""
    return math.ceil(math.log2(2 / alpha))


def mcnemar_prompts(diff: float, discordance: float, alpha: float = ALPHA) -> int | None:
    """Prompts needed to detect a difference `diff` of pass rates when the variants disagree on
    a share `discordance` of the prompts; None when no such share allows it (|diff| can never
    exceed the share of prompts on which they disagree)."""
    d, q = abs(diff), discordance
    if d <= 0 or d > q:  # a difference never exceeds the share of prompts that disagree
        return None
    za, zb = _z(alpha)
    connor = math.ceil((za * math.sqrt(q) + zb * math.sqrt(q - d * d)) ** 2 / (d * d))
    # the exact test needs at least k discordant prompts, all one way, to reach alpha at all
    return max(connor, math.ceil(fewest_one_way(alpha) / q))


def mcnemar_detectable(n: int, discordance: float, alpha: float = ALPHA) -> float | None:
    """The smallest difference of pass rates that n paired prompts detect with 80% power, at
    the observed share of discordant prompts; None when nothing could be (no disagreement, or
    more than the prompts that disagree). Connor's formula solved for d: the positive root of
    (n + zb^2) d^2 - 2 sqrt(n q) za d + (za^2 - zb^2) q = 0."""
    q = discordance
    if n < 1 or q <= 0:
        return None
    za, zb = _z(alpha)
    inside = n - za * za + zb * zb
    if inside < 0:
        return None
    d = math.sqrt(q) * (math.sqrt(n) * za + zb * math.sqrt(inside)) / (n + zb * zb)
    return d if d <= q else None


def mean_prompts(diff: float, sd: float, alpha: float = ALPHA, factor: float = 1.0) -> int | None:
    """Prompts needed to detect a mean per-prompt difference `diff` whose per-prompt spread is
    `sd` (paired t approximation, times `factor`)."""
    if diff == 0 or sd <= 0:
        return None
    za, zb = _z(alpha)
    return math.ceil(factor * ((za + zb) * sd / abs(diff)) ** 2)


def mean_detectable(n: int, sd: float, alpha: float = ALPHA, factor: float = 1.0) -> float | None:
    """The smallest mean per-prompt difference n prompts detect with 80% power."""
    if n < 2 or sd <= 0:
        return None
    za, zb = _z(alpha)
    return (za + zb) * sd * math.sqrt(factor / n)


def sign_prompts(log_ratio: float, sd: float, alpha: float = ALPHA) -> int | None:
    """Prompts the sign test needs to detect a ratio of medians exp(`log_ratio`), never fewer
    than it can reach alpha with."""
    n = mean_prompts(log_ratio, sd, alpha, SIGN_TEST_FACTOR)
    return None if n is None else max(n, fewest_one_way(alpha))


def sign_detectable(n: int, sd: float, alpha: float = ALPHA) -> float | None:
    """The smallest log ratio n prompts detect with the sign test; None below the prompts it
    needs to reach alpha at all (3 prompts, all one way, give p = 0.25)."""
    if n < fewest_one_way(alpha):
        return None
    return mean_detectable(n, sd, alpha, SIGN_TEST_FACTOR)
