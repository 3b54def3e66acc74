"""Any OpenAI-compatible chat completions endpoint, through the openai SDK with base_url.

OpenAI itself, vLLM, LM Studio, llama.cpp's server, OpenRouter, ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ..errors import (
    AuthenticationError,
    BadResponse,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    ServerError,
    error_for_status,
    parse_retry_after,
)
from ..types import Delta, GenerationSettings, Message, Usage
from .base import cut_off, excerpt


class OpenAICompatProvider:
    exclusive_key = None
    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        **_: Any,
    ) -> None:
        self.model = model
        # llmflow's runner owns retries: the SDK's own are switched off so they never stack
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    async def stream(
        self, messages: tuple[Message, ...], settings: GenerationSettings
    ) -> AsyncIterator[Delta]:
        optional = {
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens,
            "top_p": settings.top_p,
            "seed": settings.seed,
            "stop": list(settings.stop) or None,
        }
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            **{k: v for k, v in optional.items() if v is not None},
        }
        create = self._client.chat.completions.create
        try:
            if settings.stream:
                chunks = await create(
                    **request, stream=True, stream_options={"include_usage": True}
                )
                finished = False
                async for chunk in chunks:
                    delta = _chunk_delta(chunk)
                    finished = finished or bool(delta.finish_reason)  # some servers send ""
                    yield delta
                if not finished:  # the usage chunk may be missing: servers ignore stream_options
                    raise cut_off("openai", "a finish_reason")
            else:
                yield _response_delta(await create(**request))
        except ProviderError:
            raise
        except Exception as e:
            raise _translate(e) from e

    async def check(self) -> None:
        try:
            # the raw response: a /models that answers 200 with something else is not our concern
            await self._client.models.with_raw_response.list()
        except (
            openai.APIConnectionError,
            openai.AuthenticationError,
            openai.PermissionDeniedError,
        ) as e:
            raise _translate(e) from e
        except openai.APIStatusError:
            pass  # many compatible servers do not implement /models; the calls will tell

    async def aclose(self) -> None:
        await self._client.close()


def _chunk_delta(chunk: ChatCompletionChunk) -> Delta:
    text, finish_reason = "", None
    if chunk.choices:
        choice = chunk.choices[0]
        text = choice.delta.content or "" if choice.delta else ""
        finish_reason = choice.finish_reason
    usage = _map_usage(chunk.usage) if chunk.usage else None
    return Delta(text=text, usage=usage, finish_reason=finish_reason, model_version=chunk.model)


def _response_delta(response: ChatCompletion) -> Delta:
    if not response.choices:
        raise BadResponse("openai: response has no choices")
    choice = response.choices[0]
    usage = _map_usage(response.usage) if response.usage else None
    return Delta(
        text=choice.message.content or "",
        usage=usage,
        finish_reason=choice.finish_reason,
        model_version=response.model,
    )


def _map_usage(usage: CompletionUsage) -> Usage:
    out_details = usage.completion_tokens_details
    in_details = usage.prompt_tokens_details
    return Usage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        reasoning_tokens=(out_details.reasoning_tokens or 0) if out_details else 0,
        cached_input_tokens=(in_details.cached_tokens or 0) if in_details else 0,
    )


def _translate(e: Exception) -> ProviderError:
    """Any exception from the SDK as our error tree; never raises, whatever the body's shape."""
    if isinstance(e, openai.APIStatusError):
        retry_after = parse_retry_after(e.response.headers.get("retry-after"))
        message = f"openai {e.status_code}: {excerpt(_body_message(e.body))}"
        if isinstance(e, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return AuthenticationError(message, status_code=e.status_code)
        return error_for_status(e.status_code, message, retry_after=retry_after)
    if isinstance(e, openai.APITimeoutError):
        return ProviderTimeout("openai: timed out")
    if isinstance(e, openai.APIConnectionError):
        return ProviderUnavailable(f"openai: cannot connect: {excerpt(str(e.__cause__ or e))}")
    if type(e) is openai.APIError:  # an {"error": ...} event inside a 200 stream
        return ServerError(f"openai: error during the answer: {excerpt(_body_message(e.body))}")
    return BadResponse(f"openai: unreadable response: {type(e).__name__}: {excerpt(str(e))}")


def _body_message(body: object) -> object:
    """The SDK hands over {"error": {...}} unwrapped; any other shape is shown as it came."""
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
        return body["message"]
    return body
