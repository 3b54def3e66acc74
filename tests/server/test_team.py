"""A team's setup: `mlflow server` on PostgreSQL, traces in batches, several clients at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from llmflow.cli import app
from llmflow.tracking.traces import call_of
from tests.helpers import write_experiment
from tests.server.servers import MlflowServer

pytestmark = pytest.mark.server

OTLP_TRACES = "/v1/traces"  # MLflow's batched span ingestion (OTLP over HTTP)


def _openai(fake_openai) -> list[dict]:
    return [{"provider": "openai", "model": "gpt-4o-mini", "base_url": f"{fake_openai.url}/v1"}]


def _runs(client: MlflowClient, experiment_id: str, kind: str) -> list:
    return client.search_runs([experiment_id], f"tags.`llmflow.kind` = '{kind}'", max_results=500)


def _all_traces(client: MlflowClient, experiment_id: str) -> list:
    traces, token = [], None
    while True:
        page = client.search_traces(
            locations=[experiment_id], max_results=500, page_token=token, include_spans=False
        )
        traces += page
        token = page.token
        if not token:
            return traces


def test_a_thousand_calls_leave_a_thousand_traces_in_batches(
    tmp_path: Path, pg_mlflow: MlflowServer, keyless_openai
):
    path = write_experiment(
        tmp_path, _openai(keyless_openai), experiment="team-thousand", repeats=500, concurrency=16
    )
    before = pg_mlflow.requests_to(OTLP_TRACES)
    result = CliRunner().invoke(app, ["run", str(path), "--tracking-uri", pg_mlflow.url])
    assert result.exit_code == 0, result.output
    client = MlflowClient(pg_mlflow.url)
    experiment = client.get_experiment_by_name("team-thousand")
    (variant,) = _runs(client, experiment.experiment_id, "variant")
    assert variant.data.metrics["n_calls"] == 1000
    traces = _all_traces(client, experiment.experiment_id)
    assert len(traces) == 1000
    assert len({t.info.tags["mlflow.traceName"] for t in traces}) == 1000
    batches = pg_mlflow.requests_to(OTLP_TRACES) - before
    # batches of up to 100 traces, never one request per trace; on a busy machine the writer's
    # 50 ms gathering window closes early more often, so allow a few more, smaller batches
    assert 10 <= batches <= 250, f"{batches} span-ingestion requests for 1,000 traces"


def client_run(path: Path, url: str, *options: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "llmflow.cli", "run", str(path), "--tracking-uri", url, *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLFLOW_LOGGING_LEVEL": "WARNING", **env},
    )


def test_four_clients_at_once_lose_nothing(
    tmp_path: Path, pg_mlflow: MlflowServer, keyless_openai, fake_ollama
):
    models = [
        *_openai(keyless_openai),
        {"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url},
    ]
    paths = [
        write_experiment(
            tmp_path, models, name=f"client{i}.yaml", experiment="team-four", repeats=10
        )
        for i in range(4)
    ]  # 2 models x 2 prompts x 10 repeats = 40 calls per client
    clients = [client_run(path, pg_mlflow.url) for path in paths]
    outcomes = [(c.wait(600), c.stderr.read()) for c in clients]
    failed = [err for code, err in outcomes if code != 0]
    assert not failed, "\n---\n".join(failed)
    client = MlflowClient(pg_mlflow.url)
    experiment_id = client.get_experiment_by_name("team-four").experiment_id
    parents = _runs(client, experiment_id, "experiment-run")
    variants = _runs(client, experiment_id, "variant")
    assert len(parents) == 4 and len(variants) == 8
    assert all(v.info.status == "FINISHED" for v in [*parents, *variants])
    assert sum(int(v.data.metrics["n_calls"]) for v in variants) == 160
    traces = _all_traces(client, experiment_id)
    assert len(traces) == 160
    for variant in variants:  # each variant run's own 20 traces, linked to it
        linked = client.search_traces(
            locations=[experiment_id], run_id=variant.info.run_id, max_results=100
        )
        assert len(linked) == 20
    for parent in parents:
        _check_compare_and_report(tmp_path, pg_mlflow.url, parent.info.run_id)


def _check_compare_and_report(tmp_path: Path, url: str, parent_run_id: str) -> None:
    common = ["-e", "team-four", "--run", parent_run_id, "--tracking-uri", url]
    compared = CliRunner().invoke(app, ["compare", *common, "-f", "json"])
    assert compared.exit_code == 0, compared.output
    rows = json.loads(compared.stdout)
    assert len(rows) == 2 and all(r["n_calls"] == 20 and r["n_errors"] == 0 for r in rows)
    out = tmp_path / f"report-{parent_run_id}"
    reported = CliRunner().invoke(app, ["report", *common, "--out", str(out)])
    assert reported.exit_code == 0, reported.output
    assert (out / "results.json").exists()


def _scores(client: MlflowClient, experiment_id: str) -> dict[str, list[tuple[str, bool]]]:
    """Each trace's valid assessments as (name, passed), by call tag."""
    return {
        call_of(t.info): sorted(
            (a.name, a.metadata["passed"] == "true")
            for a in client.get_trace(t.info.trace_id).info.assessments
            if a.valid is not False
        )
        for t in _all_traces(client, experiment_id)
    }


