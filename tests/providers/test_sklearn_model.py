"""provider sklearn: its training labels as the task spells them, a model whose size does not
grow with the training file, progress and a stop that acts within seconds (for real:
scikit-learn, and `llmflow run` in a process of its own)."""

from __future__ import annotations

import asyncio
import csv
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from llmflow import sklearn_training
from llmflow.providers.sklearn_model import SklearnProvider, texts_column
from llmflow.sklearn_training import N_FEATURES, Stopped, fit
from tests.helpers import training_rows, write_experiment

LABELS = ("billing", "technical", "account", "other")
ROOT = Path(__file__).resolve().parents[2]


def write_training(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user", "expected"])
        writer.writerows(rows)
    return path


def test_training_labels_are_the_task_labels_as_spelt_there(tmp_path: Path):
    """ "Billing" and "BILLING " are `billing`, as a test case's expected label would be."""
    spellings = {
        "billing": ["Billing", "BILLING ", "billing"],
        "technical": ["Technical", "technical"],
    }
    rows = [
        (f"{text} {i}", spellings[label][i % len(spellings[label])])
        for i in range(12)
        for label, text in (("billing", "charged twice"), ("technical", "app crashes"))
    ]
    train = write_training(tmp_path / "train.csv", rows)
    provider = SklearnProvider("tfidf-logreg", str(train), labels=["billing", "technical"])
    asyncio.run(sklearn_training.train(provider))
    assert list(provider.pipeline.classes_) == ["billing", "technical"]
    assert provider.training["cv_accuracy"] == 1.0
    assert list(provider.pipeline.predict(texts_column(["charged twice again"]))) == ["billing"]


def test_the_model_is_bounded_however_many_words_the_training_file_holds():
    """30,000 rows of fresh words (about 600,000 distinct words and bigrams): a vocabulary
    would keep each, with a weight per label (at 200,000 rows: 6.4 GB, a 1.1 GB model); hashed,
    the model holds at most N_FEATURES columns."""
    rows = training_rows(30_000, LABELS)
    pipeline, _ = fit("tfidf-nb", [t for t, _ in rows], [label for _, label in rows])
    assert pipeline[-1].feature_count_.shape == (len(LABELS), pipeline[-2].idf_.shape[0])
    assert pipeline[-2].idf_.shape[0] <= N_FEATURES
    # a variance per hashed column; a TF-IDF weight and two per label (naive Bayes) per used one
    assert len(pickle.dumps(pipeline)) < 8 * N_FEATURES * (2 + 2 * len(LABELS)) * 1.1


def test_a_large_training_says_each_stage_and_stops_between_them(monkeypatch):
    monkeypatch.setattr(sklearn_training, "LARGE_TRAINING_ROWS", 100)
    rows = training_rows(200, LABELS)
    heard: list[str] = []
    stop = threading.Event()

    def say(text: str) -> None:
        heard.append(text)
        if "fold 2" in text:
            stop.set()

    with pytest.raises(Stopped, match="stopped before cross-validation, fold 3 of 5"):
        fit("tfidf-linearsvc", [t for t, _ in rows], [lb for _, lb in rows], say, stop)
    assert heard[:3] == [
        "sklearn tfidf-linearsvc: training on 200 rows: hashing the texts",
        "sklearn tfidf-linearsvc: fitting the classifier",
        "sklearn tfidf-linearsvc: cross-validation, fold 1 of 5",
    ]
    small: list[str] = []
    fit("tfidf-nb", [t for t, _ in rows[:50]], [lb for _, lb in rows[:50]], small.append)
    assert small == []  # a small training is quick: nothing to say


def test_a_stop_signal_during_training_ends_the_run_within_seconds(tmp_path: Path):
    """SIGTERM while a 20,000-row file trains: `llmflow run` exits 130 at once, the training
    unfinished (before: silence, then the whole training and its 5 folds, then the exit)."""
    write_training(tmp_path / "train.csv", training_rows(20_000, LABELS))
    model = {"provider": "sklearn", "model": "tfidf-logreg", "train": "train.csv"}
    prompts = [{"id": "a", "user": "billing please", "expected": "billing"}]
    path = write_experiment(
        tmp_path, [model], task="classify", labels=list(LABELS), prompts=prompts
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "llmflow.cli", "run", str(path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stderr is not None
        heard = []
        while not heard or ("fitting the classifier" not in heard[-1] and heard[-1]):
            heard.append(process.stderr.readline())
        said = "".join(heard)
        assert "sklearn tfidf-logreg: training on 20,000 rows: hashing the texts" in said, said
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        rest = process.stderr.read()
        assert process.wait(timeout=30) == 130
        assert time.monotonic() - signalled < 10, rest
        assert "trained in" not in rest and "interrupted (SIGTERM)" in rest, rest
    finally:
        process.kill()
        process.wait()
