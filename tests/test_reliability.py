"""Cache, budget, injected faults, malformed files (test_interruption.py: journal, kill -9,
Ctrl-C and resume)."""

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.helpers import (
    compare_rows,
    invoke_cli,
    ollama_models,
    unique_prompts,
    write_experiment,
)

# --- cache -------------------------------------------------------------------------------------


def test_a_second_run_measures_again_unless_the_cache_is_asked_for(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    path = write_experiment(tmp_path, ollama_models(fake_ollama), repeats=2)
    assert invoke_cli("run", str(path)).exit_code == 0
    assert invoke_cli("run", str(path)).exit_code == 0
    assert len(fake_ollama.generation_requests()) == 8, "no cache unless asked: a rerun measures"
    metrics = MlflowClient(tracking_uri).get_run(compare_rows()[0]["run_id"]).data.metrics
    assert metrics["n_cached"] == 0 and metrics["n_timed"] == 4


def test_second_run_is_served_from_the_cache(tmp_path: Path, tracking_uri: str, fake_ollama):
    path = write_experiment(tmp_path, ollama_models(fake_ollama), repeats=2)
    assert invoke_cli("run", str(path), "--cache").exit_code == 0
    assert len(fake_ollama.generation_requests()) == 4
    second = invoke_cli("run", str(path), "--cache")
    assert second.exit_code == 0 and "4 call(s) answered from the cache" in second.stderr
    assert len(fake_ollama.generation_requests()) == 4, "a cached call must not be sent again"
    run_id = compare_rows()[0]["run_id"]
    metrics = MlflowClient(tracking_uri).get_run(run_id).data.metrics
    assert metrics["n_cached"] == 4 and metrics["n_timed"] == 0
    assert "latency_p50_s" not in metrics, "cached calls never enter latency statistics"
    assert metrics["total_tokens"] == 4 * 68 and metrics["estimated_cost_usd"] == 0
    assert invoke_cli("run", str(path), "--no-cache").exit_code == 0
    assert len(fake_ollama.generation_requests()) == 8


def test_cache_false_and_failed_calls_are_never_cached(tmp_path: Path, fake_ollama):
    fake_ollama.inject("500")
    path = write_experiment(tmp_path, ollama_models(fake_ollama, max_retries=0), cache=True)
    assert invoke_cli("run", str(path)).exit_code == 1
    assert invoke_cli("run", str(path)).exit_code == 0  # the failed one is sent again
    assert len(fake_ollama.generation_requests()) == 3
    off = write_experiment(tmp_path, ollama_models(fake_ollama), name="off.yaml", cache=False)
    invoke_cli("run", str(off))
    assert len(fake_ollama.generation_requests()) == 5


def test_a_cache_that_is_not_sqlite_is_one_line_before_any_run(tmp_path: Path, fake_ollama):
    (tmp_path / "notes.txt").write_text("not a database\n" * 10)
    path = write_experiment(tmp_path, ollama_models(fake_ollama), cache="notes.txt")
    result = invoke_cli("run", str(path))
    assert result.exit_code == 2 and "notes.txt is not a sqlite database" in result.stderr
    assert not (tmp_path / "mlflow.db").exists() and fake_ollama.generation_requests() == []
    assert invoke_cli("run", str(path), "--no-cache").exit_code == 0


def test_run_cache_forces_the_user_cache_on(tmp_path: Path, fake_ollama):
    path = write_experiment(tmp_path, ollama_models(fake_ollama))
    assert invoke_cli("run", str(path), "--cache").exit_code == 0
    assert "1 call(s) answered" not in invoke_cli("run", str(path)).stderr  # the file says no cache
    assert "2 call(s) answered from the cache" in invoke_cli("run", str(path), "--cache").stderr


# --- budget ------------------------------------------------------------------------------------


def gemini(fake, **extra) -> list[dict]:
    return [
        {
            "provider": "gemini",
            "model": "gemini-2.5-flash",
            "base_url": fake.url,
            "max_tokens": 1000,
            **extra,
        }
    ]


def test_preflight_refuses_a_plan_over_budget(tmp_path: Path, fake_gemini):
    env = {"GEMINI_API_KEY": "test-gemini-key"}
    path = write_experiment(tmp_path, gemini(fake_gemini), repeats=10)
    result = invoke_cli("run", str(path), "--max-cost", "0.001", env=env)
    assert result.exit_code == 2
    assert "over max_cost_usd $0.001" in result.stderr and "\n" not in result.stderr.strip()
    assert fake_gemini.generation_requests() == [] and not (tmp_path / "mlflow.db").exists()
    assert invoke_cli("run", str(path), "--max-cost", "1", env=env).exit_code == 0


def test_budget_needs_max_tokens_and_a_price(tmp_path: Path, fake_gemini, fake_openai):
    no_cap = write_experiment(tmp_path, gemini(fake_gemini, max_tokens=None), max_cost_usd=1)
    result = invoke_cli("run", str(no_cap), env={"GEMINI_API_KEY": "test-gemini-key"})
    assert (
        result.exit_code == 2
        and "models[0].max_tokens: is required under max_cost_usd" in result.stderr
    )
    unpriced = [
        {
            "provider": "openai",
            "model": "my-model",
            "base_url": f"{fake_openai.url}/v1",
            "max_tokens": 10,
        }
    ]
    path = write_experiment(tmp_path, unpriced, name="u.yaml", max_cost_usd=1)
    result = invoke_cli("run", str(path))
    assert result.exit_code == 2 and "allow_unpriced: true" in result.stderr


def test_running_budget_never_passes_the_limit():
    from llmflow.budget import Budget

    budget = Budget(1.0)
    held = [budget.reserve(0.3) for _ in range(4)]
    assert held[3] is None, "a fourth worst case of 0.3 would pass 1.0"
    for reservation in held[:3]:
        budget.settle(reservation, 0.25)
    assert budget.spent_usd == 0.75
    assert budget.reserve(0.3) is None and budget.reserve(0.25) is not None


# --- faults ------------------------------------------------------------------------------------


def test_twenty_percent_faults_every_call_accounted_for(
    tmp_path: Path, tracking_uri: str, fake_openai
):
    fake_openai.fault_rate, fake_openai.hang_s = 0.2, 1.0
    models = [
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": f"{fake_openai.url}/v1",
            "api_key_env": "K",
            "max_retries": 1,
            "timeout_s": 0.5,
        }
    ]
    path = write_experiment(tmp_path, models, prompts=unique_prompts(20), repeats=2, concurrency=8)
    result = invoke_cli("run", str(path), env={"K": "test-openai-key"})
    assert result.exit_code in (0, 1)
    (row,) = compare_rows()
    client = MlflowClient(tracking_uri)
    table = json.loads(Path(client.download_artifacts(row["run_id"], "calls.json")).read_text())
    errors = [r[table["columns"].index("error")] for r in table["data"]]
    assert row["n_calls"] == len(errors) == 40
    assert row["n_errors"] == sum(e is not None for e in errors)
    known = ("RateLimited", "ServerError", "ProviderTimeout", "BadResponse", "ProviderUnavailable")
    assert all(e.split(":")[0] in known for e in errors if e)
    injected = len(fake_openai.generation_requests()) - len(fake_openai.completed)
    assert injected > 0, "the fake injected no fault: the test proved nothing"
    experiment = client.get_experiment_by_name("provider-comparison")
    assert len(client.search_traces(locations=[experiment.experiment_id], max_results=100)) == 40


