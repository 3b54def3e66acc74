"""`provider: sklearn`: a traditional text classifier, trained when the run starts, answering
each test case as one call, like an LLM.

Everything llmflow knows about scikit-learn is here and in sklearn_training.py (the pipelines,
training within bounds; scikit-learn itself is imported only when a model is built): one
prediction per call (the answer is the label; tokens do not apply, so usage is absent, never
0), and logging the fitted pipeline as an MLflow sklearn model, with its signature (one string
column of texts), on the variant run, which registration then uses.

The training labels are the task's `labels:` as the file spells them ("BILLING " and "Billing"
are `billing`), as the test cases' are. The training runs in a thread of its own: a stop signal
during it ends the wait at once (asyncio.run would wait for a thread of its default executor),
and the training itself at its next stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError, ProviderError
from ..types import Delta, GenerationSettings, Message
from .sklearn_training import PIPELINES, Stopped, fit, texts_column
from .spec import SKLEARN

__all__ = ["MODEL_URI_TAG", "PIPELINES", "SklearnProvider", "entry_problem", "fit"]

MODEL_URI_TAG = "llmflow.model_uri"  # where the variant run's logged sklearn model is


def entry_problem(provider: str, model: str | None, train: str | None) -> str | None:
    """What is wrong with a model entry's sklearn fields, as `field: message`; None if fine."""
    if provider != "sklearn":  # `train:` elsewhere: the spec's own_options refuse it
        return None
    if train is None:
        return "train: is required for provider sklearn (a file of user, expected rows)"
    if model not in PIPELINES:
        return f"model: must be one of {', '.join(PIPELINES)} for provider sklearn"
    return None


class SklearnProvider:
    """Trains in `check()` (before the first call), then predicts one text per call."""

    name = "sklearn"
    exclusive_key = None

    def __init__(
        self,
        model: str,
        train: str | None = None,
        timeout_s: float = 120.0,
        labels: Sequence[str] | None = None,
        **_: Any,
    ) -> None:
        """`labels`: the task's, as its file spells them (training labels are mapped to them)."""
        import sklearn  # noqa: F401 - a missing extra is reported now, before the run

        if (problem := entry_problem(self.name, model, train)) is not None:
            raise ConfigError(problem)
        self.model = model
        self.train_path = train
        self.labels = list(labels) if labels else None
        self.pipeline: Any = None
        self.training: dict[str, float] = {}
        self._stop = threading.Event()

    def __getstate__(self) -> dict[str, Any]:
        """The trained provider crosses to the trace writer, which logs it: without its event."""
        return {k: v for k, v in self.__dict__.items() if k != "_stop"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._stop = threading.Event()

    async def check(self) -> None:
        from ..classify import load_training

        train = self.train_path or ""  # never empty: entry_problem refused that
        data = load_training(Path(train), train, self.labels, "train")
        self.pipeline, self.training = await _in_own_thread(
            lambda: fit(self.model, data.texts, data.labels, say=_say, stop=self._stop),
            self._stop,
        )

    async def stream(
        self, messages: tuple[Message, ...], settings: GenerationSettings
    ) -> AsyncIterator[Delta]:
        if self.pipeline is None:
            raise ProviderError("sklearn: the model was not trained (check() was not called)")
        text = next(m.content for m in reversed(messages) if m.role == "user")
        label = str(self.pipeline.predict(texts_column([text]))[0])
        yield Delta(text=label, finish_reason="stop", model_version=self.model)

    async def aclose(self) -> None:
        self._stop.set()  # a training still running ends at its next stage

    def log_to_run(self, client: Any, run_id: str) -> None:
        """Log the training metrics and the fitted pipeline, as an MLflow sklearn model, on the
        (finished) variant run; the model's URI goes in the tag MODEL_URI_TAG."""
        import contextlib
        import io
        import warnings

        import mlflow
        import sklearn
        from mlflow.entities import Metric
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, Schema

        from ..tracking.fluent import fluent_store

        if self.pipeline is None:
            return
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in self.training.items()]
        client.log_batch(run_id, metrics=metrics)
        (requirement,) = SKLEARN.pip_requirements
        requirements = [f"{requirement}=={sklearn.__version__}"]
        # one string column, read by position: every input form pyfunc serves fits it
        signature = ModelSignature(
            inputs=Schema([ColSpec("string")]), outputs=Schema([ColSpec("string")])
        )
        status = client.get_run(run_id).info.status
        # MLflow prints hints on stderr; the run reports in its own words
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            try:
                with fluent_store(client.tracking_uri), mlflow.start_run(run_id=run_id):
                    info = mlflow.sklearn.log_model(
                        self.pipeline,
                        name="model",
                        pip_requirements=requirements,
                        signature=signature,
                    )
            finally:  # start_run(run_id=...) ended the run FINISHED: it keeps its own status
                client.set_terminated(run_id, status=status)
        client.set_tag(run_id, MODEL_URI_TAG, info.model_uri)


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
