"""Checks against the prompt's reference (`value: "{expected}"`), and per-prompt checks named
after their prompt, so that no metric averages two prompts' different checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmflow.config import load_experiment
from llmflow.scoring import CaseChecks, ScorerSpec, case_table, quality_metrics, score_record
from tests.helpers import call_record, write_experiment

LOCAL = [{"provider": "local"}]


def scored(answer: str, expected: str | None, **fields):
    check = ScorerSpec.model_validate(fields)
    return score_record(
        call_record("v", 0.2, text=answer), CaseChecks(expected, ((check.label, check),))
    )


@pytest.mark.parametrize(
    ("answer", "fields", "passed"),
    [
        ("The capital is Paris.", {"type": "contains", "value": "{expected}"}, True),
        ("The capital is Lyon.", {"type": "contains", "value": "{expected}"}, False),
        ("it is PARIS", {"type": "icontains", "value": "{expected}"}, True),
        (" paris ", {"type": "equals", "value": "{expected}"}, True),
        ("Answer: Paris", {"type": "contains", "value": "Answer: {expected}"}, True),
        ("Lyon", {"type": "contains-any", "value": ["{expected}", "Lyon"]}, True),
        ("Paris", {"type": "contains-all", "value": ["{expected}", "Lyon"]}, False),
        ("Paris.", {"type": "regex", "value": "^{expected}\\.$"}, True),
    ],
)
def test_a_check_reads_the_reference(answer: str, fields: dict, passed: bool):
    (score,) = scored(answer, "Paris", **fields)
    assert score.passed is passed


def test_the_reference_is_literal_in_a_regex():
    (score,) = scored("a+b", "a+b", type="regex", value="^{expected}$")
    assert score.passed
    (score,) = scored("aab", "a+b", type="regex", value="^{expected}$")
    assert not score.passed


def test_a_prompt_without_a_reference_is_not_scored_by_it():
    assert scored("anything", None, type="contains", value="{expected}") == []
    assert len(scored("anything", None, type="contains", value="any")) == 1


def test_the_file_says_it_once_for_every_prompt(tmp_path: Path):
    prompts = [
        {"id": "fr", "user": "Capital of France?", "expected": "Paris"},
        {"id": "jp", "user": "Capital of Japan?", "expected": "Tokyo"},
        {"id": "free", "user": "Say hi"},
    ]
    scorers = [{"type": "icontains", "value": "{expected}", "name": "has-expected"}]
    table = case_table(
        load_experiment(write_experiment(tmp_path, LOCAL, prompts=prompts, scorers=scorers))
    )
    answers = {"fr": "paris", "jp": "Kyoto", "free": "hi"}
    scores = {
        (case, 0): score_record(call_record("v", 0.1, text=text, case_id=case), table[case])
        for case, text in answers.items()
    }
    assert [s.passed for s in scores["fr", 0]] == [True]
    assert [s.passed for s in scores["jp", 0]] == [False]
    assert scores["free", 0] == []
    assert quality_metrics(scores)["score.has-expected"] == 0.5


def test_each_prompts_own_check_is_named_after_its_prompt(tmp_path: Path):
    prompts = [
        {
            "id": "capital fr",
            "user": "Capital?",
            "assert": [{"type": "contains", "value": "Paris"}],
        },
        {
            "id": "river",
            "user": "River?",
            "assert": [
                {"type": "contains", "value": "Nile"},
                {"type": "contains", "value": "Africa"},
                {"type": "contains", "value": "long", "name": "says-long"},
            ],
        },
    ]
    table = case_table(load_experiment(write_experiment(tmp_path, LOCAL, prompts=prompts)))
    assert [name for name, _ in table["capital fr"].checks] == ["capital_fr.contains"]
    assert [name for name, _ in table["river"].checks] == [
        "river.contains",
        "river.contains_2",
        "says-long",
    ]
    scores = {
        ("capital fr", 0): score_record(call_record("v", 0.1, text="Paris"), table["capital fr"]),
        ("river", 0): score_record(call_record("v", 0.1, text="Amazon"), table["river"]),
    }
    metrics = quality_metrics(scores)
    assert metrics["score.capital_fr.contains"] == 1.0 and metrics["score.river.contains"] == 0.0
    assert "score.contains" not in metrics
