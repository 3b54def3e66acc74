"""Ollama through the ollama SDK, on the native /api/chat (it reports load and eval durations)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import ollama

from ..errors import (
    BadResponse,
    ModelNotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    ServerError,
    error_for_status,
)
from ..redact import redact_url
from ..types import Delta, GenerationSettings, Message, Usage
from .base import cut_off, excerpt

_DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


class OllamaProvider:
    exclusive_key = None
    name = "ollama"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        **_: Any,
    ) -> None:
        self.model = model
        self.base_url = base_url
        headers = {"authorization": f"Bearer {api_key}"} if api_key else None
        self._client = ollama.AsyncClient(host=base_url, timeout=timeout_s, headers=headers)

    async def stream(
        self, messages: tuple[Message, ...], settings: GenerationSettings
    ) -> AsyncIterator[Delta]:
        options = {
            "temperature": settings.temperature,
            "num_predict": settings.max_tokens,
            "top_p": settings.top_p,
            "seed": settings.seed,
            "stop": list(settings.stop) or None,
        }
        request = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "options": {k: v for k, v in options.items() if v is not None},
        }
        with _translated(self.base_url):
            if settings.stream:
                done = False
                async for part in await self._client.chat(**request, stream=True):
                    done = done or bool(part.done)
                    yield _delta(part)
                if not done:
                    raise cut_off("ollama", 'a last line with "done": true')
            else:
                yield _delta(await self._client.chat(**request, stream=False))

    async def check(self) -> None:
        with _translated(self.base_url):
            listing = await self._client.list()
        names = {m.model for m in listing.models if m.model}
        wanted = self.model if ":" in self.model else f"{self.model}:latest"
        if self.model not in names and wanted not in names:
            raise ModelNotFound(
                f"ollama model {self.model} is not pulled on {_where(self.base_url)}: "
                f"run `ollama pull {self.model}`"
            )

    async def aclose(self) -> None:
        await self._client._client.aclose()


def _delta(part: ollama.ChatResponse) -> Delta:
    text = part.message.content if part.message and part.message.content else ""
    if not part.done:
        return Delta(text=text)
    return Delta(text=text, usage=_map_usage(part), finish_reason=part.done_reason)


def _map_usage(part: ollama.ChatResponse) -> Usage:
    details = {name: getattr(part, name) for name in _DURATIONS if getattr(part, name) is not None}
    return Usage(
        input_tokens=part.prompt_eval_count,
        output_tokens=part.eval_count,
        details=details,
    )


# what the adapter translates: the SDK's errors, httpx's, the network's, and a body the SDK
# cannot read (JSON, or pydantic: both ValueErrors); anything else is a bug of llmflow's and
# surfaces as itself
_SDK_ERRORS = (ollama.ResponseError, httpx.HTTPError, OSError, ValueError)


@contextmanager
def _translated(host: str | None) -> Iterator[None]:
    try:
        yield
    except _SDK_ERRORS as e:
        raise _translate(e, host) from e
    except (AttributeError, TypeError) as e:
        # ollama.ResponseError itself fails so on a JSON error body that is not an object,
        # while handling the HTTP status error: that one is the provider's, others are ours
        if _http_status_error(e) is None:
            raise
        raise _translate(e, host) from e


def _translate(e: Exception, host: str | None) -> ProviderError:
    """An SDK, HTTP or network exception as our error tree; never raises, whatever the body."""
    where = _where(host)
    if isinstance(e, ollama.ResponseError):
        return _status_error(e.status_code, e.error, where)
    if (status := _http_status_error(e)) is not None:
        # ollama.ResponseError itself fails on a JSON body that is not an object ([], "x", null):
        # the HTTP error it was handling still carries the status and the body
        return _status_error(status.response.status_code, status.response.text, where)
    if isinstance(e, httpx.TimeoutException):
        return ProviderTimeout(f"ollama: timed out ({type(e).__name__})")
    if isinstance(e, (httpx.TransportError, ConnectionError)):
        return ProviderUnavailable(f"ollama: cannot connect to {where}: is `ollama serve` running?")
    return BadResponse(f"ollama: unreadable response: {type(e).__name__}: {excerpt(str(e))}")


def _where(host: str | None) -> str:
    return redact_url(host) if host else "the default host (OLLAMA_HOST or 127.0.0.1:11434)"


def _status_error(status_code: int, body: object, where: str) -> ProviderError:
    if status_code == 404:
        return ModelNotFound(
            f"ollama 404: {excerpt(body)}: run `ollama pull <model>` on {where}", status_code=404
        )
    if status_code < 100:
        # an {"error": ...} line inside a 200 stream (status -1): the server failed mid-answer
        return ServerError(f"ollama: error during the answer: {excerpt(body)}")
    return error_for_status(status_code, f"ollama {status_code}: {excerpt(body)}")


def _http_status_error(e: BaseException) -> httpx.HTTPStatusError | None:
    seen: BaseException | None = e
    for _ in range(10):  # a cause chain is short; the bound guards against a cycle
        if seen is None or isinstance(seen, httpx.HTTPStatusError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
