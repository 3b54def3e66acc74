"""`provider: sklearn`: a traditional text classifier, answering each test case as one call,
like an LLM: one prediction per call (the answer is the label; tokens do not apply, so usage is
absent, never 0).

The provider only predicts. It is trained when the run starts, before its first call, by
sklearn_training.py (scikit-learn itself is imported only then); the fitted pipeline is logged
on its variant run as an MLflow sklearn model by tracking/sklearn_model.py, which registration
then uses. The training labels are the task's `labels:` as the file spells them ("BILLING " and
"Billing" are `billing`), as the test cases' are.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ..errors import ConfigError, ProviderError
from ..types import Delta, GenerationSettings, Message
from .spec import SKLEARN

TEXT_COLUMN = 0  # the text is the first (only) column of the input, by position


def texts_column(texts: Sequence[str]) -> Any:
    """The texts as the pipeline reads them: one row each, one column (no feature names, so
    that a DataFrame's column may be named anything)."""
    import numpy as np

    column = np.empty((len(texts), 1), dtype=object)
    column[:, 0] = list(texts)
    return column


class SklearnProvider:
    """Predicts one text per call with `pipeline`, which sklearn_training.train fits from the
    entry's training file before the first call."""

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

        if (problem := SKLEARN.entry_problem(model, {"train": train})) is not None:
            raise ConfigError(problem)
        self.model = model
        self.train_path = train
        self.labels = list(labels) if labels else None
        self.pipeline: Any = None  # fitted by sklearn_training.train
        self.training: dict[str, float] = {}  # the training's metrics (cv_accuracy, ...)
        self.stop = threading.Event()  # set when closed: a training still running ends

    def __getstate__(self) -> dict[str, Any]:
        """The trained provider crosses to the trace writer, which logs it: without its event."""
        return {k: v for k, v in self.__dict__.items() if k != "stop"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.stop = threading.Event()

    async def check(self) -> None:
        return None  # nothing to reach; the training before the first call is its check

    async def stream(
        self, messages: tuple[Message, ...], settings: GenerationSettings
    ) -> AsyncIterator[Delta]:
        if self.pipeline is None:
            raise ProviderError("sklearn: the model was not trained (sklearn_training.train)")
        text = next(m.content for m in reversed(messages) if m.role == "user")
        label = str(self.pipeline.predict(texts_column([text]))[0])
        yield Delta(text=label, finish_reason="stop", model_version=self.model)

    async def aclose(self) -> None:
        self.stop.set()  # a training still running ends at its next stage
