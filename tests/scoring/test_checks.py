"""The deterministic checks, the names they get and the per-variant quality metrics."""

from __future__ import annotations

import pytest

from llmflow.scoring import (
    CaseChecks,
    ScorerSpec,
    quality_metrics,
    score_record,
    score_records,
    wilson_interval,
)
from llmflow.scoring.specs import unique_labels
from llmflow.types import CallRecord, Cost
from tests.helpers import call_record

INTEGER = {"type": "integer"}
TREE = {"type": "array", "items": {"$ref": "#"}}


def spec(**fields) -> ScorerSpec:
    return ScorerSpec.model_validate(fields)


def outcome(answer: str, expected: str | None = None, record: CallRecord | None = None, **fields):
    one = spec(**fields)
    scores = score_record(
        record or call_record("v", 0.2, text=answer), CaseChecks(expected, ((one.label, one),))
    )
    return (scores[0].value, scores[0].passed) if scores else None


@pytest.mark.parametrize(
    ("answer", "fields", "passed"),
    [
        (" PARIS \n", {"type": "equals", "value": "paris"}, True),
        ("PARIS", {"type": "equals", "value": "paris", "case_sensitive": True}, False),
        ("The capital is Paris.", {"type": "contains", "value": "Paris"}, True),
        ("The capital is paris.", {"type": "contains", "value": "Paris"}, False),
        ("The capital is PARIS.", {"type": "icontains", "value": "paris"}, True),
        ("Lyon", {"type": "contains-any", "value": ["Paris", "lyon"]}, True),
        ("Lyon", {"type": "contains-all", "value": ["Paris", "lyon"]}, False),
        ("Paris", {"type": "regex", "value": "^[A-Z]"}, True),
        ("paris", {"type": "regex", "value": "^[A-Z]"}, False),
        ("  \n", {"type": "not-empty"}, False),
        ("Paris", {"type": "not-empty", "not": True}, False),
        ('{"a": 1}', {"type": "is-json"}, True),
        ("{a: 1}", {"type": "is-json"}, False),
        ('{"a": "x"}', {"type": "is-json", "schema": {"properties": {"a": INTEGER}}}, False),
        ("[[[]], []]", {"type": "is-json", "schema": TREE}, True),
        ("[[[1]]]", {"type": "is-json", "schema": TREE}, False),
        ("Paris", {"type": "length", "min": 1, "max": 5}, True),
        ("Paris!", {"type": "length", "max": 5}, False),
        ("Paris", {"type": "latency", "threshold": 0.5}, True),
        ("Paris", {"type": "latency", "threshold": 0.1}, False),
    ],
)
def test_deterministic_checks(answer: str, fields: dict, passed: bool):
    assert outcome(answer, **fields)[1] is passed


def test_similarity_scores_against_expected_and_skip_without_it():
    value, passed = outcome("Paris", expected="Paris", type="rouge-l")
    assert (value, passed) == (1.0, True)
    value, passed = outcome("Lyon", expected="Paris", type="chrf", threshold=0.3)
    assert 0 <= value < 0.3 and not passed
    assert outcome("Paris", expected=None, type="rouge-l") is None


def test_cost_of_an_unpriced_call_is_not_scored():
    priced = call_record("v", 0.1, cost=Cost("priced", 0.002))
    assert outcome("x", record=priced, type="cost", threshold=0.001) == (0.002, False)
    assert outcome("x", record=call_record("v", 0.1), type="cost", threshold=1) is None


def test_failed_and_warmup_calls_get_no_scores():
    one = spec(type="not-empty")
    checks = CaseChecks(None, (("not-empty", one),))
    failed = call_record("v", 0.1, error_type="RateLimited", error_message="429")
    assert score_record(failed, checks) == []
    assert score_record(call_record("v", 0.1, repeat=-1), checks) == []


def test_names_default_to_the_type_and_are_made_unique():
    specs = [spec(type="regex", value="a"), spec(type="regex", value="b"), spec(type="not-empty")]
    assert unique_labels(specs) == ["regex", "regex_2", "not-empty"]


