"""Google Gemini through the google-genai SDK (async client, SSE streaming)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gt

from ..errors import (
    AuthenticationError,
    BadResponse,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    error_for_status,
    parse_retry_after,
)
from ..types import Delta, GenerationSettings, Message, Usage
from .base import cut_off, excerpt


class GeminiProvider:
    exclusive_key = None
    name = "gemini"

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
        http_options = gt.HttpOptions(
            base_url=base_url,
            timeout=int(timeout_s * 1000),
            # llmflow's runner owns retries; attempts=1 also stops the SDK's implicit retry
            retry_options=gt.HttpRetryOptions(attempts=1),
        )
        self._client = genai.Client(api_key=api_key, http_options=http_options)

    async def stream(
        self, messages: tuple[Message, ...], settings: GenerationSettings
    ) -> AsyncIterator[Delta]:
        contents, config = request_parts(messages, settings)
        models = self._client.aio.models
        try:
            if settings.stream:
                chunks = await models.generate_content_stream(
                    model=self.model, contents=contents, config=config
                )
                finished = False
                async for chunk in chunks:
                    delta = _delta(chunk)
                    finished = finished or bool(delta.finish_reason)  # some servers send ""
                    yield delta
                if not finished:
                    raise cut_off("gemini", "a finishReason")
            else:
                yield _delta(
                    await models.generate_content(
                        model=self.model, contents=contents, config=config
                    )
                )
        except _SDK_ERRORS as e:
            raise _translate(e) from e

    async def check(self) -> None:
        try:
            await self._client.aio.models.get(model=self.model)
        except _SDK_ERRORS as e:
            raise _translate(e) from e

    async def aclose(self) -> None:
        await self._client.aio.aclose()


def request_parts(
    messages: tuple[Message, ...], settings: GenerationSettings
) -> tuple[list[gt.Content], gt.GenerateContentConfig]:
    """The contents and the config of a generateContent request."""
    system = "\n\n".join(m.content for m in messages if m.role == "system") or None
    contents = [
        gt.Content(
            role="model" if m.role == "assistant" else "user", parts=[gt.Part(text=m.content)]
        )
        for m in messages
        if m.role != "system"
    ]
    config = gt.GenerateContentConfig(
        system_instruction=system,
        temperature=settings.temperature,
        max_output_tokens=settings.max_tokens,
        top_p=settings.top_p,
        seed=settings.seed,
        stop_sequences=list(settings.stop) or None,
    )
    return contents, config


def _delta(response: gt.GenerateContentResponse) -> Delta:
    text = ""
    finish_reason = _blocked(response)
    if response.candidates:
        candidate = response.candidates[0]
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        text = "".join(p.text for p in parts if p.text and not p.thought)
        finish_reason = candidate.finish_reason.value if candidate.finish_reason else None
    usage = _map_usage(response.usage_metadata) if response.usage_metadata else None
    return Delta(
        text=text, usage=usage, finish_reason=finish_reason, model_version=response.model_version
    )


def _blocked(response: gt.GenerateContentResponse) -> str | None:
    """A blocked prompt gets no candidate, so no finishReason: its blockReason ends the answer."""
    feedback = response.prompt_feedback
    if feedback is None or feedback.block_reason is None:
        return None
    return f"PROMPT_BLOCKED:{getattr(feedback.block_reason, 'value', feedback.block_reason)}"


def _map_usage(meta: gt.GenerateContentResponseUsageMetadata) -> Usage:
    thoughts = meta.thoughts_token_count or 0
    details = {"total_token_count": meta.total_token_count}
    if meta.tool_use_prompt_token_count:
        details["tool_use_prompt_token_count"] = meta.tool_use_prompt_token_count
    return Usage(
        input_tokens=meta.prompt_token_count,
        output_tokens=(meta.candidates_token_count or 0) + thoughts,
        reasoning_tokens=thoughts,
        cached_input_tokens=meta.cached_content_token_count or 0,
        details=details,
    )


# what the adapter translates: the SDK's errors, its HTTP libraries' (aiohttp for async, httpx),
# the network's, and a body the SDK cannot read (JSON, or pydantic: both ValueErrors); anything
# else is a bug of llmflow's and surfaces as itself
_SDK_ERRORS = (
    genai_errors.APIError,
    asyncio.TimeoutError,
    aiohttp.ClientError,
    httpx.HTTPError,
    OSError,
    ValueError,
)


def _translate(e: Exception) -> ProviderError:
    """An SDK, HTTP or network exception as our error tree; never raises, whatever the body."""
    if isinstance(e, genai_errors.APIError) and isinstance(e.code, int):
        message = _status_message(e)
        if "API_KEY_INVALID" in _detail_values(e, "reason"):  # Gemini answers a bad key with 400
            return AuthenticationError(message, status_code=e.code)
        return error_for_status(e.code, message, retry_after=_retry_after(e))
    if isinstance(e, (asyncio.TimeoutError, httpx.TimeoutException, aiohttp.ServerTimeoutError)):
        return ProviderTimeout(f"gemini: timed out ({type(e).__name__})")
    if isinstance(
        e, (aiohttp.ClientConnectionError, httpx.TransportError, ConnectionError, OSError)
    ):
        return ProviderUnavailable(f"gemini: cannot connect: {excerpt(str(e))}")
    if isinstance(e, json.JSONDecodeError):
        # the SDK's aiohttp path parses an error body sent as JSON without catching this, so a
        # cut-short error body arrives here without its HTTP status
        return BadResponse(f"gemini: unreadable response body: {excerpt(e.doc)}")
    return BadResponse(f"gemini: unreadable response: {type(e).__name__}: {excerpt(str(e))}")


def _status_message(e: genai_errors.APIError) -> str:
    status = e.status if isinstance(e.status, str) else ""
    # the SDK fills message from {"error": {"message"}}; any other shape is shown as it came
    body = e.message if isinstance(e.message, str) and e.message.strip() else e.details
    return f"gemini {e.code} {status[:40]}".rstrip() + f": {excerpt(body)}"


def _retry_after(e: genai_errors.APIError) -> float | None:
    headers = getattr(getattr(e, "response", None), "headers", None)
    if headers is not None and (value := parse_retry_after(headers.get("retry-after"))) is not None:
        return value
    # Gemini puts the delay in a google.rpc.RetryInfo detail: {"retryDelay": "12s"}
    for delay in _detail_values(e, "retryDelay"):
        if isinstance(delay, str) and (match := re.fullmatch(r"([\d.]+)s", delay)):
            return float(match.group(1))
    return None


def _detail_values(e: genai_errors.APIError, key: str) -> list[object]:
    """Values of `key` in the google.rpc details of an error body; [] for any other shape."""
    error = e.details.get("error") if isinstance(e.details, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, list):
        return []
    return [d[key] for d in details if isinstance(d, dict) and key in d]
