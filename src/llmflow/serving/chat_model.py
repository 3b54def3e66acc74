"""The pyfunc behind every registered llmflow model.

A plain `mlflow.pyfunc.PythonModel`, chosen over MLflow's ResponsesAgent on purpose: the seed's
users call `predict("a prompt")` or a DataFrame column of prompts and want strings back, and
`mlflow models serve` then takes `{"inputs": [...]}` without an agent request schema. Chat input
(a list of {"role", "content"} messages) is accepted too.

predict() answers through the same provider, retry layer and settings as `llmflow run`.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import mlflow.pyfunc

from ..config import ModelEntry
from ..config.environment import resolve_connection
from ..errors import LlmflowError
from ..plan import Call, Case, Variant, settings_of
from ..pricing import Pricer
from ..providers import create_provider
from ..redact import redact_text
from ..runner import Runner
from ..types import Message

MAX_PARALLEL = 8
T = TypeVar("T")


class PartialAnswers(UserWarning):
    """Some prompts of a batch failed; `failures` maps each one's index to its error."""

    def __init__(self, message: str, failures: dict[int, str]) -> None:
        super().__init__(message)
        self.failures = failures


class ChatModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        config = dict(context.model_config or {})
        self.entry = ModelEntry.model_validate(config["entry"])
        self.system: str | None = config.get("system")
        # fail at load time, not at the first request, when the key is missing
        self.connection = resolve_connection(self.entry, "the registered model's environment")

    # no type hints here on purpose: MLflow would try to derive an input schema from them
    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        """One answer per prompt or chat, in input order.

        A prompt that fails (after the retries of its model entry) gets None in its place and
        the others keep their answers: a `PartialAnswers` warning names the failed ones, with
        their errors in `.failures`. Only when every prompt fails does this raise. Works inside
        a running event loop too (Jupyter, FastAPI), blocking it until the answers are in.
        """
        conversations = [self._messages(item) for item in to_items(model_input)]
        return settle(run_sync(self._answer(conversations)))

    def _messages(self, item: str | list[dict[str, str]]) -> tuple[Message, ...]:
        if isinstance(item, str):
            turns = [Message("user", item)]
        else:
            turns = [Message(m["role"], m["content"]) for m in item]
        has_system = any(m.role == "system" for m in turns)
        prefix = (Message("system", self.system),) if self.system and not has_system else ()
        return prefix + tuple(turns)

    async def _answer(self, conversations: list[tuple[Message, ...]]) -> list[str | Exception]:
        provider = create_provider(
            self.entry.provider, **self.entry.provider_options(self.connection)
        )
        variant = Variant(id="serving", entry=self.entry, settings=settings_of(self.entry))
        runner = Runner(
            {variant.id: provider},
            {variant.id: Pricer(self.entry)},
            concurrency=MAX_PARALLEL,
            on_record=lambda record: None,
        )
        slots = asyncio.Semaphore(MAX_PARALLEL)

        async def one(index: int, messages: tuple[Message, ...]) -> str | Exception:
            async with slots:
                record = await runner.execute(Call(variant, Case(f"input-{index}", messages), 0))
            if not record.ok or record.completion is None:
                return LlmflowError(redact_text(f"{record.error_type}: {record.error_message}"))
            return record.completion.text

        try:
            return list(await asyncio.gather(*(one(i, m) for i, m in enumerate(conversations))))
        finally:
            await provider.aclose()


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, also where an event loop is already running in this thread (a notebook, an
    async web handler), where asyncio.run refuses: there, on a loop of its own in a worker."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no running loop: the usual case
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmflow-predict") as worker:
        return worker.submit(asyncio.run, coroutine).result()


def settle(results: list[str | Exception]) -> list[str | None]:
    """The answers, None where a prompt failed; raises only when every prompt failed."""
    failures = {i: str(r) for i, r in enumerate(results) if isinstance(r, Exception)}
    if not failures:
        return list(results)
    listed = "; ".join(f"input[{i}]: {error}" for i, error in list(failures.items())[:5])
    if len(failures) > 5:
        listed += f"; and {len(failures) - 5} more"
    if len(failures) == len(results):
        raise LlmflowError(f"every prompt failed: {listed}")
    warnings.warn(
        PartialAnswers(
            f"{len(failures)} of {len(results)} prompts failed, their answers are None: {listed}",
            failures,
        ),
        stacklevel=2,
    )
    return [None if isinstance(r, Exception) else r for r in results]


def to_items(model_input: Any) -> list[str | list[dict[str, str]]]:
    """Normalize what pyfunc callers and `mlflow models serve` send into prompts or chats."""
    import pandas as pd

    if isinstance(model_input, pd.DataFrame):
        column = "prompt" if "prompt" in model_input.columns else model_input.columns[0]
        return [_item(value) for value in model_input[column].tolist()]
    if isinstance(model_input, pd.Series):
        return [_item(value) for value in model_input.tolist()]
    if hasattr(model_input, "tolist") and not isinstance(model_input, (str, dict)):
        model_input = model_input.tolist()
    if isinstance(model_input, dict) and "messages" in model_input:
        return [list(model_input["messages"])]
    if isinstance(model_input, (str, dict)):
        return [_item(model_input)]
    items = list(model_input)
    if items and all(isinstance(i, dict) and "role" in i for i in items):
        return [items]  # one chat given as a list of messages
    return [_item(value) for value in items]


def _item(value: Any) -> str | list[dict[str, str]]:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "messages" in value:
            return list(value["messages"])
        if "prompt" in value:
            return str(value["prompt"])
        if "role" in value:
            return [value]
    if isinstance(value, list):
        return value
    raise LlmflowError(
        f"cannot read a prompt from {type(value).__name__}: send strings or messages"
    )
