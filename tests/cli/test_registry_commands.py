"""`register`, `promote`, `models history`: a mistake is one line on stderr, never a traceback."""

import json

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from llmflow.cli import app


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('cli_registry') / 'mlflow.db'}"
    client = MlflowClient(uri)
    for name in ("plain", "it's", "both'\"quotes", "it"):
        client.create_registered_model(name)
        for _ in range(2):
            client.create_model_version(name, source="file:///nowhere/model")
    return uri


def invoke(tracking_uri, *args):
    result = CliRunner().invoke(
        app, [*args, "--tracking-uri", tracking_uri], catch_exceptions=False
    )
    assert "Traceback" not in result.output
    return result


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["promote", "nope", "-v", "1", "--to", "staging"], 1, "no registered model named 'nope'"),
        (
            ["promote", "plain", "-v", "7", "--to", "staging"],
            1,
            "'plain' has no version '7'; its versions: 1, 2",
        ),
        (["promote", "plain", "-v", "x", "--to", "staging"], 1, "no version 'x'"),
        (["promote", "plain", "-v", "1", "--to", "prod"], 2, "--to must be one of"),
        (["register", "--run", "0123456789abcdef"], 1, "no run '0123456789abcdef' in sqlite:"),
        (["models", "history", "not'there"], 1, 'no registered model named "not\'there"'),
    ],
)
def test_unknown_names_say_so_in_one_line(tracking_uri, args, code, says):
    result = invoke(tracking_uri, *args)
    assert result.exit_code == code
    assert says in one_line(result)


@pytest.mark.parametrize(
    ("gate", "says"),
    [
        ("error_rate<1.2.3", "write METRIC OP NUMBER"),
        ("error_rate 0", "write METRIC OP NUMBER"),
        ("error_rate", "write METRIC OP NUMBER"),
        ("latncy_p95_s<3", "unknown metric latncy_p95_s"),
    ],
)
def test_a_malformed_gate_is_bad_input(tracking_uri, gate, says):
    # malformed even before the model is looked up: the one line is about the gate
    for model in ("plain", "nope"):
        result = invoke(
            tracking_uri, "promote", model, "-v", "1", "--to", "staging", "--require", gate
        )
        assert result.exit_code == 2
        assert says in one_line(result) and repr(gate) in one_line(result)


@pytest.mark.parametrize("name", ["it's", "both'\"quotes"])
def test_history_of_a_name_with_quotes(tracking_uri, name):
    promoted = invoke(tracking_uri, "promote", name, "-v", "2", "--to", "staging")
    assert promoted.exit_code == 0, promoted.output
    result = invoke(tracking_uri, "models", "history", name, "--json")
    assert result.exit_code == 0, result.output
    assert [(r["version"], r["to"]) for r in json.loads(result.stdout)] == [("2", "staging")]
    # the versions of `it` are not those of `it's`, nor of any name sharing a prefix
    assert json.loads(invoke(tracking_uri, "models", "history", "it", "--json").stdout) == []
    listed = json.loads(invoke(tracking_uri, "models", "--json").stdout)
    assert sorted((v["name"], v["version"]) for v in listed if v["name"] == name) == [
        (name, "1"),
        (name, "2"),
    ]


def test_a_model_never_promoted_says_so(tracking_uri):
    result = invoke(tracking_uri, "models", "history", "plain")
    assert result.exit_code == 0
    assert result.stdout.startswith("plain: never promoted (`llmflow promote plain -v VERSION")


def test_models_pages_past_the_first_100_and_names_the_models_without_versions(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    for i in range(101):  # MLflow's search returns registered models 100 a page
        client.create_registered_model(f"m{i:03d}")
    client.create_model_version("m100", source="file:///nowhere/model")  # on the second page
    listed = json.loads(invoke(uri, "models", "--json").stdout)
    assert [(v["name"], v["version"]) for v in listed] == [("m100", "1")]
    text = " ".join(invoke(uri, "models").stdout.split())
    assert "| m100 | v1 |" in text
    assert "registered without any version: m000, m001," in text and "m099" in text


@pytest.fixture
def measured_version(tmp_path):
    """A version as registration leaves it: its run's metrics and the file's gates as tags."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    name = "llm_openai_chat_with_a_name_long_enough_to_reach_past_eighty_columns"
    client.create_registered_model(name)
    client.create_model_version(name, source="file:///nowhere/model")
    recorded = {
        "latency_p50_s": 0.1234,
        "latency_p95_s": 0.25,
        "estimated_cost_usd": 0.0002677,
        "error_rate": 0.0,
        "pass_rate": 0.4,
    }
    for key, value in recorded.items():
        client.set_model_version_tag(name, "1", f"metric.{key}", repr(value))
    client.set_model_version_tag(name, "1", "llmflow.gates", json.dumps(["pass_rate>=0.3"]))
    return uri, name


def test_models_piped_is_markdown_formatted_as_compare_formats_it(measured_version):
    uri, name = measured_version
    text = invoke(uri, "models").stdout
    assert "Left out at this width" not in text and "│" not in text
    header, rule, row = text.splitlines()
    assert "| Run cost (all calls) |" in header and rule.startswith("|---|")
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells == [
        name,
        "v1",
        "-",
        "None",
        "",
        "",
        "0.123",
        "0.250",
        "$0.000268",
        "0.0%",
        "40.0%",
    ]


def test_a_version_without_a_recorded_cost_is_unpriced(tracking_uri):
    rows = [
        line for line in invoke(tracking_uri, "models").stdout.splitlines() if "| plain |" in line
    ]
    assert rows and all("| unpriced |" in row for row in rows)


def test_promote_names_each_gate_once_on_one_unwrapped_line(measured_version):
    uri, name = measured_version
    result = invoke(
        uri, "promote", name, "-v", "1", "--to", "staging", "--require", "pass_rate >= 0.3"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1 and len(result.stdout) > 80
    assert result.stdout.rstrip().endswith("passed: pass_rate>=0.3")
    history = invoke(uri, "models", "history", name).stdout
    assert history.count("\n") == 1 and len(history) > 80
    assert "no version was in staging before" in history and "first" not in history
    again = invoke(uri, "promote", name, "-v", "1", "--to", "staging").stdout
    assert "(was v1)" in again
    assert "replacing v1" in invoke(uri, "models", "history", name).stdout.splitlines()[-1]
