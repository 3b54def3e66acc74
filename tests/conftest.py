"""Shared fixtures. No test may reach past 127.0.0.1: a guard fails any other connection."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

from llmflow._process import MLFLOW_SETTINGS
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.ollama import FakeOllama
from tests.fakes.openai import FakeOpenAI

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class NetworkGuardError(AssertionError):
    pass


def _is_loopback(host: object) -> bool:
    if host in ("localhost", "localhost.localdomain", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _check_address(address: object) -> None:
    if isinstance(address, tuple) and not _is_loopback(address[0]):
        raise NetworkGuardError(f"test tried to reach {address!r}: only loopback is allowed")


def _guarded_connect(self: socket.socket, address: object) -> object:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_address(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> object:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_address(address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
    if not _is_loopback(host.decode() if isinstance(host, bytes) else host):
        raise NetworkGuardError(f"test tried to resolve {host!r}: only loopback is allowed")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def _network_guard():
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    socket.getaddrinfo = _guarded_getaddrinfo
    yield
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex
    socket.getaddrinfo = _real_getaddrinfo


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Each test: its own working dir (so sqlite:///mlflow.db lands in tmp_path), no real keys."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "OPENAI_API_KEY",
        "MLFLOW_TRACKING_URI",
        "OLLAMA_HOST",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    # the command's MLflow settings (quiet, no catalog): tests call the CLI in this process
    # (typer's CliRunner), past cli.commands.main, which applies them in the real command
    for name, value in MLFLOW_SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LLMFLOW_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="module")
def fake_gemini():
    with FakeGemini() as server:
        yield server


@pytest.fixture(scope="module")
def fake_ollama():
    with FakeOllama() as server:
        yield server


@pytest.fixture(scope="module")
def fake_openai():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def fake_anthropic():
    with FakeAnthropic() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_fakes(request: pytest.FixtureRequest):
    """Module-scoped fakes keep running; their knobs and counters are fresh for each test."""
    for name in ("fake_gemini", "fake_ollama", "fake_openai", "fake_anthropic"):
        if name in request.fixturenames:
            server = request.getfixturevalue(name)
            server.reset()
            server.delay_s = server.chunk_delay_s = server.fault_rate = 0.0
            server.seconds_per_max_token = 0.0
            server.model_delays = {}
            server.scripted = {}
            server.judge_reply = None
    yield
