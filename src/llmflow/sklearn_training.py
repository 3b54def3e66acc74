"""Training the traditional text classifier of `provider: sklearn`, within bounds, when the
run starts (provider_opening.py); the provider itself only predicts.

- Memory: the texts are hashed (words and bigrams into N_FEATURES columns), not counted into a
  vocabulary. With a vocabulary, a 200,000-row file kept every distinct bigram: 6.4 GB at the
  peak and a 1.1 GB logged model. Hashed, the features take N_FEATURES columns and the model
  about 8 bytes x N_FEATURES x labels (8 MB for 4 labels), whatever the file holds.
- Input: the pipeline reads the first column of a 2-D input (a DataFrame of one string column,
  whatever its name, or rows of one text), as MLflow's pyfunc hands over every form it serves:
  a DataFrame of 3 texts, a list of 3, `dataframe_split`, `dataframe_records`, `inputs`,
  `instances` or a CSV each give 3 predictions. A plain list passed to the vectorizer itself
  would be read as documents; a named column would make pyfunc refuse a list of texts.
- Progress and stop: the fit runs in stages (hashing, fitting, each cross-validation fold);
  past LARGE_TRAINING_ROWS each stage is said as it starts, and a stop asked meanwhile ends the
  training at the next stage (Stopped).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .config.training import load_training
from .providers.sklearn_model import TEXT_COLUMN, SklearnProvider, texts_column
from .providers.spec import SKLEARN_PIPELINES

PIPELINES = SKLEARN_PIPELINES
N_FEATURES = 2**18
CV_FOLDS = 5
LARGE_TRAINING_ROWS = 10_000  # from here on, each stage of the training is said


class Stopped(Exception):
    """The training was asked to stop (a stop signal during the run's start)."""


def _hashing() -> Any:
    """A column of texts -> hashed counts of words and bigrams (stateless: nothing stored)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import HashingVectorizer

    counts = HashingVectorizer(
        n_features=N_FEATURES, ngram_range=(1, 2), alternate_sign=False, norm=None
    )
    return ColumnTransformer([("hashed", counts, TEXT_COLUMN)])


def _classifier(name: str) -> Any:
    """The hashed columns the training rows use (the others would cost the logistic
    regression's solver 5 s on 240 rows, for weights of 0), their TF-IDF weights, then the
    named classifier: a fresh, unfitted pipeline."""
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    classifiers = {
        "tfidf-logreg": lambda: LogisticRegression(max_iter=1000),
        "tfidf-linearsvc": lambda: LinearSVC(),
        "tfidf-nb": lambda: MultinomialNB(),
    }
    return Pipeline(
        [
            ("used", VarianceThreshold()),
            ("tfidf", TfidfTransformer(sublinear_tf=True)),
            ("clf", classifiers[name]()),
        ]
    )


def fit(
    name: str,
    texts: Sequence[str],
    labels: Sequence[str],
    say: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> tuple[Any, dict[str, float]]:
    """The fitted pipeline (a column of texts -> labels) and its training metrics:
    train_time_s (the fit on every row), n_train, train_accuracy (on the training rows) and
    cv_accuracy (stratified k-fold, when every label has at least two rows). `say` hears each
    stage of a large training; `stop`, once set, ends it at the next stage (Stopped)."""
    from sklearn.pipeline import Pipeline

    stages = _Stages(name, len(texts), say, stop)
    start = time.perf_counter()
    stages.begin(f"training on {len(texts):,} rows: hashing the texts")
    hashing = _hashing()
    counts = hashing.fit_transform(texts_column(texts))
    stages.begin("fitting the classifier")
    classifier = _classifier(name).fit(counts, list(labels))
    metrics = {
        "train_time_s": time.perf_counter() - start,
        "n_train": float(len(texts)),
        "train_accuracy": float(classifier.score(counts, list(labels))),
    }
    if (cv := _cv_accuracy(name, counts, labels, stages)) is not None:
        metrics["cv_accuracy"] = cv
    stages.say(f"trained in {time.perf_counter() - start:.1f} s")
    return Pipeline([("text", hashing), *classifier.steps]), metrics


def _cv_accuracy(name: str, counts: Any, labels: Sequence[str], stages: _Stages) -> float | None:
    """The mean accuracy over stratified folds (the hashing is stateless: done once)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    folds = min(CV_FOLDS, min(labels.count(label) for label in set(labels)))
    if folds < 2:
        return None
    target = np.asarray(labels)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    scores = []
    for index, (train, test) in enumerate(splitter.split(counts, target), start=1):
        stages.begin(f"cross-validation, fold {index} of {folds}")
        fold = _classifier(name).fit(counts[train], target[train])
        scores.append(fold.score(counts[test], target[test]))
    return float(np.mean(scores))


class _Stages:
    """Says each stage of a large training, and stops it between stages when asked."""

    def __init__(
        self,
        name: str,
        rows: int,
        say: Callable[[str], None] | None,
        stop: threading.Event | None,
    ) -> None:
        self._name = name
        self._say = say if say is not None and rows >= LARGE_TRAINING_ROWS else None
        self._stop = stop
        self._start = time.perf_counter()

    def begin(self, stage: str) -> None:
        if self._stop is not None and self._stop.is_set():
            raise Stopped(f"sklearn {self._name}: training stopped before {stage}")
        elapsed = time.perf_counter() - self._start
        self.say(stage if elapsed < 1 else f"{stage} ({elapsed:.0f} s so far)")

    def say(self, text: str) -> None:
        if self._say is not None:
            self._say(f"sklearn {self._name}: {text}")


async def train(provider: SklearnProvider) -> None:
    """Read the provider's training file and fit its pipeline, before its first call. The fit
    runs in a thread of its own: a stop signal during it ends the wait at once (asyncio.run
    would wait for a thread of its default executor), and the training at its next stage."""
    path = provider.train_path or ""  # never empty: the spec's entry_problem refused that
    data = load_training(Path(path), path, provider.labels, "train")
    provider.pipeline, provider.training = await _in_own_thread(
        lambda: fit(provider.model, data.texts, data.labels, say=_say, stop=provider.stop),
        provider.stop,
    )


T = TypeVar("T")


async def _in_own_thread(work: Callable[[], T], stop: threading.Event) -> T:
    """`work()` in a daemon thread of its own. Cancelled (a stop signal), the wait ends at once
    and `stop` is set; the thread ends at its next stage, or with the process."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if done.done():  # cancelled meanwhile
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(value)

    def run() -> None:
        value, error = None, None
        try:
            value = work()
        except Stopped:
            return  # stopped because nobody waits any more
        except BaseException as e:  # noqa: BLE001 - raised again in the waiting coroutine
            error = e
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=run, name="llmflow-sklearn-training", daemon=True).start()
    try:
        return await done
    finally:
        stop.set()


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
