"""Anthropic's Claude through the official anthropic SDK, on the Messages API.

The SDK sends each request (auth, headers, retries off, its status errors); the body is read raw,
its server-sent events decoded by `sse.py` into plain dicts, as openai_compat.py does, so the
loop that times the calls builds no pydantic object per event.

Usage: Anthropic's `input_tokens` leaves out the prompt-cache tokens; llmflow's counts them in
(`cache_read_input_tokens` and `cache_creation_input_tokens` are parts of it). In a stream the
input counts come with `message_start` and `message_delta` carries cumulative counts, which win.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

import anthropic

from ..errors import (
    BadRequest,
    BadResponse,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    ServerError,
    error_for_status,
    parse_retry_after,
)
from ..types import Delta, GenerationSettings, Message, Usage
from .base import cut_off, excerpt, http_error_bases, http_errors
from .spec import ANTHROPIC
from .sse import drain, sse_data

_TIMEOUTS, _TRANSPORT = http_errors()
# what is translated: the SDK's errors and its HTTP library's, never a bug of this module
_SDK_ERRORS = (anthropic.AnthropicError, *http_error_bases())
# an error event inside a 200 stream names its type, not a status: the status the API gives it
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class AnthropicProvider:
    exclusive_key = None
    name = "anthropic"

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
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=0,  # llmflow's runner owns retries: they never stack
            # llmflow traces every call itself; the SDK's spans would be a second, partial record
            open_telemetry=False,
        )

    async def stream(
        self, messages: tuple[Message, ...], settings: GenerationSettings
    ) -> AsyncIterator[Delta]:
        request = _request(self.model, messages, settings)
        create = self._client.messages.with_streaming_response.create
        try:
            async with create(**request, stream=settings.stream) as response:
                if settings.stream:
                    chunks = response.iter_bytes()
                    async with aclosing(sse_data(chunks)) as events:
                        async for delta in _Stream().deltas(events):
                            yield delta
                    await drain(chunks)  # the rest of the body: the connection can be reused
                else:
                    yield _message_delta(_decode(await response.read()))
        except _SDK_ERRORS as e:
            raise _translate(e) from e

    async def check(self) -> None:
        try:
            await self._client.models.with_raw_response.retrieve(self.model)
        except anthropic.APIStatusError as e:
            if e.status_code == 404 and _error_type(e.body) != "not_found_error":
                return  # a gateway without the models route: the calls will tell
            raise _translate(e) from e
        except _SDK_ERRORS as e:
            raise _translate(e) from e

    async def aclose(self) -> None:
        await self._client.close()


def _request(model: str, messages: tuple[Message, ...], settings: GenerationSettings) -> dict:
    if settings.seed is not None:  # the config refuses it; a library caller is told here
        raise BadRequest("anthropic: the Messages API takes no seed")
    request: dict[str, Any] = {
        "model": model,
        "max_tokens": settings.max_tokens or ANTHROPIC.default_max_tokens,
        "messages": [
            {"role": m.role, "content": m.content} for m in messages if m.role != "system"
        ],
    }
    if system := "\n\n".join(m.content for m in messages if m.role == "system"):
        request["system"] = system
    if settings.stop:
        request["stop_sequences"] = list(settings.stop)
    # anthropic 1.0 took temperature and top_p out of create()'s signature; the API reads them
    sampling = {"temperature": settings.temperature, "top_p": settings.top_p}
    if sampling := {k: v for k, v in sampling.items() if v is not None}:
        request["extra_body"] = sampling
    return request


class _Stream:
    """The events of one streamed answer, in order, as Deltas: text as it comes, then the
    usage, stop reason and model on the last one, at `message_stop`."""

    def __init__(self) -> None:
        self.usage: dict[str, Any] = {}
        self.model: str | None = None
        self.stop_reason: str | None = None

    async def deltas(self, events: AsyncIterator[str]) -> AsyncIterator[Delta]:
        async for data in events:
            event = _decode(data)
            kind = event.get("type")
            if kind == "message_stop":
                yield Delta(
                    usage=_map_usage(self.usage),
                    finish_reason=self.stop_reason,
                    model_version=self.model,
                )
                return
            if kind == "error":
                raise _stream_error(event.get("error"))
            if text := self.take(kind, event):
                yield Delta(text=text)
        raise cut_off("anthropic", "message_stop")

    def take(self, kind: object, event: Mapping[str, Any]) -> str:
        """The text an event adds, after noting what else it says; ping, content_block_stop and
        event types added to the API later add nothing."""
        if kind == "message_start":
            message = _mapping(event.get("message"), "message_start")
            self.model = _string(message.get("model"))
            self.usage.update(_mapping(message.get("usage") or {}, "usage"))
        elif kind == "message_delta":
            delta = _mapping(event.get("delta") or {}, "message_delta")
            self.stop_reason = _string(delta.get("stop_reason")) or self.stop_reason
            # cumulative counts: each one given replaces what message_start said
            usage = _mapping(event.get("usage") or {}, "usage")
            self.usage.update({k: v for k, v in usage.items() if v is not None})
        elif kind == "content_block_start":
            return _text_of(_mapping(event.get("content_block"), "content_block"), "text")
        elif kind == "content_block_delta":
            return _text_of(_mapping(event.get("delta"), "content_block_delta"), "text_delta")
        return ""


def _message_delta(message: Mapping[str, Any]) -> Delta:
    """The whole answer of a call without streaming, as one Delta."""
    content = message.get("content")
    if not isinstance(content, list):
        raise BadResponse(f"anthropic: a message without content: {excerpt(message)}")
    return Delta(
        text="".join(_text_of(_mapping(block, "content"), "text") for block in content),
        usage=_map_usage(_mapping(message.get("usage") or {}, "usage")),
        finish_reason=_string(message.get("stop_reason")),
        model_version=_string(message.get("model")),
    )


def _text_of(block: Mapping[str, Any], text_type: str) -> str:
    """The text of a text block or text delta; thinking and other blocks are not the answer."""
    if block.get("type") != text_type:
        return ""
    text = block.get("text") or ""
    if not isinstance(text, str):
        raise BadResponse(f"anthropic: a text that is not text: {excerpt(text)}")
    return text


def _map_usage(usage: Mapping[str, Any]) -> Usage:
    uncached = _count(usage, "input_tokens")
    read = _count(usage, "cache_read_input_tokens") or 0
    written = _count(usage, "cache_creation_input_tokens") or 0
    by_lifetime = _mapping(usage.get("cache_creation") or {}, "cache_creation")
    details = _mapping(usage.get("output_tokens_details") or {}, "output_tokens_details")
    extras = {k: usage[k] for k in ("service_tier", "inference_geo") if usage.get(k)}
    return Usage(
        input_tokens=None if uncached is None else uncached + read + written,
        output_tokens=_count(usage, "output_tokens"),  # thinking included, as Anthropic bills it
        reasoning_tokens=_count(details, "thinking_tokens") or 0,
        cached_input_tokens=read,
        cache_write_input_tokens=written,
        cache_write_1h_input_tokens=_count(by_lifetime, "ephemeral_1h_input_tokens") or 0,
        details=extras,
    )


def _count(usage: Mapping[str, Any], key: str) -> int | None:
    value = usage.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadResponse(f"anthropic: usage {key} is not a count: {excerpt(value)}")
    return value


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadResponse(f"anthropic: unreadable {what}: {excerpt(value)}")
    return value


def _decode(data: str | bytes) -> Mapping[str, Any]:
    try:
        return _mapping(json.loads(data), "response")
    except ValueError:
        raise BadResponse(f"anthropic: unreadable response: {excerpt(data)}") from None


def _stream_error(error: object) -> ProviderError:
    """An `error` event: the API failed after its 200 (overloaded, most often)."""
    kind = _error_type({"error": error})
    message = f"anthropic: error during the answer: {excerpt(_body_message({'error': error}))}"
    status = _ERROR_STATUS.get(kind or "")
    return ServerError(message) if status is None else error_for_status(status, message)


def _translate(e: Exception) -> ProviderError:
    """An SDK or HTTP library exception as our error tree; never raises, whatever the body."""
    if isinstance(e, anthropic.APIStatusError):
        retry_after = parse_retry_after(e.response.headers.get("retry-after"))
        message = f"anthropic {e.status_code}: {excerpt(_body_message(e.body))}"
        return error_for_status(e.status_code, message, retry_after=retry_after)
    if isinstance(e, (anthropic.APITimeoutError, *_TIMEOUTS)):
        return ProviderTimeout("anthropic: timed out")
    if isinstance(e, anthropic.APIConnectionError):
        return ProviderUnavailable(f"anthropic: cannot connect: {excerpt(str(e.__cause__ or e))}")
    if isinstance(e, _TRANSPORT):
        return ProviderUnavailable(f"anthropic: connection lost: {excerpt(str(e))}")
    return BadResponse(f"anthropic: unreadable response: {type(e).__name__}: {excerpt(str(e))}")


def _error_type(body: object) -> str | None:
    error = body.get("error") if isinstance(body, Mapping) else None
    kind = error.get("type") if isinstance(error, Mapping) else None
    return kind if isinstance(kind, str) else None


def _body_message(body: object) -> object:
    """`type: message` from Anthropic's {"type": "error", "error": {...}}; any other shape is
    shown as it came."""
    error = body.get("error") if isinstance(body, Mapping) else None
    message = error.get("message") if isinstance(error, Mapping) else None
    if not isinstance(message, str) or not message:
        return body
    kind = _error_type(body)
    return f"{kind}: {message}" if kind else message
