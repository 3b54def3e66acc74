"""Small builders shared by the tests."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from llmflow.providers import collect
from llmflow.types import CallRecord, Completion, Cost, GenerationSettings, Message, Timing, Usage

PROMPTS = [
    {
        "id": "explain-mlflow",
        "system": "You are a concise assistant.",
        "user": "What does MLflow track?",
    },
    {"id": "latency-tips", "user": "Give three tips to cut LLM latency."},
]


def write_experiment(
    directory: Path, models: Any = None, name: str = "compare.yaml", **fields: Any
) -> Path:
    """An experiment file. The report is off unless asked (report=True): it takes a second or
    two per run (plots), and only tests/report tests it."""
    document = {
        "experiment": "provider-comparison",
        "task": "chat",
        "prompts": PROMPTS,
        "repeats": 1,
        "concurrency": 4,
        "report": False,
        "models": models,
        **fields,
    }
    path = directory / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def call_record(
    variant_id: str,
    latency_s: float,
    text: str = "An answer.",
    usage: Usage | None = None,
    repeat: int = 0,
    case_id: str = "q",
    **fields: Any,
) -> CallRecord:
    """A successful call with a fixed latency, as the runner records it; no clock involved."""
    return CallRecord(
        variant_id=variant_id,
        case_id=case_id,
        repeat=repeat,
        messages=(Message("user", "What does MLflow track?"),),
        settings=GenerationSettings(),
        completion=Completion(text, usage or Usage(input_tokens=12, output_tokens=30)),
        timing=Timing(latency_s, None, 0, int(latency_s * 1e9)),
        cost=fields.pop("cost", Cost("unpriced", None)),
        **fields,
    )


def complete(
    provider: Any, user: str = "Hello there", system: str | None = None, **settings: Any
) -> tuple[Completion, Timing]:
    """One call through a provider, timed exactly as the runner times it."""
    messages = ((Message("system", system),) if system else ()) + (Message("user", user),)
    chosen = GenerationSettings(**settings)

    async def go() -> tuple[Completion, Timing]:
        try:
            return await collect(provider.stream(messages, chosen), chosen.stream)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_and_ask(tracking_uri: str, model_uri: str, env: dict, prompt: str) -> list[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            model_uri,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        # `mlflow models serve` starts `uvicorn` from PATH: this interpreter's, venv or not
        env={
            **env,
            "MLFLOW_TRACKING_URI": tracking_uri,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/invocations",
                    data=json.dumps({"inputs": [prompt]}).encode(),
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=60) as response:
                    return json.loads(response.read())["predictions"]
            except OSError:
                if time.time() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=10)


def unique_prompts(n: int) -> list[dict]:
    return [{"id": f"p{i:02d}", "user": f"Question number {i}"} for i in range(n)]


def invoke_cli(*args: str, env: dict | None = None) -> Any:
    """`llmflow ARGS` in this process, its exceptions raised."""
    from typer.testing import CliRunner

    from llmflow.cli import app

    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def ollama_models(fake: Any, **extra: Any) -> list[dict]:
    """The models list of an experiment with one Ollama model, served by `fake`."""
    return [{"provider": "ollama", "model": "llama3.1", "base_url": fake.url, **extra}]


def compare_rows(experiment: str = "provider-comparison") -> list[dict]:
    return json.loads(invoke_cli("compare", "-e", experiment, "-f", "json").stdout)


def training_rows(n: int, labels: tuple[str, ...], seed: int = 0) -> list[tuple[str, str]]:
    """`n` (text, label) rows: the label's name in each text, among filler words drawn from a
    million, so that the vocabulary grows with the rows as a real corpus's does."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        filler = " ".join(f"w{rng.randrange(10**6)}" for _ in range(8))
        rows.append((f"{filler} about {label} {filler[:9]}", label))
    return rows
