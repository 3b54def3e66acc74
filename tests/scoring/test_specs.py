"""`scorers:` and `assert:` in experiment files and prompts files: one line per mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmflow.config import load_experiment
from llmflow.errors import ConfigError
from llmflow.prompts_file import load_prompts_file
from tests.helpers import write_experiment

LOCAL = [{"provider": "local"}]
CAPITAL = {
    "id": "capital",
    "user": "What is the capital of France? Answer with one word.",
    "expected": "Paris",
    "assert": [{"type": "icontains", "value": "paris"}],
}


def error_of(tmp_path: Path, **fields) -> str:
    with pytest.raises(ConfigError) as info:
        load_experiment(write_experiment(tmp_path, LOCAL, **fields))
    return str(info.value).split(": ", 1)[1]


def test_the_contract_shape_loads(tmp_path: Path):
    scorers = [
        {"type": "not-empty"},
        {"type": "regex", "value": "^[A-Z]"},
        {"type": "rouge-l", "threshold": 0.3},
        {
            "type": "judge",
            "name": "helpfulness",
            "provider": "gemini",
            "model": "gemini-2.5-flash",
            "rubric": "Is the answer correct, complete and concise?",
            "threshold": 0.7,
        },
    ]
    loaded = load_experiment(write_experiment(tmp_path, LOCAL, prompts=[CAPITAL], scorers=scorers))
    assert loaded.prompts[0].expected == "Paris"
    assert loaded.prompts[0].checks[0].value == "paris"
    assert [s.label for s in loaded.config.scorers] == [
        "not-empty",
        "regex",
        "rouge-l",
        "helpfulness",
    ]
    judge = loaded.config.scorers[3].judge_entry()
    assert (judge.provider, judge.model, judge.stream) == ("gemini", "gemini-2.5-flash", False)


@pytest.mark.parametrize(
    ("scorer", "message"),
    [
        ({"type": "icontain", "value": "x"}, "scorers[0].type: must be one of equals,"),
        ({"type": "regex", "value": "("}, "scorers[0].value: not a valid regular expression"),
        ({"type": "regex", "value": "a", "threshold": 1}, "scorers[0].threshold: does not apply"),
        ({"type": "rouge-l", "thresold": 1}, "scorers[0].thresold: unknown field (did you mean"),
        ({"type": "rouge-l", "threshold": 2}, "scorers[0].threshold: must be between 0 and 1"),
        ({"type": "length"}, "scorers[0].min: type length needs min, max or both"),
        ({"type": "latency"}, "scorers[0].threshold: type latency needs a limit"),
        ({"type": "contains-any", "value": "x"}, "scorers[0].value: type contains-any needs"),
        ({"type": "is-json", "schema": {"type": 3}}, "scorers[0].schema: not a valid JSON Schema"),
        ({"type": "not-empty", "name": "a b"}, "scorers[0].name: use letters"),
        ({"type": "judge", "rubric": "good?"}, "scorers[0].model: a judge needs its own"),
        ({"type": "judge", "provider": "gemini", "model": "m"}, "scorers[0].rubric: a judge"),
    ],
)
def test_a_bad_scorer_is_one_line_naming_the_field(tmp_path: Path, scorer: dict, message: str):
    error = error_of(tmp_path, scorers=[scorer])
    assert error.startswith(message), error
    assert "\n" not in error


def test_a_bad_assert_names_the_prompt(tmp_path: Path):
    prompt = {**CAPITAL, "assert": [{"type": "equals"}]}
    assert error_of(tmp_path, prompts=[prompt]).startswith(
        "prompts[0].assert[0].value: type equals needs a non-empty string"
    )


def test_prompts_files_carry_expected_and_assert(tmp_path: Path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(json.dumps(CAPITAL) + "\n")
    csv = tmp_path / "p.csv"
    cell = json.dumps(CAPITAL["assert"]).replace('"', '""')
    csv.write_text(f'id,user,expected,assert\ncapital,Capital?,Paris,"{cell}"\n')
    for path in (jsonl, csv):
        (case,) = load_prompts_file(path)
        assert case.expected == "Paris" and case.checks[0].type == "icontains"


def test_a_bad_assert_cell_in_a_csv_is_one_line(tmp_path: Path):
    csv = tmp_path / "p.csv"
    csv.write_text("id,user,assert\ncapital,Capital?,[not json\n")
    with pytest.raises(ConfigError, match=r"p.csv: \[0\].assert: not a JSON list of checks"):
        load_prompts_file(csv)
