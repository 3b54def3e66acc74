"""Against a real `mlflow server` on 127.0.0.1: every trace lands, unpriced and cached calls
included (a placeholder cost once made the server refuse whole batches, silently)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from llmflow.cli import app
from tests.helpers import free_port, write_experiment


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'server.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--serve-artifacts",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, process, root / "server.log")
        yield url, root
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            pytest.skip(f"mlflow server could not be started: {log.read_text()[-500:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.skip(f"mlflow server did not answer within {timeout:.0f} s")


def test_every_trace_lands_on_a_remote_server(
    tmp_path: Path, mlflow_server: str, fake_openai, fake_ollama, monkeypatch
):
    url, server_root = mlflow_server
    password = "server-password-81c2"
    # a password in the tracking URI reaches no artifact, report, table or output
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url.replace("http://", f"http://me:{password}@"))
    models = [
        # self-hosted: unpriced; the key is not needed
        {"provider": "openai", "model": "gpt-4o-mini", "base_url": f"{fake_openai.url}/v1"},
        {"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url},
    ]
    path = write_experiment(tmp_path, models, cache=True, experiment="remote-traces", report=True)
    fake_openai.api_key = None
    try:
        for _ in range(2):  # the second run is answered from the cache
            result = CliRunner().invoke(app, ["run", str(path)])
            assert result.exit_code == 0, result.output
            assert password not in result.output
    finally:
        fake_openai.api_key = "test-openai-key"
    for file in (p for root in (server_root, tmp_path) for p in root.rglob("*") if p.is_file()):
        assert password.encode() not in file.read_bytes(), f"the password leaked into {file}"
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("remote-traces")
    runs = client.search_runs([experiment.experiment_id], "tags.`llmflow.kind` = 'variant'")
    calls = sum(int(r.data.metrics["n_calls"]) for r in runs)
    traces = client.search_traces(locations=[experiment.experiment_id], max_results=500)
    assert calls == 2 * 2 * 2 and len(traces) == calls
    for trace in traces:
        cost = trace.info.trace_metadata.get("mlflow.trace.cost")
        if trace.data.spans[0].attributes.get("mlflow.llm.provider") == "openai":
            assert cost is None or '"total_cost": 0.0' in cost, "MLflow guessed a price"


def test_a_run_id_prefix_resolves_on_a_server(mlflow_server):
    """--run takes a unique prefix on a server too: the REST API takes the same LIKE filter."""
    from llmflow.errors import LlmflowError
    from llmflow.tracking.run_lookup import resolve_run
    from llmflow.tracking.runs import KIND_PARENT, KIND_VARIANT, TAG_KIND

    url, _ = mlflow_server
    client = MlflowClient(url)
    experiment = client.get_experiment(client.create_experiment("prefixes"))
    parent = client.create_run(experiment.experiment_id, tags={TAG_KIND: KIND_PARENT}).info.run_id
    tags = {TAG_KIND: KIND_VARIANT, "mlflow.parentRunId": parent}
    child = client.create_run(experiment.experiment_id, tags=tags).info.run_id
    assert resolve_run(client, parent[:8], KIND_PARENT, experiment) == parent
    assert resolve_run(client, child[:8], KIND_VARIANT) == child
    assert resolve_run(client, child, KIND_VARIANT) == child
    with pytest.raises(LlmflowError, match="no run 'f00d' in experiment 'prefixes'"):
        resolve_run(
            client, "f00d" if not parent.startswith("f00d") else "0ddf", KIND_PARENT, experiment
        )