def test_scores_reach_the_server_as_assessments_and_rescoring_replaces_them(
    tmp_path: Path, pg_mlflow: MlflowServer, keyless_openai
):
    prompts = [
        {"id": "a", "user": "one two", "expected": "one two three four"},  # ROUGE-L F1 0.571
        {"id": "b", "user": "three"},
    ]
    scorers = [{"type": "not-empty"}, {"type": "rouge-l", "threshold": 0.5}]
    fields = {"experiment": "team-scored", "prompts": prompts, "repeats": 2}
    path = write_experiment(tmp_path, _openai(keyless_openai), scorers=scorers, **fields)
    result = CliRunner().invoke(app, ["run", str(path), "--tracking-uri", pg_mlflow.url])
    assert result.exit_code == 0, result.output
    client = MlflowClient(pg_mlflow.url)
    experiment_id = client.get_experiment_by_name("team-scored").experiment_id
    both, filled = [("not-empty", True), ("rouge-l", True)], [("not-empty", True)]
    assert _scores(client, experiment_id) == {
        "a#0": both,
        "a#1": both,
        "b#0": filled,
        "b#1": filled,
    }

    stricter = [{"type": "not-empty"}, {"type": "rouge-l", "threshold": 0.6}]
    edited = write_experiment(
        tmp_path, _openai(keyless_openai), name="edited.yaml", scorers=stricter, **fields
    )
    score = ["score", "-e", "team-scored", "--config", str(edited)]
    result = CliRunner().invoke(app, [*score, "--tracking-uri", pg_mlflow.url])
    assert result.exit_code == 0, result.output
    failed = [("not-empty", True), ("rouge-l", False)]
    assert _scores(client, experiment_id) == {
        "a#0": failed,
        "a#1": failed,
        "b#0": filled,
        "b#1": filled,
    }


def test_a_short_run_id_and_the_registry_refresh_work_on_the_server(
    tmp_path: Path, pg_mlflow: MlflowServer, keyless_openai
):
    """`score --run <8 characters>` finds the run through the REST API, and the version
    registered from it records the new pass rate (PostgreSQL's LIKE and tag search)."""
    models = [{**_openai(keyless_openai)[0], "register_as": "team_rescored"}]
    fields = {"experiment": "team-short-ids", "prompts": [{"id": "a", "user": "one"}]}
    path = write_experiment(tmp_path, models, scorers=[{"type": "not-empty"}], **fields)
    uri = ["--tracking-uri", pg_mlflow.url]
    assert CliRunner().invoke(app, ["run", str(path), *uri]).exit_code == 0
    client = MlflowClient(pg_mlflow.url)
    (parent,) = _runs(
        client, client.get_experiment_by_name("team-short-ids").experiment_id, "experiment-run"
    )
    failing = [{"type": "icontains", "value": "never said"}]
    edited = write_experiment(tmp_path, models, name="edited.yaml", scorers=failing, **fields)
    short = parent.info.run_id[:8]
    score = ["score", "-e", "team-short-ids", "--run", short, "--config", str(edited), *uri]
    result = CliRunner().invoke(app, score)
    assert result.exit_code == 0, result.output
    assert "registry: team_rescored v1 now records pass_rate 1 -> 0" in result.stdout
    listed = json.loads(CliRunner().invoke(app, ["models", "--json", *uri]).stdout)
    (version,) = [v for v in listed if v["name"] == "team_rescored"]
    assert version["metrics"]["pass_rate"] == 0.0
