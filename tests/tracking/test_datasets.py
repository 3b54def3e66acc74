"""MLflow evaluation datasets as prompt sets: `llmflow dataset push`, `prompts: {mlflow_dataset:
NAME}`, and every run's prompt set logged as its dataset input (found again by its digest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from llmflow.tracking.runs import KIND_PARENT, TAG_KIND
from tests.helpers import invoke_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KEY = "canary-dataset-key-7a10"
RIGHT = {  # what the scripted model answers; the echo model answers "Echo: <prompt>"
    "capital-france": "Paris.",
    "capital-japan": "Tokyo",
    "largest-planet": "Saturn",  # wrong: mentions-expected fails, rouge-l and chrf too
    "water-formula": "H2O",
    "red-planet": "Mars",
}


def quality_experiment(tmp_path: Path, fake_openai, name: str, prompts) -> Path:
    """examples/quality.yaml's prompts and checks, run against two fake OpenAI models."""
    document = yaml.safe_load((EXAMPLES / "quality.yaml").read_text())
    for case in document["prompts"]:
        fake_openai.scripted[("scripted", case["user"])] = RIGHT[case["id"]]
    base = {"provider": "openai", "base_url": f"{fake_openai.url}/v1", "api_key_env": "DS_KEY"}
    document |= {
        "experiment": name,
        "prompts": prompts if prompts is not None else document["prompts"],
        "repeats": 2,
        "report": False,
        "models": [{**base, "model": "scripted"}, {**base, "model": "echo", "temperature": 0.5}],
    }
    document.pop("promote")
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def run(path: Path, uri: str) -> None:
    result = invoke_cli("run", str(path), "--tracking-uri", uri, env={"DS_KEY": KEY})
    assert result.exit_code == 0, result.output


