"""End to end: the real CLI, the real SDKs against the fake servers, a real sqlite MLflow store."""

import json
from pathlib import Path

import genai_prices
import pytest
from mlflow import MlflowClient

from llmflow.tracking.traces import call_of
from tests.helpers import invoke_cli, ollama_models, write_experiment

GEMINI_KEY = "canary-gemini-key-5f0c1d"
OPENAI_KEY = "canary-openai-key-77aa01"


@pytest.fixture
def keyed(fake_gemini, fake_openai):
    fake_gemini.api_key, fake_openai.api_key = GEMINI_KEY, OPENAI_KEY
    yield {"GEMINI_API_KEY": GEMINI_KEY, "OPENAI_API_KEY": OPENAI_KEY}
    fake_gemini.api_key, fake_openai.api_key = "test-gemini-key", "test-openai-key"


def three_providers(fake_gemini, fake_ollama, fake_openai) -> list[dict]:
    return [
        {
            "provider": "gemini",
            "model": "gemini-2.5-flash",
            "temperature": 0.7,
            "max_tokens": 512,
            "base_url": fake_gemini.url,
        },
        {
            "provider": "ollama",
            "model": "llama3.1",
            "temperature": 0.6,
            "base_url": fake_ollama.url,
        },
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": f"{fake_openai.url}/v1",
            "api_key_env": "OPENAI_API_KEY",
            "price_as": "openai/gpt-4o-mini",
        },
    ]


def price(model: str, provider: str, input_tokens: int, output_tokens: int) -> float:
    usage = genai_prices.Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    return float(genai_prices.calc_price(usage, model, provider_id=provider).total_price)


def test_run_then_compare_has_exact_tokens_and_costs(
    tmp_path: Path, fake_gemini, fake_ollama, fake_openai, keyed
):
    path = write_experiment(tmp_path, three_providers(fake_gemini, fake_ollama, fake_openai))
    result = invoke_cli("run", str(path), env=keyed)
    assert result.exit_code == 0, result.output
    assert "| gemini-2.5-flash | gemini | 0.7 |" in result.stdout  # the seed's table, first columns

    shown = invoke_cli("compare", "--experiment", "provider-comparison", "--format", "json")
    rows = {row["provider"]: row for row in json.loads(shown.stdout)}
    assert set(rows) == {"gemini", "ollama", "openai"}
    gemini, ollama, openai = rows["gemini"], rows["ollama"], rows["openai"]
    assert (gemini["input_tokens"], gemini["output_tokens"], gemini["total_tokens"]) == (24, 60, 84)
    assert gemini["estimated_cost_usd"] == pytest.approx(
        2 * price("gemini-2.5-flash", "google", 12, 30)
    )
    assert (ollama["total_tokens"], ollama["estimated_cost_usd"], ollama["cost_kind"]) == (
        136,
        0,
        "local",
    )
    assert openai["total_tokens"] == 88
    assert openai["estimated_cost_usd"] == pytest.approx(2 * price("gpt-4o-mini", "openai", 19, 25))
    for row in rows.values():
        assert (row["n_calls"], row["n_errors"], row["task_type"]) == (2, 0, "chat")
        assert row["latency_p50_s"] > 0 and row["latency_p95_s"] >= row["latency_p50_s"]
    assert gemini["temperature"] == 0.7
    expected_keys = {
        "model",
        "provider",
        "temperature",
        "task_type",
        "latency_s",
        "latency_p50_s",
        "latency_p95_s",
        "total_tokens",
        "input_tokens",
        "output_tokens",
        "estimated_cost_usd",
        "n_calls",
        "n_errors",
        "run_id",
    }
    assert expected_keys <= set(gemini)