# --- malformed files ---------------------------------------------------------------------------

GOOD = {"provider": "ollama", "model": "llama3.1"}
MALFORMED = [
    ({"models": [{**GOOD, "temperature": -1}]}, "models[0].temperature"),
    ({"models": [{**GOOD, "temperature": 2.5}]}, "models[0].temperature"),
    ({"models": [{**GOOD, "temperature": "hot"}]}, "models[0].temperature"),
    ({"models": [{**GOOD, "top_p": 2}]}, "models[0].top_p"),
    ({"models": [{**GOOD, "max_tokens": -5}]}, "models[0].max_tokens"),
    ({"models": [{**GOOD, "max_tokens": "lots"}]}, "models[0].max_tokens"),
    ({"models": [{**GOOD, "seed": "x"}]}, "models[0].seed"),
    ({"models": [{**GOOD, "stream": "maybe"}]}, "models[0].stream"),
    ({"models": [{**GOOD, "timeout_s": 0}]}, "models[0].timeout_s"),
    ({"models": [{**GOOD, "max_retries": -1}]}, "models[0].max_retries"),
    ({"models": [{**GOOD, "max_concurrency": 0}]}, "models[0].max_concurrency"),
    ({"models": [{**GOOD, "cost_per_hour_usd": -1}]}, "models[0].cost_per_hour_usd"),
    ({"models": [{**GOOD, "price_per_mtok": {"input": 1}}]}, "models[0].price_per_mtok.output"),
    ({"models": [{**GOOD, "price_as": "nonsense"}]}, "models[0].price_as"),
    ({"models": [{**GOOD, "n_ctx": 1024}]}, "models[0].n_ctx"),
    ({"models": [{**GOOD, "temprature": 0.5}]}, "models[0].temprature"),
    ({"models": [{"provider": "bard", "model": "x"}]}, "models[0].provider"),
    ({"models": [{"provider": "openai"}]}, "models[0].model"),
    (
        {"models": [{"provider": "local", "prompt_template": "no placeholder"}]},
        "models[0].prompt_template",
    ),
    ({"models": [GOOD, {**GOOD, "stop": "x"}]}, "models[1].stop"),
    ({"models": []}, "models"),
    ({"models": "ollama"}, "models"),
    ({"repeats": 0}, "repeats"),
    ({"concurrency": 0}, "concurrency"),
    ({"experiment": ""}, "experiment"),
    ({"prompts": []}, "prompts"),
    ({"prompts": [{"id": "a"}]}, "prompts[0].user"),
    ({"prompts": [{"user": "hi"}]}, "prompts[0].id"),
    ({"max_cost_usd": -1}, "max_cost_usd"),
    ({"promote": {"require": ["p95 < fast"]}}, "promote.require"),
]


