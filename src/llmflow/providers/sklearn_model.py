"""`provider: sklearn`: a traditional text classifier, trained when the run starts, answering
each test case as one call, like an LLM.

Everything llmflow knows about scikit-learn is here (scikit-learn itself is imported only when
a model is built): the pipelines by name, training with its metrics, one prediction per call
(the answer is the label; tokens do not apply, so usage is absent, never 0), and logging the
fitted pipeline as an MLflow sklearn model on the variant run, which registration then uses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ProviderError
from ..types import Delta, GenerationSettings, Message
from .spec import SKLEARN

PIPELINES = ("tfidf-logreg", "tfidf-linearsvc", "tfidf-nb")
MODEL_URI_TAG = "llmflow.model_uri"  # where the variant run's logged sklearn model is
CV_FOLDS = 5


def entry_problem(provider: str, model: str | None, train: str | None) -> str | None:
    """What is wrong with a model entry's sklearn fields, as `field: message`; None if fine."""
    if provider != "sklearn":  # `train:` elsewhere: the spec's own_options refuse it
        return None
    if train is None:
        return "train: is required for provider sklearn (a file of user, expected rows)"
    if model not in PIPELINES:
        return f"model: must be one of {', '.join(PIPELINES)} for provider sklearn"
    return None


def build_pipeline(name: str) -> Any:
    """A fresh, unfitted pipeline: word and bigram TF-IDF, then the named classifier."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    classifiers = {
        "tfidf-logreg": lambda: LogisticRegression(max_iter=1000),
        "tfidf-linearsvc": lambda: LinearSVC(),
        "tfidf-nb": lambda: MultinomialNB(),
    }
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    return Pipeline([("tfidf", vectorizer), ("clf", classifiers[name]())])


def fit(name: str, texts: list[str], labels: list[str]) -> tuple[Any, dict[str, float]]:
    """The fitted pipeline and its training metrics: train_time_s (the fit on every row),
    n_train, train_accuracy (on the training rows) and cv_accuracy (stratified k-fold, when
    every label has at least two rows)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    pipeline = build_pipeline(name)
    start = time.perf_counter()
    pipeline.fit(texts, labels)
    metrics = {
        "train_time_s": time.perf_counter() - start,
        "n_train": float(len(texts)),
        "train_accuracy": float(pipeline.score(texts, labels)),
    }
    folds = min(CV_FOLDS, min(labels.count(label) for label in set(labels)))
    if folds >= 2:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
        scores = cross_val_score(build_pipeline(name), texts, labels, cv=splitter)
        metrics["cv_accuracy"] = float(scores.mean())
    return pipeline, metrics


class SklearnProvider:
    """Trains in `check()` (before the first call), then predicts one text per call."""

    name = "sklearn"
    exclusive_key = None

    def __init__(
        self, model: str, train: str | None = None, timeout_s: float = 120.0, **_: Any
    ) -> None:
        import sklearn  # noqa: F401 - a missing extra is reported now, before the run

        if (problem := entry_problem(self.name, model, train)) is not None:
            raise ConfigError(problem)
        self.model = model
        self.train_path = train
        self.pipeline: Any = None
        self.training: dict[str, float] = {}

    async def check(self) -> None:
        from ..classify import load_training

        data = load_training(Path(self.train_path), self.train_path, None, "train")
        self.pipeline, self.training = await asyncio.to_thread(
            fit, self.model, list(data.texts), list(data.labels)
        )

    async def stream(
        self, messages: tuple[Message, ...], settings: GenerationSettings
    ) -> AsyncIterator[Delta]:
        if self.pipeline is None:
            raise ProviderError("sklearn: the model was not trained (check() was not called)")
        text = next(m.content for m in reversed(messages) if m.role == "user")
        label = str(self.pipeline.predict([text])[0])
        yield Delta(text=label, finish_reason="stop", model_version=self.model)

    async def aclose(self) -> None:
        return None

    def log_to_run(self, client: Any, run_id: str) -> None:
        """Log the training metrics and the fitted pipeline, as an MLflow sklearn model, on the
        (finished) variant run; the model's URI goes in the tag MODEL_URI_TAG."""
        import contextlib
        import io
        import warnings

        import mlflow
        import sklearn
        from mlflow.entities import Metric

        from ..tracking.fluent import fluent_store

        if self.pipeline is None:
            return
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in self.training.items()]
        client.log_batch(run_id, metrics=metrics)
        (requirement,) = SKLEARN.pip_requirements
        requirements = [f"{requirement}=={sklearn.__version__}"]
        status = client.get_run(run_id).info.status
        # MLflow prints hints on stderr; the run reports in its own words
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            try:
                with fluent_store(client.tracking_uri), mlflow.start_run(run_id=run_id):
                    info = mlflow.sklearn.log_model(
                        self.pipeline, name="model", pip_requirements=requirements
                    )
            finally:  # start_run(run_id=...) ended the run FINISHED: it keeps its own status
                client.set_terminated(run_id, status=status)
        client.set_tag(run_id, MODEL_URI_TAG, info.model_uri)
