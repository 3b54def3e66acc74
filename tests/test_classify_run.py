"""task: classify end to end: a scikit-learn model trained in the run (for real) beside an LLM
(the fake Ollama server, whose echo of the ticket names a known label), in one experiment,
comparison, report, registry and promotion."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from llmflow.cli import app
from llmflow.providers.sklearn_model import texts_column
from llmflow.scoring import wilson_interval
from llmflow.sklearn_training import fit
from tests.helpers import write_experiment

LABELS = ["billing", "technical", "account", "other"]
TRAIN = Path(__file__).parents[1] / "examples" / "data" / "tickets_train.csv"
# the fake answers "Echo: <ticket>": its label is the first one the ticket names
PROMPTS = [
    {"id": "p1", "user": "I was charged twice, a billing problem", "expected": "billing"},
    {"id": "p2", "user": "The app crashes: technical issue", "expected": "technical"},
    {"id": "p3", "user": "I cannot log in to my account", "expected": "account"},
    {"id": "p4", "user": "Do you have an office in Berlin?", "expected": "other"},  # unparsed
    {"id": "p5", "user": "Refund the billing of my account", "expected": "account"},  # billing
]


@pytest.fixture(scope="module")
def ran(tmp_path_factory, fake_ollama):
    tmp = tmp_path_factory.mktemp("classify")
    models = [
        {
            "provider": "sklearn",
            "model": "tfidf-logreg",
            "train": str(messy_copy(TRAIN, tmp)),
            "register_as": "sklearn_ticket_classify",
        },
        {
            "provider": "ollama",
            "model": "llama3.1",
            "base_url": fake_ollama.url,
            "register_as": "llm_ollama_classify",
        },
    ]
    path = write_experiment(
        tmp, models, task="classify", labels=LABELS, prompts=PROMPTS, report=True
    )
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    result = CliRunner().invoke(app, ["run", str(path), "--tracking-uri", uri, "--out", str(tmp)])
    assert result.exit_code == 0, result.output
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("provider-comparison")
    runs = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`llmflow.kind` = 'variant'"
    )
    return {
        "uri": uri,
        "client": client,
        "out": tmp,
        "output": result.output,
        "runs": {r.data.tags["llmflow.provider"]: r for r in runs},
    }


def messy_copy(train: Path, into: Path) -> Path:
    """The training file with its labels spelt as people do: "BILLING ", "Billing", "billing"."""
    rows = list(csv.DictReader(train.open()))
    spell = (lambda s: s.upper() + " ", str.title, str)
    for index, row in enumerate(rows):
        row["expected"] = spell[index % 3](row["expected"])
    copy = into / "train.csv"
    with copy.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["user", "expected"])
        writer.writeheader()
        writer.writerows(rows)
    return copy


def artifact(ran, provider: str, name: str) -> dict:
    run_id = ran["runs"][provider].info.run_id
    return json.loads(Path(ran["client"].download_artifacts(run_id, name)).read_text())


def test_the_llm_accuracy_is_exact(ran):
    metrics = ran["runs"]["ollama"].data.metrics
    assert metrics["accuracy"] == metrics["pass_rate"] == metrics["score.label"] == 0.6
    assert (metrics["accuracy_ci_low"], metrics["accuracy_ci_high"]) == wilson_interval(3, 5)
    assert metrics["n_unparsed"] == 1
    table = artifact(ran, "ollama", "classification.json")
    by_label = {row["label"]: row for row in table["per_label"]}
    assert by_label["account"]["recall"] == 0.5 and by_label["billing"]["precision"] == 0.5
    assert table["confusion"][3] == [0, 0, 0, 0, 1]  # other -> unparsed
    shown = artifact(ran, "ollama", "per_label.json")  # an MLflow table, for the UI
    assert shown["columns"][:4] == ["label", "precision", "recall", "f1"]
    assert [row[0] for row in shown["data"]] == LABELS


def test_the_classic_model_is_trained_and_scored_for_real(ran):
    rows = list(csv.DictReader(TRAIN.open()))
    pipeline, _ = fit("tfidf-logreg", [r["user"] for r in rows], [r["expected"] for r in rows])
    predicted = pipeline.predict(texts_column([p["user"] for p in PROMPTS]))
    correct = sum(a == p["expected"] for a, p in zip(predicted, PROMPTS, strict=True))
    metrics = ran["runs"]["sklearn"].data.metrics
    assert metrics["accuracy"] == correct / 5
    assert metrics["n_train"] == len(rows) and 0 < metrics["train_time_s"] < 30
    assert "cv_accuracy" in metrics and "train_accuracy" in metrics
    # measured like an LLM call; tokens do not apply: absent, not 0; cost from the hour rate
    assert metrics["n_timed"] == 5 and metrics["latency_p50_s"] > 0
    assert "ttft_p50_s" not in metrics  # answered whole: no first token to time
    assert "total_tokens" not in metrics and metrics["n_usage_missing"] == 5
    assert metrics["estimated_cost_usd"] == 0
    calls = artifact(ran, "sklearn", "calls.json")
    column = calls["columns"].index("input_tokens")
    assert {row[column] for row in calls["data"]} == {None}
    assert "tokens not reported" not in ran["output"]


def test_the_table_and_report_compare_them(ran):
    assert "Accuracy" in ran["output"] and "60.0%" in ran["output"]
    report = (ran["out"] / "report.md").read_text()
    assert "## Per label: tfidf-logreg" in report and "## Per label: llama3.1" in report
    # the headline numbers of every variant, as compare shows them
    headline = report.split("## Classification")[1].split("##")[0]
    assert "| Model | Accuracy | Accuracy 95% CI | Macro F1 | Unparsed |" in headline
    assert "| llama3.1 | 60.0% |" in headline
    assert (ran["out"] / "confusion_0.png").exists() and (ran["out"] / "confusion_1.png").exists()
    assert "beats the classic model" in report or "beat the classic model" in report
    assert "Per 1,000 predictions:" in report
    details = report.split("## Distribution and details")[1].split("##")[0]
    classic = next(line for line in details.splitlines() if line.startswith("| tfidf-logreg |"))
    assert classic.rstrip(" |").endswith("| n/a")  # no token count: tokens do not apply
    html = (ran["out"] / "report.html").read_text()
    assert "Per label: tfidf-logreg" in html


@pytest.fixture
def at_store(ran):
    """MLflow's global tracking URI at this module's store, for models:/ URIs; unset after."""
    mlflow.set_tracking_uri(ran["uri"])
    yield
    mlflow.set_tracking_uri(None)  # as in a fresh process: no later test reads this store


def test_registered_as_a_real_sklearn_model(ran, at_store):
    texts = ["I was charged twice this month", "the app crashes on start"]
    model = mlflow.sklearn.load_model("models:/sklearn_ticket_classify/1")
    assert set(model.predict(texts_column(texts))) <= set(LABELS)
    served = mlflow.pyfunc.load_model("models:/sklearn_ticket_classify/1")
    assert list(served.predict(texts)) == list(model.predict(texts_column(texts)))
    mv = ran["client"].get_model_version("sklearn_ticket_classify", "1")
    assert mv.tags["llmflow.provider"] == "sklearn" and "metric.accuracy" in mv.tags
    # trained on "BILLING ", "Billing" and "billing": one class each, spelt as `labels:` has it
    assert sorted(model.classes_) == sorted(LABELS)


def test_the_registered_model_answers_each_row_in_every_form_mlflow_serves(ran, at_store):
    """A signature of one string column; 3 texts in give 3 predictions, whatever the form, as
    `mlflow models serve` parses each request (its own scoring_server code, no server)."""
    from mlflow.pyfunc import scoring_server

    served = mlflow.pyfunc.load_model("models:/sklearn_ticket_classify/1")
    schema = served.metadata.get_input_schema()
    assert [(c.type.name, c.name) for c in schema.inputs] == [("string", None)]
    texts = ["I was charged twice this month", "the app crashes on start", "I cannot log in"]
    expected = list(
        mlflow.sklearn.load_model("models:/sklearn_ticket_classify/1").predict(texts_column(texts))
    )
    assert len(set(expected)) == 3  # three different answers: rows are not mixed up
    assert list(served.predict(pd.DataFrame({"text": texts}))) == expected
    assert list(served.predict(texts)) == expected
    requests = [
        {"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}},
        {"dataframe_records": [{"text": t} for t in texts]},
        {"inputs": texts},
        {"instances": texts},
    ]
    for request in requests:
        answer = scoring_server.invocations(json.dumps(request), "application/json", served, schema)
        assert answer.status == 200, answer.response
        assert json.loads(answer.response) == {"predictions": expected}, request
    csv_answer = scoring_server.invocations("text\n" + "\n".join(texts), "text/csv", served, schema)
    assert json.loads(csv_answer.response) == {"predictions": expected}


def test_promote_gates_on_accuracy_for_both_kinds(ran):
    accuracy = ran["runs"]["sklearn"].data.metrics["accuracy"]
    uri = ran["uri"]
    gate = ["--require", "accuracy>=0.8", "--tracking-uri", uri]
    classic = CliRunner().invoke(
        app, ["promote", "sklearn_ticket_classify", "-v", "1", "--to", "staging", *gate]
    )
    assert classic.exit_code == (0 if accuracy >= 0.8 else 1), classic.output
    llm = CliRunner().invoke(
        app, ["promote", "llm_ollama_classify", "-v", "1", "--to", "staging", *gate]
    )
    assert llm.exit_code == 1 and "accuracy>=0.8: accuracy is 0.6" in llm.stderr


def test_a_model_trained_in_the_run_never_answers_from_the_cache(tmp_path: Path, fake_ollama):
    models = [
        {"provider": "sklearn", "model": "tfidf-nb", "train": str(TRAIN)},
        {"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url},
    ]
    path = write_experiment(tmp_path, models, task="classify", labels=LABELS, prompts=PROMPTS)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for _ in range(2):
        result = CliRunner().invoke(app, ["run", str(path), "--tracking-uri", uri, "--cache"])
        assert result.exit_code == 0, result.output
    shown = CliRunner().invoke(
        app, ["compare", "-e", "provider-comparison", "--tracking-uri", uri, "-f", "json"]
    )
    assert shown.exit_code == 0, shown.output
    cached = {row["provider"]: row["n_cached"] for row in json.loads(shown.stdout)}
    # the key cannot see the training file: a retrained model must predict again
    assert cached == {"sklearn": 0, "ollama": len(PROMPTS)}


def test_a_trained_model_that_was_not_logged_is_not_registered(tmp_path: Path):
    models = [{"provider": "sklearn", "model": "tfidf-nb", "train": str(TRAIN)}]
    path = write_experiment(tmp_path, models, task="classify", labels=LABELS, prompts=PROMPTS)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert CliRunner().invoke(app, ["run", str(path), "--tracking-uri", uri]).exit_code == 0
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("provider-comparison")
    (run,) = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`llmflow.kind` = 'variant'"
    )
    client.delete_tag(run.info.run_id, "llmflow.model_uri")  # as when logging it failed
    result = CliRunner().invoke(app, ["register", "--run", run.info.run_id, "--tracking-uri", uri])
    assert result.exit_code == 1, result.output
    assert "its trained sklearn model was not logged" in result.output
    assert client.search_registered_models() == []  # no pyfunc stand-in that cannot predict
