"""`scorers:` and `assert:` in experiment files and prompts files: one line per mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmflow.cli import app
from llmflow.config import load_experiment
from llmflow.config.prompts_file import load_prompts_file
from llmflow.errors import ConfigError
from tests.helpers import ollama_models, write_experiment

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


TREE = {"type": "array", "items": {"$ref": "#"}}  # refers to itself one level down: fine


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {"properties": {"a": {"$ref": "#/$defs/nmae"}}, "$defs": {"name": {}}},
            "scorers[0].schema: $ref '#/$defs/nmae' at #/properties/a/$ref does not resolve",
        ),
        (
            {"$ref": "https://example.com/ticket.json"},
            "scorers[0].schema: $ref 'https://example.com/ticket.json' at #/$ref is not within "
            "the schema: llmflow fetches no schema",
        ),
        ({"$ref": "ticket.json"}, "scorers[0].schema: $ref 'ticket.json' at #/$ref is not within"),
        ({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#"}}}, "loops back to itself"),
        (
            {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}},
            "loops back to itself without descending into the answer",
        ),
        ({"anyOf": [{"type": "string"}, {"$ref": "#"}]}, "scorers[0].schema: $ref '#' at"),
        ({"$anchor": "x", "not": {"$ref": "#x"}}, "loops back to itself"),
        ({"properties": {"a": {"$ref": "#nowhere"}}}, "$ref '#nowhere' at"),
    ],
)
def test_an_is_json_schema_is_resolved_when_the_file_is_read(tmp_path: Path, schema, message):
    error = error_of(tmp_path, scorers=[{"type": "is-json", "schema": schema}])
    assert message in error and "\n" not in error, error


@pytest.mark.parametrize(
    "schema",
    [
        TREE,
        {"$defs": {"node": {"properties": {"children": {"items": {"$ref": "#/$defs/node"}}}}}},
        {"$ref": "https://json-schema.org/draft/2020-12/schema"},  # bundled, found offline
        {"$id": "https://example.com/s", "$defs": {"a": {"type": "string"}}, "$ref": "s#/$defs/a"},
    ],
)
def test_recursive_and_bundled_references_are_accepted(tmp_path: Path, schema):
    loaded = load_experiment(
        write_experiment(tmp_path, LOCAL, scorers=[{"type": "is-json", "schema": schema}])
    )
    assert loaded.config.scorers[0].json_schema == schema


def test_a_bad_schema_exits_2_before_any_call(tmp_path: Path, fake_ollama):
    schema = {"$ref": "#/definitions/missing"}
    path = write_experiment(
        tmp_path, ollama_models(fake_ollama), scorers=[{"type": "is-json", "schema": schema}]
    )
    result = CliRunner().invoke(
        app, ["run", str(path), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().count("\n") == 0
    assert "scorers[0].schema: $ref '#/definitions/missing' at #/$ref does not resolve" in (
        result.stderr
    )
    assert fake_ollama.generation_requests() == [] and not (tmp_path / "mlflow.db").exists()