def compared(experiment: str, uri: str) -> list[dict]:
    """The comparison rows without timings, floats to 12 digits: an interval's last digit
    follows the order the calls finished in (concurrent calls), which two runs need not share."""
    result = invoke_cli("compare", "-e", experiment, "-f", "json", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    timing = ("latency", "ttft", "tpot", "tokens_per_s", "run_id", "_at", "duration")
    return [
        {k: _rounded(v) for k, v in row.items() if not any(part in k for part in timing)}
        for row in json.loads(result.stdout)
    ]


def _rounded(value):
    if isinstance(value, float):
        return round(value, 12)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def calls(client: MlflowClient, experiment: str) -> dict[tuple[str, str], dict]:
    """(variant, call) -> the messages sent, the answer and each check's value."""
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    found = {}
    for trace in client.search_traces(locations=[experiment_id], max_results=100):
        name = trace.info.tags["mlflow.traceName"]
        span = trace.data.spans[0]
        scores = {a.name: a.value for a in trace.info.assessments}
        found[tuple(name.split(" | "))] = {
            "messages": span.inputs["messages"],
            "answer": span.outputs["choices"][0]["message"]["content"],
            "scores": scores,
        }
    return found


def parent_run(client: MlflowClient, experiment: str):
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    (parent,) = client.search_runs([experiment_id], f"tags.`{TAG_KIND}` = '{KIND_PARENT}'")
    return parent


def test_a_pushed_dataset_runs_as_its_file_did(tmp_path, tracking_uri, fake_openai):
    fake_openai.api_key = KEY
    from_file = quality_experiment(tmp_path, fake_openai, "quality-file", None)
    pushed = invoke_cli(
        "dataset", "push", str(EXAMPLES / "quality.yaml"), "--name", "quality-set",
        "--tracking-uri", tracking_uri,
    )  # fmt: skip
    assert pushed.exit_code == 0, pushed.output
    assert "created dataset quality-set" in pushed.stdout and "5 written" in pushed.stdout
    from_dataset = quality_experiment(
        tmp_path, fake_openai, "quality-dataset", {"mlflow_dataset": "quality-set"}
    )
    run(from_file, tracking_uri)
    run(from_dataset, tracking_uri)

    rows_file, rows_dataset = (
        compared("quality-file", tracking_uri),
        compared("quality-dataset", tracking_uri),
    )
    for a, b in zip(rows_file, rows_dataset, strict=True):
        assert {k: (v, b.get(k)) for k, v in a.items() if v != b.get(k)} == {}
    assert rows_file == rows_dataset
    assert [r["pass_rate"] for r in rows_file] == [0.0, 0.8]  # echo; scripted, 1 of 5 wrong
    client = MlflowClient(tracking_uri)
    by_file, by_dataset = calls(client, "quality-file"), calls(client, "quality-dataset")
    assert len(by_file) == 20 and by_file == by_dataset  # 5 prompts x 2 repeats x 2 models

    # each parent run has its prompt set as dataset input, with one digest: found by it
    file_parent = parent_run(client, "quality-file")
    dataset_parent = parent_run(client, "quality-dataset")
    (file_input,) = file_parent.inputs.dataset_inputs
    (dataset_input,) = dataset_parent.inputs.dataset_inputs
    assert file_input.dataset.name == "quality-file.yaml"
    assert dataset_input.dataset.name == "quality-set"
    assert dataset_input.dataset.source_type == "mlflow_evaluation_dataset"
    digest = file_input.dataset.digest
    assert dataset_input.dataset.digest == digest
    ids = [
        client.get_experiment_by_name(n).experiment_id for n in ("quality-file", "quality-dataset")
    ]
    same_data = client.search_runs(ids, f"dataset.digest = '{digest}'")
    parents = {r.info.run_id for r in same_data if r.data.tags[TAG_KIND] == KIND_PARENT}
    assert parents == {file_parent.info.run_id, dataset_parent.info.run_id}
    assert len(same_data) == 2 + 4  # and their variant runs, which answered the same prompts
    dataset_id = dataset_parent.data.tags["llmflow.mlflow_source.prompts"]
    assert json.loads(dataset_input.dataset.source) == {"dataset_id": dataset_id}

    # the commands that read an experiment file read its dataset too
    planned = invoke_cli("plan", str(from_dataset), "--tracking-uri", tracking_uri)
    assert planned.exit_code == 0 and "x 5 prompt(s) x" in planned.output, planned.output
    scored = invoke_cli(
        "score", "-e", "quality-dataset", "--config", str(from_dataset),
        "--tracking-uri", tracking_uri,
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    assert compared("quality-dataset", tracking_uri) == rows_file
    scored = invoke_cli("score", "-e", "quality-dataset", "--tracking-uri", tracking_uri)
    assert scored.exit_code == 0, scored.output  # from the run alone: its stored prompt set
    assert compared("quality-dataset", tracking_uri) == rows_file


def test_a_record_maps_to_a_prompt_and_back():
    from llmflow.config import PromptCase
    from llmflow.tracking import dataset_rows as rows

    case = PromptCase.of(
        {
            "id": "q1",
            "user": "Name a planet.",
            "system": "Be brief.",
            "expected": "Mars",
            "assert": [{"type": "length", "max": 20}],
            "metadata": {"team": "astro"},
        }
    )
    record = rows.record_of(case, 3)
    assert record["inputs"] == {"user": "Name a planet.", "system": "Be brief."}
    assert record["expectations"] == {
        "expected_response": "Mars",
        "llmflow_checks": [{"type": "length", "max": 20}],
    }
    stored = {**record, "dataset_record_id": "dr-1", "created_time": 1}
    back = rows.case_of(stored, "quality")
    assert back.with_(metadata=None) == case.with_(metadata=None)
    assert back.metadata == {"mlflow.dataset_record_id": "dr-1", "team": "astro"}
    assert rows.same_record(stored, record)


def test_an_mlflow_native_record_gives_checks_where_they_fit():
    from llmflow.tracking import dataset_rows as rows

    native = {
        "dataset_record_id": "dr-9",
        "inputs": {"question": "Which gases make up air?"},
        "expectations": {
            "expected_response": "Nitrogen and oxygen.",
            "expected_facts": ["nitrogen", "oxygen"],
            "guidelines": ["Answer in one sentence."],
        },
        "tags": {"mlflow.user": "ana"},
    }
    case = rows.case_of(native, "air")
    assert (case.id, case.user, case.expected) == (
        "dr-9",
        native["inputs"]["question"],
        "Nitrogen and oxygen.",
    )
    (facts,) = case.checks
    assert (facts.type, facts.name, facts.value) == (
        "contains-all",
        "expected_facts",
        ["nitrogen", "oxygen"],
    )
    assert case.metadata == {
        "mlflow.dataset_record_id": "dr-9",
        "expectations.guidelines": ["Answer in one sentence."],
    }
    chat = {"dataset_record_id": "dr-2", "inputs": {"messages": [
        {"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi?"}
    ]}}  # fmt: skip
    assert (rows.case_of(chat, "c").system, rows.case_of(chat, "c").user) == ("Be terse.", "Hi?")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"question": "a", "context": "b"}, "inputs has keys context, question: name the user"),
        ({"messages": [{"role": "user", "content": "a"}] * 2}, "one user message"),
        ({"user": ""}, "record dr-1: user: String should have at least 1 character"),
    ],
)
def test_a_record_without_one_prompt_is_one_line(inputs, message):
    from llmflow.errors import ConfigError
    from llmflow.tracking import dataset_rows as rows

    with pytest.raises(ConfigError, match=message):
        rows.case_of({"dataset_record_id": "dr-1", "inputs": inputs}, "set")


