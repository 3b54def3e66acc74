"""Pairwise verdicts on hand-built calls: the three cases of issue 27, identical models, and
simulations of the family-wise error rate and of the power."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmflow.report.pairs import Evidence, evidence, oriented, pairwise, to_json
from llmflow.report.pairs_text import evidence_text, power_text

REQUIRED_KEYS = {
    "metric",
    "a",
    "b",
    "n_pairs",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "method",
    "verdict",
}


def calls(passed: dict[str, bool], latency: dict[str, float], repeats: int = 1) -> list[dict]:
    """calls.json rows: each prompt answered `repeats` times, alike (temperature 0)."""
    return [
        {
            "case": case,
            "repeat": r,
            "error": None,
            "cached": False,
            "latency_s": latency[case],
            "cost_usd": None,
            "equals": ok,
            "passed": ok,
        }
        for case, ok in passed.items()
        for r in range(repeats)
    ]


def test_repeats_at_temperature_0_are_one_observation_per_prompt():
    """20 prompts x 10 repeats; A right on 13, B on 10 of those 13: 3 prompts tell them apart."""
    cases = [f"p{i}" for i in range(20)]
    flat = dict.fromkeys(cases, 0.5)
    a = evidence("model-a", calls({c: i < 13 for i, c in enumerate(cases)}, flat, repeats=10))
    b = evidence("model-b", calls({c: i < 10 for i, c in enumerate(cases)}, flat, repeats=10))
    pair = oriented(pairwise([a, b]), "pass_rate", "model-a", "model-b")
    assert pair.n_pairs == 20 and pair.method == "mcnemar_exact"
    assert pair.p_value == pytest.approx(0.25) and pair.mid_p == pytest.approx(0.125)
    assert pair.diff == pytest.approx(0.15)
    assert pair.verdict == "not_distinguishable"
    assert pair.repeats_vary == 0
    text = power_text(pair)
    assert "more repeats would not help: every prompt's repeats gave the same result" in text
    assert "the 15.0 pts observed would need about" in text


def issue_case_two() -> tuple[Evidence, Evidence]:
    """60 prompts; A right on 36, B on 27 of those; B 60 ms slower on every prompt, the prompts
    ranging from 100 ms to 1 s."""
    cases = [f"p{i}" for i in range(60)]
    latency = {c: 0.1 + 0.9 * i / 59 for i, c in enumerate(cases)}
    a = evidence("A", calls({c: i < 36 for i, c in enumerate(cases)}, latency))
    slower = {c: t + 0.06 for c, t in latency.items()}
    b = evidence("B", calls({c: i < 27 for i, c in enumerate(cases)}, slower))
    return a, b


def test_paired_prompts_show_a_difference_that_intervals_miss():
    a, b = issue_case_two()
    pairs = pairwise([a, b])
    quality = oriented(pairs, "pass_rate", "A", "B")
    assert quality.n_pairs == 60 and quality.diff == pytest.approx(0.15)
    assert quality.p_value == pytest.approx(2 / 2**9) and quality.p_value < 0.01
    assert quality.verdict == "a_better"
    speed = oriented(pairs, "latency_s", "A", "B")
    assert speed.method == "sign_test" and (speed.a_higher, speed.b_higher) == (0, 60)
    assert speed.diff == pytest.approx(-0.06) and speed.verdict == "a_better"
    assert speed.ci_low == pytest.approx(-0.06) and speed.ci_high == pytest.approx(-0.06)
    assert "A slower on 0 and faster on 60" in evidence_text(speed)


def test_two_identical_models_are_only_not_distinguishable():
    rng = np.random.default_rng(2)
    cases = [f"p{i}" for i in range(50)]
    passed = {c: bool(rng.random() < 0.6) for c in cases}
    latency = {c: float(rng.uniform(0.1, 1.0)) for c in cases}
    twins = [evidence(name, calls(passed, latency, repeats=3)) for name in ("x", "y")]
    found = pairwise(twins)
    assert {p.metric for p in found} == {"pass_rate", "score.equals", "latency_s"}
    assert {p.verdict for p in found} == {"not_distinguishable"}


def test_the_json_contract():
    a, b = issue_case_two()
    rows = json.loads(to_json(pairwise([a, b])))
    assert all(set(row) >= REQUIRED_KEYS for row in rows)
    latency = next(r for r in rows if r["metric"] == "latency_s")
    assert (latency["a"], latency["b"], latency["verdict"]) == ("A", "B", "a_better")
    assert latency["diff"] == pytest.approx(-0.06)  # a minus b, in seconds


def test_variants_without_common_prompts_are_compared_unpaired_and_say_so():
    a = evidence(
        "a", calls({f"a{i}": i < 18 for i in range(20)}, {f"a{i}": 0.5 for i in range(20)})
    )
    b = evidence("b", calls({f"b{i}": i < 8 for i in range(20)}, {f"b{i}": 0.5 for i in range(20)}))
    pair = oriented(pairwise([a, b]), "pass_rate", "a", "b")
    assert pair.n_pairs == 0 and pair.method == "fisher_exact" and not pair.paired
    assert "unpaired, as they did not answer the same prompts" in evidence_text(pair)


def simulated(rng, name: str, difficulty: np.ndarray, speed: np.ndarray) -> Evidence:
    """A variant that passes prompt i with probability difficulty[i], at a latency around
    speed[i]: variants built alike from the same arrays are identical in distribution."""
    found = Evidence(name)
    for i, (p, t) in enumerate(zip(difficulty, speed, strict=True)):
        found.add("pass_rate", f"p{i}", float(rng.random() < p))
        found.add("latency_s", f"p{i}", float(t * rng.lognormal(0, 0.2)))
    return found


def test_six_identical_variants_rarely_get_a_false_verdict():
    """200 sweeps of 6 identical variants (15 pairs each): Holm keeps the family-wise rate of
    false verdicts of each metric at or under 5%."""
    rng = np.random.default_rng(2024)
    false = {"pass_rate": 0, "latency_s": 0}
    runs = 200
    for _ in range(runs):
        difficulty = rng.uniform(0, 1, size=60)
        speed = rng.uniform(0.1, 1.0, size=60)
        sweep = [simulated(rng, f"v{k}", difficulty, speed) for k in range(6)]
        found = pairwise(sweep)
        for metric in false:
            false[metric] += any(p.winner() for p in found if p.metric == metric)
    assert false["pass_rate"] / runs <= 0.05
    assert false["latency_s"] / runs <= 0.05


def test_a_real_difference_is_found_in_most_runs():
    """A 10-point difference on 300 prompts, a fifth of them discordant (15% passed by A only,
    5% by B only): found in at least 80% of 200 runs."""
    rng = np.random.default_rng(99)
    found = 0
    joint = [0.45, 0.15, 0.05, 0.35]  # both pass, A only, B only, neither
    for _ in range(200):
        kind = rng.choice(4, size=300, p=joint)
        a, b = Evidence("A"), Evidence("B")
        for i, k in enumerate(kind):
            a.add("pass_rate", f"p{i}", float(k in (0, 1)))
            b.add("pass_rate", f"p{i}", float(k in (0, 2)))
        (pair,) = pairwise([a, b])
        found += pair.verdict == "a_better"
    assert found / 200 >= 0.8


def test_many_variants_get_a_matrix_and_each_verdict_names_both_sides():
    from llmflow.report import blocks
    from llmflow.report.pairs_text import section

    sweep = []
    for k in range(6):  # each variant 20 ms slower than the one before, on every prompt
        found = Evidence(f"m{k}")
        for i in range(12):
            found.add("latency_s", f"p{i}", 0.1 + i / 100 + 0.02 * k)
        sweep.append(found)
    text = blocks.to_markdown(section(pairwise(sweep), [v.label for v in sweep]))
    assert "| latency: row vs column | m0 | m1 | m2 | m3 | m4 | m5 |" in text
    assert "| m0 |  | better (-0.020 s) | better (-0.040 s) |" in text
    assert "- m0 better than m1 on latency (-0.020 s, A = m0): sign test on the 12 prompts" in text


def test_a_check_that_copies_latency_or_cost_is_not_compared_as_a_score():
    """The `latency` check's value is the call's latency: higher is worse, so pairing it as a
    score (higher is better) would call the slow variant better."""
    rows = [
        {
            "case": f"p{i}",
            "repeat": 0,
            "error": None,
            "cached": False,
            "latency_s": 0.1 + i / 10,
            "cost_usd": 0.001,
            "cost_kind": "priced",
            "response": "ok",
            "latency": 0.1 + i / 10,
            "passed": True,
        }
        for i in range(8)
    ]
    found = evidence("a", rows)
    assert "score.latency" not in found.values and "latency_s" in found.values


def test_cost_is_compared_only_when_every_call_is_priced():
    rows = [
        {
            "case": f"p{i}",
            "repeat": 0,
            "error": None,
            "cached": False,
            "latency_s": 0.5,
            "cost_usd": 0.0,
            "cost_kind": "local",
            "response": "ok",
            "passed": None,
        }
        for i in range(8)
    ]
    assert "cost_per_call_usd" not in evidence("free-local", rows).values


def test_the_interpretation_says_when_the_other_variant_wins_on_the_same_prompts():
    """A has the lower median over all calls, B is faster on 40 of 60 shared prompts."""
    from llmflow.report.verdicts import speed
    from llmflow.tracking.read import row_from

    a, b = Evidence("A"), Evidence("B")
    for i in range(60):
        base = 0.2 + i / 100
        a.add("latency_s", f"p{i}", base + (0.01 if i < 40 else -0.3))
        b.add("latency_s", f"p{i}", base)
    rows = [
        row_from("ra", {"variant_id": "A"}, {"latency_p50_s": 0.40, "n_calls": 60}, {}),
        row_from("rb", {"variant_id": "B"}, {"latency_p50_s": 0.45, "n_calls": 60}, {}),
    ]
    (text,) = speed(rows, pairwise([a, b]))
    assert "but **B is faster on the prompts both answered**" in text
    assert "not distinguishable" not in text


def test_cost_power_is_relative():
    a, b = Evidence("a"), Evidence("b")
    for i in range(20):
        a.add("cost_per_call_usd", f"p{i}", 0.00010 * (1 + (i % 3) / 10))
        b.add("cost_per_call_usd", f"p{i}", 0.00010 * (1 + ((i + 1) % 3) / 10))
    (pair,) = pairwise([a, b])
    assert pair.verdict == "not_distinguishable"
    assert pair.detectable is not None and pair.detectable < 1  # a share, not dollars
    assert "% in cost per call" in power_text(pair)


def test_three_prompts_all_one_way_claim_no_power_they_lack():
    """The quickstart's case: 3 prompts, one variant faster on all 3 (sign test p = 0.25).
    No difference was detectable; the observed one needs at least the 6 prompts the sign
    test can reach p <= 0.05 with."""
    a, b = Evidence("a"), Evidence("b")
    for i, (fast, slow) in enumerate([(0.70, 1.45), (0.65, 1.50), (0.72, 1.40)]):
        a.add("latency_s", f"p{i}", fast)
        b.add("latency_s", f"p{i}", slow)
    (pair,) = pairwise([a, b])
    assert pair.verdict == "not_distinguishable" and pair.p_value == 0.25
    assert pair.detectable is None and pair.prompts_needed is not None
    assert pair.prompts_needed >= 6
    text = power_text(pair)
    assert "3 prompts are too few for the sign test" in text and "could detect" not in text
