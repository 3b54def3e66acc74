"""The pyfunc behind every registered llmflow model.

A plain `mlflow.pyfunc.PythonModel`, chosen over MLflow's ResponsesAgent on purpose: the seed's
users call `predict("a prompt")` or a DataFrame column of prompts and want strings back, and
`mlflow models serve` then takes `{"inputs": [...]}` without an agent request schema. Chat input
(a list of {"role", "content"} messages) is accepted too.

predict() answers through the same provider, retry layer and settings as `llmflow run`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import mlflow.pyfunc

from ..config import ModelEntry, resolve_connection
from ..errors import LlmflowError
from ..plan import Call, Case, Variant, settings_of
from ..pricing import Pricer
from ..providers import create_provider
from ..runner import Runner
from ..types import Message

MAX_PARALLEL = 8


class ChatModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        config = dict(context.model_config or {})
        self.entry = ModelEntry.model_validate(config["entry"])
        self.system: str | None = config.get("system")
        # fail at load time, not at the first request, when the key is missing
        self.connection = resolve_connection(self.entry, "the registered model's environment")

    # no type hints here on purpose: MLflow would try to derive an input schema from them
    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        conversations = [self._messages(item) for item in to_items(model_input)]
        return asyncio.run(self._answer(conversations))

    def _messages(self, item: str | list[dict[str, str]]) -> tuple[Message, ...]:
        if isinstance(item, str):
            turns = [Message("user", item)]
        else:
            turns = [Message(m["role"], m["content"]) for m in item]
        has_system = any(m.role == "system" for m in turns)
        prefix = (Message("system", self.system),) if self.system and not has_system else ()
        return prefix + tuple(turns)

    async def _answer(self, conversations: list[tuple[Message, ...]]) -> list[str]:
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

        async def one(index: int, messages: tuple[Message, ...]) -> str:
            async with slots:
                record = await runner.execute(Call(variant, Case(f"input-{index}", messages), 0))
            if not record.ok or record.completion is None:
                raise LlmflowError(f"{record.error_type}: {record.error_message}")
            return record.completion.text

        try:
            return list(await asyncio.gather(*(one(i, m) for i, m in enumerate(conversations))))
        finally:
            await provider.aclose()


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
