"""Any OpenAI-compatible chat completions endpoint, through the openai SDK with base_url.

OpenAI itself, vLLM, LM Studio, llama.cpp's server, OpenRouter, ...

A streamed answer is read through the SDK's `with_streaming_response` (its request, auth and
status errors) and its server-sent events are decoded by `sse.py` into plain dicts. The SDK's
own stream builds a pydantic object per chunk, on the event loop that times the calls:
`bench/chunks.py` measured 309 µs of CPU per chunk that way, 16 µs decoded here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import openai  # the `llmflow` command hides aiohttp from it (_process.py)

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
from ..redact import redact_url
from ..types import Delta, GenerationSettings, Message, Usage
from .base import cut_off, excerpt, http_error_bases, http_errors
from .sse import sse_data

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletion


# what the adapter translates: the SDK's errors and its HTTP library's (a streamed body is read
# past the SDK); anything else is a bug of llmflow's and surfaces as itself
_SDK_ERRORS = (openai.OpenAIError, *http_error_bases())


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
        request = request_body(self.model, messages, settings)
        create = self._client.chat.completions.create
        try:
            if settings.stream:
                streaming = self._client.chat.completions.with_streaming_response.create
                async with streaming(
                    **request, stream=True, stream_options={"include_usage": True}
                ) as response:
                    finished = False
                    async for data in sse_data(response.iter_bytes()):
                        delta = _chunk_delta(_decode(data))
                        finished = finished or bool(delta.finish_reason)  # some servers send ""
                        yield delta
                if not finished:  # the usage chunk may be missing: servers ignore stream_options
                    raise cut_off("openai", "a finish_reason")
            else:
                yield _response_delta(await create(**request))
        except _SDK_ERRORS as e:
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


def request_body(
    model: str, messages: tuple[Message, ...], settings: GenerationSettings
) -> dict[str, Any]:
    """A chat completion request's body: the model, the messages and the settings sent."""
    optional = {
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
        "top_p": settings.top_p,
        "seed": settings.seed,
        "stop": list(settings.stop) or None,
    }
    return {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        **{k: v for k, v in optional.items() if v is not None},
    }


def _decode(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise BadResponse(f"openai: unreadable chunk: {excerpt(data)}") from None


def _chunk_delta(chunk: Any) -> Delta:
    """One decoded chunk as a Delta; an `{"error": ...}` event inside the 200 stream is the
    server's failure (the SDK raises the same for it)."""
    if not isinstance(chunk, Mapping):
        raise BadResponse(f"openai: unreadable chunk: {excerpt(chunk)}")
    if chunk.get("error"):
        message = excerpt(_body_message(chunk["error"]))
        raise ServerError(f"openai: error during the answer: {message}")
    text, finish_reason = "", None
    choices = chunk.get("choices")
    if choices:
        choice = choices[0]
        text = (choice.get("delta") or {}).get("content") or ""
        finish_reason = choice.get("finish_reason")
    if not isinstance(text, str):
        raise BadResponse(f"openai: a chunk's content is not text: {excerpt(text)}")
    usage = _map_usage(chunk["usage"]) if chunk.get("usage") else None
    return Delta(
        text=text, usage=usage, finish_reason=finish_reason, model_version=chunk.get("model")
    )


def _response_delta(response: ChatCompletion) -> Delta:
    if not response.choices:
        raise BadResponse("openai: response has no choices")
    choice = response.choices[0]
    usage = _map_usage(response.usage.model_dump()) if response.usage else None
    return Delta(
        text=choice.message.content or "",
        usage=usage,
        finish_reason=choice.finish_reason,
        model_version=response.model,
    )


def _map_usage(usage: Mapping[str, Any]) -> Usage:
    out_details = usage.get("completion_tokens_details") or {}
    in_details = usage.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        reasoning_tokens=out_details.get("reasoning_tokens") or 0,
        cached_input_tokens=in_details.get("cached_tokens") or 0,
    )


def _translate(e: Exception) -> ProviderError:
    """An SDK or HTTP library exception as our error tree; never raises, whatever the body."""
    if isinstance(e, openai.APIStatusError):
        retry_after = parse_retry_after(e.response.headers.get("retry-after"))
        message = f"openai {e.status_code}: {excerpt(_body_message(e.body))}"
        if isinstance(e, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return AuthenticationError(message, status_code=e.status_code)
        return error_for_status(e.status_code, message, retry_after=retry_after)
    if isinstance(e, openai.APITimeoutError):
        return ProviderTimeout("openai: timed out")
    if isinstance(e, openai.APIConnectionError):
        cause = excerpt(str(e.__cause__ or e))
        return ProviderUnavailable(f"openai: cannot connect to {_url_of(e)}: {cause}")
    # the body of a stream is read past the SDK's error mapping: its HTTP library's own errors
    timeouts, transport = http_errors()
    if isinstance(e, timeouts):
        return ProviderTimeout("openai: timed out")
    if isinstance(e, transport):
        return ProviderUnavailable(f"openai: connection lost: {excerpt(str(e))}")
    return BadResponse(f"openai: unreadable response: {type(e).__name__}: {excerpt(str(e))}")


def _url_of(e: openai.APIConnectionError) -> str:
    """The URL the request went to, without credentials: the cause alone ("All connection
    attempts failed") does not say which server of the experiment is down."""
    request = getattr(e, "request", None)
    return redact_url(str(request.url)) if request is not None else "the server"


def _body_message(body: object) -> object:
    """The SDK hands over {"error": {...}} unwrapped; any other shape is shown as it came."""
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
        return body["message"]
    return body
