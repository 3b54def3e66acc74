"""The server goes away mid-run and comes back: the calls keep going, and every run, metric and
trace is written once it is back (the trace writer waits for it up to LLMFLOW_SERVER_WAIT_S). A
server that never comes back ends the run with one line and the `--resume` command, which
completes the run once the server is back, without calling an answered prompt again."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.helpers import write_experiment
from tests.server.conftest import start_mlflow
from tests.server.servers import Postgres
from tests.server.test_team import client_run

pytestmark = pytest.mark.server


def test_a_server_restarted_mid_run_loses_nothing(
    tmp_path: Path, postgres: Postgres, server_root: Path, keyless_openai
):
    server = start_mlflow(
        server_root / "restart", postgres.create_database("mlflow_restart"), workers=1
    )
    keyless_openai.delay_s = 0.25
    try:
        model = {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": f"{keyless_openai.url}/v1",
        }
        path = write_experiment(
            tmp_path, [model], experiment="team-restart", repeats=60, concurrency=2
        )  # 120 calls, ~15 s of answers: some are left once the server has stopped (seconds)
        # a restart on a loaded 2-core machine can take longer than the default wait
        process = client_run(path, server.url, LLMFLOW_SERVER_WAIT_S="600")
        deadline = time.time() + 180
        while len(keyless_openai.generation_requests()) < 5:
            assert process.poll() is None and time.time() < deadline, "no calls started"
            time.sleep(0.2)
        server.stop()  # calls in flight; the run's traces and metrics have nowhere to go
        paid = len(keyless_openai.generation_requests())
        time.sleep(3)
        assert process.poll() is None, "the run gave up while the server was away"
        assert len(keyless_openai.generation_requests()) > paid, "the calls stopped"
        server.start()  # the same port
        assert process.wait(600) == 0, process.stderr.read()
        client = MlflowClient(server.url)
        experiment_id = client.get_experiment_by_name("team-restart").experiment_id
        (variant,) = client.search_runs([experiment_id], "tags.`llmflow.kind` = 'variant'")
        assert variant.data.metrics["n_calls"] == 120 and variant.info.status == "FINISHED"
        traces = client.search_traces(locations=[experiment_id], max_results=500)
        assert len(traces) == 120
    finally:
        keyless_openai.delay_s = 0.0
        server.stop()


def test_a_server_that_never_comes_back_ends_the_run_with_the_resume_command(
    tmp_path: Path, postgres: Postgres, server_root: Path, keyless_openai
):
    server = start_mlflow(server_root / "gone", postgres.create_database("mlflow_gone"), workers=1)
    keyless_openai.delay_s = 0.25
    process = resumed = None
    try:
        model = {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": f"{keyless_openai.url}/v1",
        }
        path = write_experiment(
            tmp_path,
            [model],
            experiment="team-gone",
            repeats=100,
            concurrency=2,
            scorers=[{"type": "not-empty"}, {"type": "regex", "value": "^Echo"}],
        )
        process = client_run(path, server.url, LLMFLOW_SERVER_WAIT_S="3")  # 200 calls, ~25 s
        deadline = time.time() + 180
        while len(keyless_openai.generation_requests()) < 5:
            assert process.poll() is None and time.time() < deadline, "no calls started"
            time.sleep(0.2)
        server.stop()  # and it does not come back
        code = process.wait(120)
        sent = len(keyless_openai.generation_requests())
        stderr = process.stderr.read()
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert code == 1 and "Traceback" not in stderr, stderr
        match = re.fullmatch(
            rf"error: the tracking server at {server.url} stopped answering; your (\d+) finished "
            rf"calls are kept in the journal: resume with llmflow run {path} --resume (\w+) "
            rf"--tracking-uri {server.url}",
            lines[-1],
        )
        assert match, stderr
        kept, parent_id = int(match[1]), match[2]
        assert 0 < kept < 200 and sent < 200, "the run kept sending calls to a gone server"
        time.sleep(1)
        assert len(keyless_openai.generation_requests()) == sent

        server.start()
        resumed = client_run(path, server.url, "--resume", parent_id)
        assert resumed.wait(600) == 0, resumed.stderr.read()
        assert len(keyless_openai.generation_requests()) == sent + 200 - kept, (
            "answered calls sent again"
        )
        client = MlflowClient(server.url)
        experiment_id = client.get_experiment_by_name("team-gone").experiment_id
        (variant,) = client.search_runs([experiment_id], "tags.`llmflow.kind` = 'variant'")
        assert variant.data.metrics["n_calls"] == 200 and variant.info.status == "FINISHED"
        traces = client.search_traces(locations=[experiment_id], max_results=500)
        assert len(traces) == 200
        for trace in traces:  # those written before the outage too, each score once
            names = sorted(a.name for a in trace.info.assessments if a.valid is not False)
            assert names == ["not-empty", "regex"], names
    finally:
        keyless_openai.delay_s = 0.0
        server.stop()
        for run in (process, resumed):
            if run is not None and run.poll() is None:
                run.kill()
