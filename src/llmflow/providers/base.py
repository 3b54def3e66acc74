"""The provider protocol, the one place where a call is timed, and what every provider's error
translation shares."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Protocol

from ..errors import StreamCutOff
from ..redact import redact_text
from ..types import Completion, Delta, GenerationSettings, Message, Timing, Usage

EXCERPT_CHARS = 200


class Provider(Protocol):
    """What every provider module implements."""

    name: str
    model: str
    # Calls whose providers share a key run one at a time, queued by the runner *before* the
    # clock starts (an in-process model computes one answer at a time). None: no such limit.
    exclusive_key: str | None

    def stream(
        self, messages: tuple[Message, ...], settings: GenerationSettings
    ) -> AsyncIterator[Delta]:
        """Yield the answer as it arrives (one Delta when settings.stream is False).

        Usage may come on any Delta; the last one seen wins. Errors are raised as
        `llmflow.errors.ProviderError` subclasses.
        """
        ...

    async def check(self) -> None:
        """Raise ProviderError if the server cannot be reached or the model is not there."""
        ...

    async def aclose(self) -> None: ...


async def collect(deltas: AsyncIterator[Delta], streamed: bool) -> tuple[Completion, Timing]:
    """Drain a provider's stream, measuring latency and time to first non-empty text.

    Start the clock before the first `__anext__`, since that is where the request is sent.
    """
    started_ns = time.time_ns()
    start = time.perf_counter()
    first_text_at: float | None = None
    parts: list[str] = []
    usage = Usage()
    finish_reason = model_version = None
    async with aclosing(deltas) as stream:  # a timeout or cancel closes the HTTP stream now
        async for delta in stream:
            if delta.text:
                if first_text_at is None:
                    first_text_at = time.perf_counter()
                parts.append(delta.text)
            usage = delta.usage or usage
            finish_reason = delta.finish_reason or finish_reason
            model_version = delta.model_version or model_version
    end = time.perf_counter()
    timing = Timing(
        latency_s=end - start,
        ttft_s=(first_text_at - start) if streamed and first_text_at is not None else None,
        started_ns=started_ns,
        ended_ns=started_ns + int((end - start) * 1e9),
    )
    completion = Completion(
        text="".join(parts), usage=usage, finish_reason=finish_reason, model_version=model_version
    )
    return completion, timing


def excerpt(body: object, limit: int = EXCERPT_CHARS) -> str:
    """A one-line, credential-free excerpt of an error body of any shape, for an error message.

    Servers and proxies answer errors with JSON of any shape, HTML, plain text or nothing; this
    never raises on any of them.
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if body is None or (isinstance(body, str) and not body.strip()):
        return "(empty body)"
    if isinstance(body, str):
        text = body
    else:
        try:
            text = json.dumps(body, ensure_ascii=False, default=str)
        except ValueError:  # a circular structure
            text = repr(body)
    text = redact_text(" ".join(text.split()))  # before the cut, which could hide half a secret
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cut_off(provider: str, missing: str) -> StreamCutOff:
    """The error for a stream that ended cleanly but before the server said the answer was done:
    a proxy or load balancer closing it, a server restarting. Its text is partial."""
    return StreamCutOff(f"{provider}: the stream was cut off: it ended without {missing}")


def http_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(timeouts, other transport errors) of the HTTP library under the openai and anthropic
    SDKs: httpx2 in their recent releases, httpx before; whichever is installed. A streamed body
    is read past the SDK's own error mapping, so these reach the adapter as they are."""
    libraries = _http_libraries()
    return (
        tuple(library.TimeoutException for library in libraries),
        tuple(library.TransportError for library in libraries),
    )


def http_error_bases() -> tuple[type[Exception], ...]:
    """Every error of those HTTP libraries (a body that cannot be decoded, too)."""
    return tuple(library.HTTPError for library in _http_libraries())


def _http_libraries() -> list:
    libraries = []
    for name in ("httpx2", "httpx"):
        try:
            libraries.append(importlib.import_module(name))
        except ImportError:
            continue
    return libraries