@pytest.mark.parametrize(("change", "field"), MALFORMED, ids=[f for _, f in MALFORMED])
def test_malformed_files_give_one_line_exit_2_and_no_run(tmp_path: Path, change: dict, field: str):
    fields = {"models": [GOOD], **change}
    path = write_experiment(tmp_path, **fields)
    result = invoke_cli("run", str(path))
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert "\n" not in message
    assert message.startswith(f"error: {path}: {field}"), message
    assert not (tmp_path / "mlflow.db").exists()


def test_a_cut_off_stream_is_retried_then_failed_never_a_success(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    fake_ollama.truncate_stream = True
    path = write_experiment(
        tmp_path, ollama_models(fake_ollama, max_retries=1), prompts=unique_prompts(1)
    )
    assert invoke_cli("run", str(path)).exit_code == 1
    assert len(fake_ollama.generation_requests()) == 2, "retried once, as max_retries says"
    (row,) = compare_rows()
    assert (row["n_calls"], row["n_errors"]) == (1, 1) and row["latency_p50_s"] is None
    client = MlflowClient(tracking_uri)
    table = json.loads(Path(client.download_artifacts(row["run_id"], "calls.json")).read_text())
    error = table["data"][0][table["columns"].index("error")]
    assert error.startswith("StreamCutOff: ollama: the stream was cut off")
