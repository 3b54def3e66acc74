"""task: classify without MLflow: answer -> label, the metrics (checked against scikit-learn's),
the training, and the experiment file's mistakes (one line naming the field, exit 2, no run)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support
from typer.testing import CliRunner

from llmflow.cli import app
from llmflow.config import load_experiment
from llmflow.config.labels import instruction
from llmflow.errors import ConfigError
from llmflow.providers.sklearn_model import texts_column
from llmflow.scoring import classification, wilson_interval
from llmflow.scoring.labels import to_label
from llmflow.sklearn_training import PIPELINES, fit
from tests.helpers import write_experiment

LABELS = ["billing", "technical", "account", "other"]
EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ("billing", "billing"),
        ("  **Technical**.\n", "technical"),
        ('"ACCOUNT"', "account"),
        ("The label is: account. Not billing.", "account"),  # the first label named
        ("It is about billing, maybe technical", "billing"),
        ("accounts payable", "unparsed"),  # a whole word only
        ("I don't know", "unparsed"),
        ("", "unparsed"),
    ],
)
def test_answer_to_label(answer: str, label: str):
    assert to_label(answer, LABELS) == label


@pytest.mark.parametrize(
    ("answer", "labels", "label"),
    [
        # the label named earliest wins, whatever the order of `labels`
        ("Not billing: a technical fault.", ["technical", "billing"], "billing"),
        # two named at the same place: the longer, which the answer names in full
        ("This is a billing dispute.", ["billing", "billing dispute"], "billing dispute"),
        ("This is a billing dispute.", ["billing dispute", "billing"], "billing dispute"),
        ("This is a billing question.", ["billing", "billing dispute"], "billing"),
        # an NFD answer (e + combining acute) and an NFC label are one text, and the reverse
        ("Le cafe\u0301 est froid", ["café", "thé"], "café"),
        ("Cafe\u0301", ["café", "thé"], "café"),
        ("It is about the café", ["cafe\u0301", "thé"], "cafe\u0301"),
        # scripts without spaces between words: a label inside a sentence
        ("这是一个账单问题。", ["技术", "账单"], "账单"),
        ("我认为是技术问题,不是账单", ["账单", "技术"], "技术"),
        ("これは請求の問題です", ["技術", "請求"], "請求"),
        # a spaced-script label is still a whole word only
        ("accountsbilling", ["account", "billing"], "unparsed"),
        ("账单billing", ["billing", "technical"], "billing"),
    ],
)
def test_answer_to_label_anywhere(answer: str, labels: list[str], label: str):
    assert to_label(answer, labels) == label


def test_metrics_agree_with_scikit_learn():
    expected = ("billing", "billing", "technical", "account", "other", "other", "account")
    predicted = ("billing", "technical", "technical", "unparsed", "other", "billing", "account")
    found = classification.Classified(tuple(LABELS), expected, predicted)
    metrics = classification.metrics(found)
    assert metrics["accuracy"] == 4 / 7
    assert (metrics["accuracy_ci_low"], metrics["accuracy_ci_high"]) == wilson_interval(4, 7)
    assert metrics["n_unparsed"] == 1
    labels = sorted(set(expected) | (set(predicted) - {"unparsed"}))
    assert metrics["macro_f1"] == pytest.approx(
        f1_score(expected, predicted, labels=labels, average="macro", zero_division=0)
    )
    p, r, f, s = precision_recall_fscore_support(
        expected, predicted, labels=LABELS, zero_division=0
    )
    undefined_p, undefined_r, _, _ = precision_recall_fscore_support(
        expected, predicted, labels=LABELS, zero_division=math.nan
    )
    rows = classification.per_label(found)

    def unknown_as_nan(values):
        return [math.nan if v is None else v for v in values]

    assert unknown_as_nan(row["precision"] for row in rows) == pytest.approx(
        list(undefined_p), nan_ok=True
    )
    assert unknown_as_nan(row["recall"] for row in rows) == pytest.approx(
        list(undefined_r), nan_ok=True
    )
    assert [row["f1"] for row in rows] == pytest.approx(list(f))
    assert [row["support"] for row in rows] == list(s)
    matrix = classification.confusion(found)
    assert matrix[2] == [0, 0, 1, 0, 1]  # account: one right, one unparsed


def test_a_precision_or_recall_without_cases_is_unknown_not_zero():
    found = classification.Classified(("a", "b", "c"), ("a", "a", "b"), ("a", "b", "a"))
    by_label = {row["label"]: row for row in classification.per_label(found)}
    assert by_label["c"]["precision"] is None and by_label["c"]["recall"] is None
    assert by_label["c"]["f1"] == 0.0 and by_label["c"]["support"] == 0
    assert by_label["a"]["precision"] == 0.5 and by_label["a"]["recall"] == 0.5


@pytest.mark.parametrize("name", PIPELINES)
def test_each_pipeline_trains_on_the_example_data(name: str):
    rows = list(csv.DictReader((EXAMPLES / "data" / "tickets_train.csv").open()))
    pipeline, metrics = fit(name, [r["user"] for r in rows], [r["expected"] for r in rows])
    assert metrics["n_train"] == len(rows) >= 200
    assert 0 < metrics["train_time_s"] < 30 and 0 < metrics["cv_accuracy"] <= 1
    assert set(pipeline.predict(texts_column(["I was charged twice for my plan"]))) <= set(LABELS)


def test_the_example_data_set():
    test = list(csv.DictReader((EXAMPLES / "data" / "tickets_test.csv").open()))
    train = list(csv.DictReader((EXAMPLES / "data" / "tickets_train.csv").open()))
    assert 60 <= len(test) <= 100 and len(train) + len(test) >= 300
    assert {r["expected"] for r in test} == {r["expected"] for r in train} == set(LABELS)
    assert not {r["user"] for r in test} & {r["user"] for r in train}
    loaded = load_experiment(EXAMPLES / "classify.yaml")
    assert loaded.config.labels == LABELS and len(loaded.prompts) == len(test)
    assert all(p.system == instruction(LABELS) for p in loaded.prompts)


def classify_file(tmp_path: Path, train_rows=None, prompts=None, **entry) -> Path:
    rows = (
        train_rows
        if train_rows is not None
        else [("charged twice", "billing")] * 2 + [("app crashes", "technical")] * 2
    )
    with (tmp_path / "train.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user", "expected"])
        writer.writerows(rows)
    model = {"provider": "sklearn", "model": "tfidf-logreg", "train": "train.csv", **entry}
    model = {k: v for k, v in model.items() if v is not None}
    prompts = prompts or [{"id": "a", "user": "refund please", "expected": "billing"}]
    return write_experiment(tmp_path, [model], task="classify", labels=LABELS, prompts=prompts)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train": None}, "compare.yaml: models[0].train: is required for provider sklearn"),
        ({"model": "forest"}, "compare.yaml: models[0].model: must be one of tfidf-logreg"),
        ({"train_rows": []}, "compare.yaml: models[0].train: train.csv has no rows"),
        (
            {"prompts": [{"id": "a", "user": "hi", "expected": "sales"}]},
            "compare.yaml: [0].expected: 'sales' is not one of labels (billing, technical",
        ),
        (
            {"prompts": [{"id": "a", "user": "hi"}]},
            "compare.yaml: [0].expected: is required for task classify",
        ),
        (
            {"train_rows": [("x", "billing"), ("y", "refunds")]},
            "train.csv: [1].expected: 'refunds' is not one of labels",
        ),
        ({"train_rows": [("x", "billing")]}, "must hold at least two different labels"),
    ],
)
def test_file_mistakes_are_one_line_exit_2_and_no_run(tmp_path: Path, change, message):
    path = classify_file(tmp_path, **change)
    with pytest.raises(ConfigError, match=None) as raised:
        load_experiment(path)
    assert message in str(raised.value)
    result = CliRunner().invoke(
        app, ["run", str(path), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_a_label_in_a_prompts_file_names_the_file(tmp_path: Path):
    (tmp_path / "test.csv").write_text("id,user,expected\na,hi,billing\nb,yo,Sales\n")
    path = classify_file(tmp_path)
    text = path.read_text().replace(
        "prompts:\n- id: a\n  user: refund please\n  expected: billing\n", "prompts: test.csv\n"
    )
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"test.csv: \[1\].expected: 'Sales' is not one of"):
        load_experiment(path)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"task": "classify"}, "labels: task classify needs a list of two or more"),
        ({"task": "classify", "labels": ["a", "b", "A"]}, "labels: 'A' appears twice"),
        ({"task": "classify", "labels": ["a", "Unparsed"]}, "labels: 'Unparsed' cannot be a"),
        ({"task": "chat", "labels": LABELS}, "labels: only applies to task classify"),
    ],
)
def test_labels_field(tmp_path: Path, fields, message):
    model = {"provider": "ollama", "model": "m", "base_url": "http://127.0.0.1:9"}
    prompts = [{"id": "a", "user": "hi", "expected": "billing"}]
    path = write_experiment(tmp_path, [model], prompts=prompts, **fields)
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)


def test_sklearn_needs_task_classify(tmp_path: Path):
    model = {"provider": "sklearn", "model": "tfidf-nb", "train": "t.csv"}
    path = write_experiment(tmp_path, [model])
    with pytest.raises(ConfigError, match=r"models\[0\].provider: sklearn needs task: classify"):
        load_experiment(path)


def test_train_only_applies_to_sklearn(tmp_path: Path):
    model = {"provider": "ollama", "model": "m", "train": "t.csv"}
    path = write_experiment(tmp_path, [model])
    with pytest.raises(ConfigError, match=r"models\[0\].train: only applies to provider sklearn"):
        load_experiment(path)


def test_a_prompt_system_overrides_the_instruction(tmp_path: Path):
    prompts = [
        {"id": "a", "user": "hi", "expected": "other", "system": "Route it."},
        {"id": "b", "user": "yo", "expected": "Billing"},
    ]
    loaded = load_experiment(classify_file(tmp_path, prompts=prompts))
    assert [p.system for p in loaded.prompts] == ["Route it.", instruction(LABELS)]
    assert loaded.prompts[1].expected == "billing"  # spelt as in labels
    assert Path(loaded.config.models[0].train).is_absolute()
