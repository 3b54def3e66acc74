"""The statistics behind the verdicts, each checked against an independent computation:
statsmodels, brute-force enumeration, or a simulation of its coverage."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import DescrStatsW

from llmflow import power, significance
from llmflow.stats import bootstrap_ci, clustered_rate_interval, wilson_interval


def outcomes(both: int, a_only: int, b_only: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    a = [1] * both + [1] * a_only + [0] * b_only + [0] * neither
    b = [1] * both + [0] * a_only + [1] * b_only + [0] * neither
    return np.array(a, dtype=float), np.array(b, dtype=float)


def test_mcnemar_exact_and_mid_p_on_the_issue_case():
    """A right on 13 of 20 prompts, B on 10 of those 13: 3 discordant prompts, all for A."""
    a, b = outcomes(10, 3, 0, 7)
    test = significance.mcnemar(a, b)
    assert test.p_value == pytest.approx(0.25) and test.mid_p == pytest.approx(0.125)
    assert test.diff == pytest.approx(0.15) and test.direction == 1
    assert (test.a_higher, test.b_higher, test.n) == (3, 0, 20)


@pytest.mark.parametrize("table", [(10, 3, 0, 7), (30, 9, 0, 21), (5, 12, 4, 9), (0, 7, 6, 1)])
def test_mcnemar_agrees_with_statsmodels_exact(table):
    a, b = outcomes(*table)
    both, a_only, b_only, neither = table
    expected = sm_mcnemar([[both, a_only], [b_only, neither]], exact=True).pvalue
    assert significance.mcnemar(a, b).p_value == pytest.approx(expected)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (3, 3), (9, 9), (4, 10), (5, 10), (31, 70), (0, 500)])
def test_the_binomial_p_value_is_scipys_binomtest(k: int, n: int):
    assert significance.binomial_half_p(k, n) == pytest.approx(binomtest(k, n, 0.5).pvalue)


def test_holm_agrees_with_statsmodels():
    rng = np.random.default_rng(7)
    for _ in range(50):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 30)).tolist()
        expected = multipletests(p, method="holm")[1]
        assert significance.holm(p) == pytest.approx(list(expected))


def test_newcombe_interval_keeps_its_width_when_no_prompt_disagrees():
    low, high = significance.newcombe_paired_interval(12, 0, 0, 8)
    assert low < 0 < high and high - low > 0.05


def test_newcombe_interval_covers_95_percent():
    """Coverage over simulated paired data (correlated outcomes, as real models' are)."""
    rng = np.random.default_rng(3)
    # joint probabilities of (both, a only, b only, neither)
    for joint in ([0.5, 0.15, 0.05, 0.3], [0.3, 0.1, 0.1, 0.5], [0.8, 0.1, 0.0, 0.1]):
        true = joint[1] - joint[2]
        covered = 0
        trials = 2000
        for counts in rng.multinomial(60, joint, size=trials):
            low, high = significance.newcombe_paired_interval(*counts)
            covered += low <= true <= high
        assert 0.93 <= covered / trials <= 0.995


@pytest.mark.parametrize("n", range(1, 80))
def test_median_interval_is_the_tightest_with_95_percent_coverage(n: int):
    """Its order statistics, checked against the binomial sums written out by hand."""
    values = np.arange(n, dtype=float)
    low, high = significance.median_interval(values)

    def below(j: int) -> float:  # P(Binomial(n, 1/2) <= j)
        return sum(math.comb(n, k) for k in range(j + 1)) / 2**n

    if n < 6:
        assert (low, high) == (None, None)  # no pair of order statistics reaches 95%
        return
    j = int(low)
    assert high == n - 1 - j
    assert 1 - 2 * below(j) >= 0.95 and 1 - 2 * below(j + 1) < 0.95


def test_sign_test_counts_prompts_and_matches_the_binomial_by_hand():
    a = np.array([0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    b = a + 0.06  # b slower on every prompt
    test = significance.sign_test(a, b)
    assert (test.a_higher, test.b_higher, test.direction) == (0, 7, -1)
    assert test.p_value == pytest.approx(2 / 2**7)
    assert test.diff == pytest.approx(-0.06) and test.ratio < 1


def test_signed_rank_exact_p_matches_enumerating_every_sign():
    d = np.array([0.31, -0.12, 0.44, 0.05, 0.27, -0.08, 0.19, 0.36, 0.02, 0.51])
    test = significance.signed_rank(d, np.zeros_like(d))
    ranks = np.argsort(np.argsort(np.abs(d))) + 1
    observed = ranks[d > 0].sum()
    centre = ranks.sum() / 2
    extreme = sum(
        abs(sum(r for r, s in zip(ranks, signs, strict=True) if s) - centre)
        >= abs(observed - centre)
        for signs in itertools.product([0, 1], repeat=len(d))
    )
    assert test.p_value == pytest.approx(extreme / 2 ** len(d))
    assert test.method == "wilcoxon_exact" and test.direction == 1


def test_t_interval_agrees_with_statsmodels():
    d = np.random.default_rng(1).normal(0.1, 0.3, size=40)
    assert significance.t_interval(d) == pytest.approx(DescrStatsW(d).tconfint_mean())


def test_unpaired_binary_uses_fisher_and_says_so():
    a = np.array([1.0] * 18 + [0.0] * 2)
    b = np.array([1.0] * 8 + [0.0] * 12)
    test = significance.unpaired(a, b)
    assert test.method == "fisher_exact" and test.p_value < 0.01 and test.direction == 1
    assert test.ci_low < 0.5 < test.ci_high


def test_clustered_interval_with_one_call_per_prompt_is_wilson():
    clusters = [[True]] * 13 + [[False]] * 7
    assert clustered_rate_interval(clusters) == wilson_interval(13, 20)


def test_identical_repeats_count_as_one_observation_per_prompt():
    clusters = [[True] * 10] * 13 + [[False] * 10] * 7
    low, high = clustered_rate_interval(clusters)
    assert (low, high) == pytest.approx(wilson_interval(0.65 * 19, 19))
    naive = wilson_interval(130, 200)
    assert high - low > 2.5 * (naive[1] - naive[0])


def test_clustered_interval_agrees_with_a_bootstrap_over_prompts():
    """Repeats that vary partly within prompts: the effective-n interval and a percentile
    bootstrap that resamples whole prompts have about the same width."""
    rng = np.random.default_rng(11)
    difficulty = rng.uniform(0.1, 0.9, size=80)
    clusters = [list(rng.random(5) < p) for p in difficulty]
    low, high = clustered_rate_interval(clusters)
    data = np.array(clusters, dtype=float)
    means = data[rng.integers(0, 80, size=(4000, 80))].mean(axis=(1, 2))
    b_low, b_high = np.percentile(means, [2.5, 97.5])
    assert (high - low) == pytest.approx(b_high - b_low, rel=0.15)


def test_median_latency_interval_resamples_whole_prompts():
    """Ten repeats of each prompt, nearly alike: the interval is that of the prompts."""
    rng = np.random.default_rng(5)
    prompts = rng.uniform(0.1, 1.0, size=30)
    grouped = [[p + rng.normal(0, 1e-4) for _ in range(10)] for p in prompts]
    pooled = [x for g in grouped for x in g]
    clustered = bootstrap_ci(grouped)
    naive = bootstrap_ci(pooled)
    assert clustered[1] - clustered[0] > 2 * (naive[1] - naive[0])


def test_connor_sample_size_on_a_worked_case():
    """A 10-point difference with a fifth of the prompts discordant: (1.96 * sqrt(0.2) +
    0.8416 * sqrt(0.19))^2 / 0.01 = 154.6 prompts."""
    assert power.mcnemar_prompts(0.10, 0.20) == 155
    detectable = power.mcnemar_detectable(155, 0.20)
    assert detectable == pytest.approx(0.10, abs=0.002)
    assert power.mcnemar_prompts(0.3, 0.2) is None  # more than the prompts that disagree


def test_paired_mean_sample_size():
    assert power.mean_prompts(0.1, 0.5) == math.ceil(((1.959964 + 0.841621) * 5) ** 2)
    assert power.mean_detectable(197, 0.5) == pytest.approx(0.1, rel=0.01)


def test_wilcoxon_gives_no_verdict_when_ranks_and_mean_disagree():
    """35 small gains and 5 large losses: the ranks lean one way, the mean the other."""
    d = np.array([0.01] * 35 + [-0.6] * 5)
    test = significance.signed_rank(d, np.zeros_like(d))
    assert test.diff < 0 and test.direction == 0


def test_wilcoxon_with_ties_uses_scipys_choice_and_names_it():
    from scipy.stats import wilcoxon

    d = np.array([0.5, 0.5, 1.0, -0.5, 0.5, 1.0, 0.5, 0.5, 1.0, 0.5])  # means of repeats tie
    test = significance.signed_rank(d, np.zeros_like(d))
    assert test.method == "wilcoxon_permutation"
    assert test.p_value == pytest.approx(wilcoxon(d, method="auto").pvalue)


def test_mid_p_of_an_even_split_is_one():
    a, b = outcomes(3, 2, 2, 3)
    assert significance.mcnemar(a, b).mid_p == 1.0


def test_prompts_needed_never_below_what_the_exact_test_can_reach():
    # 5% discordant: the exact test needs 6 discordant prompts, so at least 120 prompts
    assert power.mcnemar_prompts(0.05, 0.05) >= 120


def test_the_sign_test_detects_nothing_below_the_prompts_it_can_reach_alpha_with():
    """3 prompts all one way give p = 0.25 (the quickstart's latency): no difference is
    detectable, and a large one still needs 6 prompts (2 * 0.5^6 = 0.031 <= 0.05)."""
    assert (
        binomtest(3, 3).pvalue == 0.25 and binomtest(6, 6).pvalue <= 0.05 < binomtest(5, 5).pvalue
    )
    assert power.fewest_one_way(0.05) == 6
    assert power.sign_detectable(3, 0.3) is None
    assert power.sign_detectable(6, 0.3) == power.mean_detectable(6, 0.3, factor=math.pi / 2)
    assert power.sign_prompts(math.log(1.6), 0.1) == 6  # the approximation alone says 1
    assert power.mean_prompts(math.log(1.6), 0.1, factor=math.pi / 2) < 6


def test_repeats_that_vary_alike_in_every_prompt_count_in_full():
    clusters = [[True, False]] * 20  # each prompt passes half its repeats: no spread between
    assert clustered_rate_interval(clusters) == pytest.approx(wilson_interval(20, 40))