def dataset_experiment(tmp_path: Path, prompts) -> Path:
    model = {"provider": "ollama", "model": "m", "base_url": "http://127.0.0.1:9"}
    document = {"experiment": "e", "prompts": prompts, "models": [model]}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_missing_dataset_or_a_store_without_datasets_is_one_line(tmp_path, tracking_uri):
    def error(*args: str) -> str:
        result = invoke_cli(*args)
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        return result.output

    path = dataset_experiment(tmp_path, {"mlflow_dataset": "nowhere"})
    MlflowClient(tracking_uri).search_experiments()  # the store exists, without the dataset
    missing = error("run", str(path), "--tracking-uri", tracking_uri)
    assert "prompts: no MLflow evaluation dataset named 'nowhere'" in missing
    file_store = f"file://{tmp_path / 'mlruns'}"
    assert "MLflow keeps evaluation datasets in a SQL store only" in error(
        "run", str(path), "--tracking-uri", file_store
    )
    pushed = error("dataset", "push", str(path), "--name", "x", "--tracking-uri", file_store)
    assert "--tracking-uri: MLflow keeps evaluation datasets" in pushed
    path = dataset_experiment(tmp_path, {"mlflow_dataset": "nowhere", "version": 2})
    versioned = error("run", str(path), "--tracking-uri", tracking_uri)
    assert "prompts.version: MLflow keeps dataset versions on Databricks only" in versioned
    unnamed = error("dataset", "push", str(path), "--name", " ", "--tracking-uri", tracking_uri)
    assert "--name: must not be empty" in unnamed
    twins = tmp_path / "twins.jsonl"
    twins.write_text('{"id": "a", "user": "Hi"}\n{"id": "b", "user": "Hi"}\n')
    merged = error("dataset", "push", str(twins), "--name", "t", "--tracking-uri", tracking_uri)
    assert f"{twins}: prompts 'a' and 'b' have the same user and system messages" in merged


@pytest.mark.parametrize("command", ["plan", "run"])
@pytest.mark.parametrize("field", ["prompts", "system"])
def test_reading_mlflow_where_no_store_is_leaves_none(tmp_path, command, field):
    path = dataset_experiment(tmp_path, [{"id": "a", "user": "Hi"}])
    document = yaml.safe_load(path.read_text())
    document[field] = {"mlflow_dataset": "set"} if field == "prompts" else "prompts:/p@production"
    path.write_text(yaml.safe_dump(document))
    missing = tmp_path / "nowhere.db"
    result = invoke_cli(command, str(path), "--tracking-uri", f"sqlite:///{missing}")
    assert result.exit_code == 2, result.output
    assert f"{field}: no MLflow store at {missing}" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not missing.exists()


def test_push_updates_by_id_and_a_pinned_digest_refuses_a_changed_dataset(tmp_path, tracking_uri):
    from llmflow.config import DatasetPrompts, PromptCase
    from llmflow.errors import ConfigError
    from llmflow.tracking.datasets import push_prompts, read_dataset

    def cases(*rows):
        return [PromptCase.of(r) for r in rows]

    first = push_prompts(
        tracking_uri,
        cases({"id": "a", "user": "One?"}, {"id": "b", "user": "Two?", "expected": "2"}),
        "set",
    )
    assert (first.created, first.added, first.unchanged) == (True, 2, 0)
    again = push_prompts(
        tracking_uri,
        cases(
            {"id": "a", "user": "One?"},
            {"id": "b", "user": "Two, really?", "expected": "2"},  # changed: its record replaced
            {"id": "c", "user": "Three?"},
        ),
        "set",
    )
    assert (again.created, again.added, again.unchanged) == (False, 2, 1)
    read, _ = read_dataset(tracking_uri, DatasetPrompts(mlflow_dataset="set"), "prompts")
    assert [(c.id, c.user) for c in read] == [("a", "One?"), ("b", "Two, really?"), ("c", "Three?")]

    with pytest.raises(ConfigError, match=f"has digest {again.digest}, not {first.digest}"):
        read_dataset(
            tracking_uri, DatasetPrompts(mlflow_dataset="set", digest=first.digest), "prompts"
        )
    pruned = push_prompts(tracking_uri, cases({"id": "c", "user": "Three?"}), "set", prune=True)
    assert (pruned.removed, pruned.unchanged) == (2, 1)
    read, _ = read_dataset(tracking_uri, DatasetPrompts(mlflow_dataset="set"), "prompts")
    assert [c.id for c in read] == ["c"]

    with pytest.raises(ConfigError, match="same user and system messages"):
        push_prompts(tracking_uri, cases({"id": "x", "user": "Hi"}, {"id": "y", "user": "Hi"}), "s")


def test_system_fills_the_prompts_without_one_for_any_task(tmp_path):
    from llmflow.config import load_experiment

    prompts = [{"id": "a", "user": "Hi"}, {"id": "b", "user": "Yo", "system": "Own."}]
    path = dataset_experiment(tmp_path, prompts)
    document = yaml.safe_load(path.read_text()) | {"system": "Be brief."}
    path.write_text(yaml.safe_dump(document))
    loaded = load_experiment(path)
    assert [p.system for p in loaded.prompts] == ["Be brief.", "Own."]
    document["system"] = "prompts:/support@production"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(Exception, match="system: reads MLflow, which this command does not open"):
        load_experiment(path)  # no store given: a registry prompt is not read


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ({"mlflow_datset": "qs"}, "prompts: a mapping names an MLflow dataset"),
        ({"mlflow_dataset": ""}, "prompts: mlflow_dataset: String should have at least 1"),
        ({"mlflow_dataset": "qs", "versoin": 2}, "prompts: versoin: unknown field"),
    ],
)
def test_a_mistaken_dataset_reference_names_its_field(tmp_path, prompts, message):
    from llmflow.config import load_experiment
    from llmflow.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_experiment(dataset_experiment(tmp_path, prompts))
