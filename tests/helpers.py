"""Small builders shared by the tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from llmflow.providers import collect
from llmflow.types import Completion, GenerationSettings, Message, Timing

PROMPTS = [
    {
        "id": "explain-mlflow",
        "system": "You are a concise assistant.",
        "user": "What does MLflow track?",
    },
    {"id": "latency-tips", "user": "Give three tips to cut LLM latency."},
]


def write_experiment(
    directory: Path, models: list[dict[str, Any]], name: str = "compare.yaml", **fields: Any
) -> Path:
    document = {
        "experiment": "provider-comparison",
        "task": "chat",
        "prompts": PROMPTS,
        "repeats": 1,
        "concurrency": 4,
        "models": models,
        **fields,
    }
    path = directory / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def complete(
    provider: Any, user: str = "Hello there", system: str | None = None, **settings: Any
) -> tuple[Completion, Timing]:
    """One call through a provider, timed exactly as the runner times it."""
    messages = ((Message("system", system),) if system else ()) + (Message("user", user),)
    chosen = GenerationSettings(**settings)

    async def go() -> tuple[Completion, Timing]:
        try:
            return await collect(provider.stream(messages, chosen), chosen.stream)
        finally:
            await provider.aclose()

    return asyncio.run(go())