def test_an_auto_name_never_takes_a_name_given_to_another_check():
    named = spec(type="equals", value="a", name="equals_2")
    specs = [spec(type="equals", value="b"), spec(type="equals", value="c"), named]
    assert unique_labels(specs) == ["equals", "equals_3", "equals_2"]
    assert unique_labels(
        [named, spec(type="equals", value="b"), spec(type="equals", value="c")]
    ) == [
        "equals_2",
        "equals",
        "equals_3",
    ]
    twice = [spec(type="regex", value="a", name="r"), spec(type="regex", value="b", name="r")]
    assert unique_labels(twice, taken={"r_2"}) == ["r", "r_3"]


def test_each_check_name_means_one_check_on_every_prompt(tmp_path):
    from llmflow.config import load_experiment
    from llmflow.scoring import case_table
    from tests.helpers import write_experiment

    scorers = [{"type": "equals", "value": "a"}, {"type": "equals", "value": "b"}]
    prompts = [
        {
            "id": "p1",
            "user": "x",
            "assert": [{"type": "contains", "value": "z", "name": "equals_2"}],
        },
        {"id": "p2", "user": "y"},
    ]
    loaded = load_experiment(
        write_experiment(tmp_path, [{"provider": "local"}], scorers=scorers, prompts=prompts)
    )
    table = case_table(loaded)
    by_name = {case: {n: s for n, s in table[case].checks} for case in ("p1", "p2")}
    assert by_name["p1"]["equals_2"] == by_name["p2"]["equals_2"]  # the scorer b on both
    assert by_name["p1"]["equals_2_2"].type == "contains"
    for case in ("p1", "p2"):
        names = [n for n, _ in table[case].checks]
        assert len(names) == len(set(names))


def test_pass_rate_and_its_wilson_interval():
    """One call per prompt: Wilson's interval as it is."""
    check = CaseChecks("Paris", (("icontains", spec(type="icontains", value="paris")),))
    checks = {f"q{i}": check for i in range(5)}
    answers = ["Paris", "paris.", "Lyon", "Paris"]
    records = [call_record("v", 0.1, text=a, case_id=f"q{i}") for i, a in enumerate(answers)]
    records.append(call_record("v", 0.1, case_id="q4", error_type="BadResponse", error_message="x"))
    metrics = quality_metrics(score_records(records, checks))
    assert metrics["pass_rate"] == 0.75
    assert metrics["n_scored"] == 4  # the failed call counts in error_rate, not here
    assert metrics["score.icontains"] == 0.75
    low, high = wilson_interval(3, 4)
    assert (metrics["pass_rate_ci_low"], metrics["pass_rate_ci_high"]) == (low, high)
    assert 0.30 < low < 0.31 and 0.95 < high < 0.96  # the textbook values for 3/4


def test_repeats_of_one_prompt_are_one_cluster_in_the_pass_rate_interval():
    """Ten identical repeats of each of 20 prompts are about 20 observations, not 200."""
    check = CaseChecks("Paris", (("icontains", spec(type="icontains", value="paris")),))
    checks = {f"q{i}": check for i in range(20)}
    records = [
        call_record("v", 0.1, text="Paris" if i < 13 else "Lyon", case_id=f"q{i}", repeat=r)
        for i in range(20)
        for r in range(10)
    ]
    metrics = quality_metrics(score_records(records, checks))
    assert metrics["pass_rate"] == 0.65 and metrics["n_scored"] == 200
    low, high = metrics["pass_rate_ci_low"], metrics["pass_rate_ci_high"]
    by_prompt = wilson_interval(0.65 * 19, 19)  # effective n: G - 1 with identical repeats
    assert (low, high) == pytest.approx(by_prompt)
    pooled = wilson_interval(130, 200)
    assert high - low > 2.5 * (pooled[1] - pooled[0])


def test_no_checks_no_quality_metrics():
    assert quality_metrics({}) == {}
    assert wilson_interval(0, 0) is None