def test_mlflow_holds_params_metrics_artifacts_and_one_trace_per_call(
    tmp_path: Path, tracking_uri: str, fake_gemini, fake_ollama, fake_openai, keyed
):
    path = write_experiment(
        tmp_path, three_providers(fake_gemini, fake_ollama, fake_openai), repeats=2
    )
    assert invoke_cli("run", str(path), env=keyed).exit_code == 0
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("provider-comparison")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("llmflow.kind") == "experiment-run")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 3
    assert parent.data.tags["llmflow.config_sha256"]
    assert parent.data.tags["llmflow.version"]
    parent_files = {f.path for f in client.list_artifacts(parent.info.run_id, "config")}
    assert parent_files == {"config/compare.yaml"}

    gemini = next(r for r in children if r.data.params["provider"] == "gemini")
    params = gemini.data.params
    assert {
        k: params[k] for k in ("provider", "model", "temperature", "task_type", "max_tokens")
    } == {
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "temperature": "0.7",
        "task_type": "chat",
        "max_tokens": "512",
    }
    metrics = gemini.data.metrics
    for key in (
        "latency_s",
        "latency_p50_s",
        "latency_p95_s",
        "ttft_p50_s",
        "output_tokens_per_s",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "estimated_cost_usd",
        "n_calls",
        "n_errors",
    ):
        assert key in metrics, key
    assert metrics["n_calls"] == 4 and metrics["total_tokens"] == 4 * 42
    files = {f.path for f in client.list_artifacts(gemini.info.run_id)}
    assert {"calls.json", "responses.md"} <= files
    table = json.loads(
        Path(client.download_artifacts(gemini.info.run_id, "calls.json")).read_text()
    )
    assert len(table["data"]) == 4
    responses = Path(client.download_artifacts(gemini.info.run_id, "responses.md")).read_text()
    assert "What does MLflow track?" in responses and "Echo: What does MLflow track?" in responses

    traces = client.search_traces(locations=[experiment.experiment_id], max_results=100)
    assert len(traces) == 12
    by_run = {
        child.info.run_id: client.search_traces(
            locations=[experiment.experiment_id], run_id=child.info.run_id, max_results=100
        )
        for child in children
    }
    assert {run_id: len(t) for run_id, t in by_run.items()} == {c.info.run_id: 4 for c in children}
    tags = {call_of(t.info) for t in by_run[gemini.info.run_id]}
    assert tags == {"explain-mlflow#0", "explain-mlflow#1", "latency-tips#0", "latency-tips#1"}
    assert by_run[gemini.info.run_id][0].info.token_usage["total_tokens"] == 42
    span = by_run[gemini.info.run_id][0].data.spans[0]
    assert span.span_type == "CHAT_MODEL"
    assert span.attributes["mlflow.chat.tokenUsage"] == {
        "input_tokens": 12,
        "output_tokens": 30,
        "total_tokens": 42,
    }
    assert span.attributes["mlflow.llm.model"] == "gemini-2.5-flash"
    assert span.attributes["mlflow.llm.provider"] == "gemini"
    assert span.attributes["mlflow.llm.cost"]["total_cost"] == pytest.approx(
        price("gemini-2.5-flash", "google", 12, 30)
    )
    assert span.inputs["messages"][-1]["role"] == "user"
    assert span.outputs["choices"][0]["message"]["content"].startswith("Echo: ")


def test_api_keys_never_reach_the_store(
    tmp_path: Path, fake_gemini, fake_ollama, fake_openai, keyed
):
    path = write_experiment(tmp_path, three_providers(fake_gemini, fake_ollama, fake_openai))
    result = invoke_cli("run", str(path), env=keyed)
    assert result.exit_code == 0
    stored = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "mlflow.db" for p in stored)
    for file in stored:
        data = file.read_bytes()
        for key in (GEMINI_KEY, OPENAI_KEY):
            assert key.encode() not in data, f"{key} leaked into {file}"
    assert GEMINI_KEY not in result.output and OPENAI_KEY not in result.output


