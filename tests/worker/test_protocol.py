"""The worker's protocol as a contract: every store task has exactly one handler, every message
is a frozen dataclass, a worker of another protocol is refused at the handshake, and what
either side cannot read is a protocol error, never taken for the other side's exit."""

from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
import sys
import textwrap
from multiprocessing.connection import Connection

import pytest

from llmflow.errors import TrackingError
from llmflow.worker import pool, protocol
from llmflow.worker.client import WorkerClient
from llmflow.worker.handlers import HANDLERS
from llmflow.worker.protocol import ASKS, Ask, ExperimentId
from llmflow.worker.server import EXIT_PARENT_DIED, EXIT_UNEXPECTED


def classes_of_protocol() -> list[type]:
    return [
        value
        for value in vars(protocol).values()
        if inspect.isclass(value) and value.__module__ == protocol.__name__
    ]


def test_every_task_has_exactly_one_handler_and_every_handler_one_task():
    asks = {c for c in classes_of_protocol() if issubclass(c, Ask) and c is not Ask}
    assert asks == set(ASKS) == set(HANDLERS)
    handled = {}
    for kind, handler in HANDLERS.items():
        annotation = inspect.signature(handler).parameters["request"].annotation
        assert annotation == kind.__name__, f"{handler.__name__} handles {annotation}, not {kind}"
        handled.setdefault(handler, []).append(kind)
    assert all(len(kinds) == 1 for kinds in handled.values()), handled


def test_every_message_is_a_frozen_dataclass():
    for message in classes_of_protocol():
        assert dataclasses.is_dataclass(message), message
        assert message.__dataclass_params__.frozen, message


def fake_worker(tmp_path, script: str) -> pool.WorkerProcess:
    """A process that speaks on its stdout as a worker would, with `script`."""
    code = tmp_path / "fake_worker.py"
    code.write_text(
        "import os, sys\n"
        "from multiprocessing.connection import Connection\n"
        "from llmflow.worker.protocol import Hello\n"
        "replies = Connection(os.dup(sys.stdout.fileno()), readable=False)\n"
        + textwrap.dedent(script)
        + "sys.stdin.buffer.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, str(code)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    requests = Connection(os.dup(process.stdin.fileno()), readable=False)
    replies = Connection(os.dup(process.stdout.fileno()), writable=False)
    process.stdin.close()
    process.stdout.close()
    return pool.WorkerProcess(process, requests, replies)


def asked_of(tmp_path, monkeypatch, script: str) -> str:
    """The error a worker speaking `script` gives a client that asks it anything."""
    worker = fake_worker(tmp_path, script)
    monkeypatch.setattr(pool, "take", lambda tracking_uri: worker)
    client = WorkerClient("sqlite:///x.db")
    try:
        with pytest.raises(TrackingError) as raised:
            client.ask(ExperimentId("e"))
    finally:
        client.close()
        worker.process.wait(10)
    return str(raised.value)


def test_a_worker_of_another_protocol_is_refused(tmp_path, monkeypatch):
    said = asked_of(tmp_path, monkeypatch, "replies.send(Hello(protocol=999))\n")
    assert "Hello(protocol=999)" in said and f"protocol {protocol.PROTOCOL_VERSION}" in said


def test_an_unreadable_reply_is_a_protocol_error_not_an_exit(tmp_path, monkeypatch):
    script = "replies.send(Hello(protocol=1))\nreplies.send_bytes(b'not a pickle')\n"
    said = asked_of(tmp_path, monkeypatch, script)
    assert "cannot read" in said and "exited" not in said


def test_a_worker_that_exits_is_told_apart(tmp_path, monkeypatch):
    said = asked_of(tmp_path, monkeypatch, "replies.send(Hello(protocol=1))\nsys.exit(0)\n")
    assert said == "the worker exited early"


def real_worker_after(send) -> int:
    """A real worker's exit status after `send(requests)` and the end of its input."""
    worker = pool._spawn("sqlite:")
    try:
        assert worker.replies.recv() == protocol.Hello(protocol.PROTOCOL_VERSION)
        send(worker.requests)
    finally:
        worker.requests.close()
    return worker.process.wait(60)


def test_the_worker_never_exits_0_on_what_it_cannot_read():
    assert real_worker_after(lambda requests: requests.send_bytes(b"garbage")) == EXIT_UNEXPECTED
    assert real_worker_after(lambda requests: requests.send("no message")) == EXIT_UNEXPECTED


def test_the_worker_exits_0_between_runs_and_1_when_its_parent_dies_mid_run():
    assert real_worker_after(lambda requests: None) == 0
    opened = protocol.OpenRun("sqlite:")
    assert real_worker_after(lambda requests: requests.send(opened)) == EXIT_PARENT_DIED
