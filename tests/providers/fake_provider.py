"""An in-memory provider, registered through one test-only `ProviderSpec` and nothing else:
the proof that adding a provider touches one place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llmflow.providers.spec import ProviderSpec
from llmflow.types import Delta, GenerationSettings, Message, Usage

FAKE_SPEC = ProviderSpec(
    name="fake",
    adapter="tests.providers.fake_provider:FakeProvider",
    key_env=("FAKE_PROVIDER_KEY",),
    key_required=True,
    default_base_url="http://127.0.0.1:9/v1",
    pip_requirements=("pyyaml>=6",),
)


class FakeProvider:
    """Answers every prompt with its last message upper-cased; counts its calls."""

    name = "fake"
    exclusive_key = None
    calls: list[tuple[str, str | None]] = []  # (model, api key) of every call, across instances

    def __init__(self, model: str, *, api_key: str, base_url: str | None = None, **_: Any):
        self.model, self.api_key, self.base_url = model, api_key, base_url

    async def check(self) -> None:
        return None

    async def stream(
        self, messages: tuple[Message, ...], settings: GenerationSettings
    ) -> AsyncIterator[Delta]:
        FakeProvider.calls.append((self.model, self.api_key))
        answer = messages[-1].content.upper()
        usage = Usage(input_tokens=len(messages[-1].content.split()), output_tokens=3)
        yield Delta(text=answer, usage=usage, finish_reason="stop")

    async def aclose(self) -> None:
        return None