def test_passwords_in_urls_never_reach_the_store_or_the_terminal(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    """A base_url with user:password@ (one that answers, one that does not), and a password
    in a URL of the error message: redacted in params, artifacts, tags, journal, output."""
    password = "url-password-3e9d1"
    port = fake_ollama.url.rsplit(":", 1)[1]
    models = [
        {
            "provider": "ollama",
            "model": "llama3.1",
            "base_url": f"http://me:{password}@127.0.0.1:{port}",
        },
        {
            "provider": "ollama",
            "model": "llama3.2",
            "base_url": f"http://me:{password}@127.0.0.1:9",
        },
    ]
    path = write_experiment(tmp_path, models, report=True)
    result = invoke_cli("run", str(path), "--register")
    assert result.exit_code == 1  # the second one is unreachable and skipped
    assert "skipped" in result.stderr
    for file in (p for p in tmp_path.rglob("*") if p.is_file() and p != path):
        assert password.encode() not in file.read_bytes(), f"the password leaked into {file}"
    assert password not in result.output


def test_missing_key_skips_that_model_and_runs_the_others(
    tmp_path: Path, fake_gemini, fake_ollama, fake_openai, keyed
):
    path = write_experiment(tmp_path, three_providers(fake_gemini, fake_ollama, fake_openai))
    result = invoke_cli(
        "run", str(path), env={"OPENAI_API_KEY": OPENAI_KEY, "GEMINI_API_KEY": None}
    )
    assert result.exit_code == 1
    assert "GEMINI_API_KEY or GOOGLE_API_KEY is not set: export it" in result.stderr
    assert (
        len(fake_ollama.generation_requests()) == 2 and len(fake_openai.generation_requests()) == 2
    )
    rows = json.loads(invoke_cli("compare", "-e", "provider-comparison", "-f", "json").stdout)
    skipped = {r["provider"]: r["skipped"] for r in rows}
    assert skipped["gemini"].startswith("GEMINI_API_KEY") and skipped["ollama"] is None


def test_unreachable_server_is_skipped_with_the_fix(tmp_path: Path, fake_ollama):
    models = [
        {"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url},
        {
            "provider": "ollama",
            "model": "llama3.2",
            "name": "down",
            "base_url": "http://127.0.0.1:9",
        },
    ]
    result = invoke_cli("run", str(write_experiment(tmp_path, models)))
    assert result.exit_code == 1
    assert "down: ProviderUnavailable" in result.stderr and "ollama serve" in result.stderr


def test_failed_calls_are_recorded_and_the_run_goes_on(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    fake_ollama.inject("500", "500")
    models = [
        {"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url, "max_retries": 0}
    ]
    result = invoke_cli("run", str(write_experiment(tmp_path, models, repeats=2)))
    assert result.exit_code == 1
    rows = json.loads(invoke_cli("compare", "-e", "provider-comparison", "-f", "json").stdout)
    assert (rows[0]["n_calls"], rows[0]["n_errors"]) == (4, 2)
    client = MlflowClient(tracking_uri)
    table = json.loads(Path(client.download_artifacts(rows[0]["run_id"], "calls.json")).read_text())
    errors = [row[table["columns"].index("error")] for row in table["data"]]
    assert sum(1 for e in errors if e and e.startswith("ServerError")) == 2


def test_bad_experiment_file_exits_2_before_anything(tmp_path: Path):
    path = write_experiment(
        tmp_path, [{"provider": "ollama", "model": "llama3.1", "temperature": 9}]
    )
    result = invoke_cli("run", str(path))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {path}: models[0].temperature: must be between 0 and 2"
    assert not (tmp_path / "mlflow.db").exists()


def test_compare_unknown_experiment_is_one_line(tmp_path: Path):
    from llmflow.tracking.runs import RunStore

    RunStore(f"sqlite:///{tmp_path / 'mlflow.db'}")  # the working folder's store
    result = invoke_cli("compare", "-e", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no MLflow experiment named 'nope'")


def test_compare_formats(tmp_path: Path, fake_ollama):
    models = [{"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}]
    invoke_cli("run", str(write_experiment(tmp_path, models)))
    md = invoke_cli("compare", "-e", "provider-comparison", "-f", "md").stdout
    seed_columns = "Model | Provider | Temperature | Latency (s) | Total tokens | Estimated cost"
    assert md.splitlines()[0].startswith(f"| {seed_columns} | Task type |")
    csv_text = invoke_cli("compare", "-e", "provider-comparison", "-f", "csv").stdout
    assert csv_text.splitlines()[0].startswith("model,provider,temperature,task_type,latency_s")


def test_unpriced_calls_get_no_cost_in_mlflow_not_mlflows_guess(
    tmp_path: Path, tracking_uri: str, fake_openai
):
    """A self-hosted 'gpt-4o-mini' is unpriced: MLflow must not price it from its catalog."""
    models = [{"provider": "openai", "model": "gpt-4o-mini", "base_url": f"{fake_openai.url}/v1"}]
    fake_openai.api_key = None
    try:
        assert invoke_cli("run", str(write_experiment(tmp_path, models))).exit_code == 0
    finally:
        fake_openai.api_key = "test-openai-key"
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("provider-comparison")
    traces = client.search_traces(locations=[experiment.experiment_id])
    assert len(traces) == 2
    for trace in traces:
        assert "mlflow.trace.cost" not in trace.info.trace_metadata
        span = trace.data.spans[0]
        assert span.attributes.get("mlflow.llm.cost") is None
        assert span.attributes["llmflow.token_usage"]["total_tokens"] == 44
    rows = json.loads(invoke_cli("compare", "-e", "provider-comparison", "-f", "json").stdout)
    assert rows[0]["estimated_cost_usd"] is None and rows[0]["cost_kind"] == "unpriced"


def test_empty_answers_are_warned_of_once(
    tmp_path: Path, tracking_uri: str, fake_ollama, monkeypatch
):
    monkeypatch.setattr(fake_ollama, "reply", lambda last: "")
    result = invoke_cli("run", str(write_experiment(tmp_path, ollama_models(fake_ollama))))
    assert result.exit_code == 0, result.output
    assert "2 of 2 answers of llama3.1 were empty" in result.stdout
    assert "were empty" not in result.stderr  # said once, under the table
