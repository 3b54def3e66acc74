"""Claude everywhere the other providers go, end to end: the real CLI and anthropic SDK against
the fake Messages API, a real sqlite MLflow store. Judges, the cache, the registry (a pyfunc that
loads and predicts), task classify, the budget, resume, and the MLflow trace's tokens and cost.

Known answers: each call reports 21 uncached input tokens, 500 read from the prompt cache and 300
written to it (100 of them for an hour), 33 output tokens. llmflow counts 821 input tokens.
claude-sonnet-4-5 ($3/Mtok in, $15 out, $0.30 cache read, $3.75 write, $6 one-hour write):
21*3 + 500*0.30 + 200*3.75 + 100*6 + 33*15 = 2,058 micro-dollars a call. claude-haiku-4-5 ($1,
$5, $0.10, $1.25, $2), the judge: 21 + 50 + 250 + 200 + 165 = 686 micro-dollars a call.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from llmflow.tracking import eval_view
from llmflow.tracking.traces import call_of
from tests.helpers import compare_rows, invoke_cli, unique_prompts, write_experiment
from tests.test_interruption import spawn_run, wait_for_journal_lines

KEY = "canary-anthropic-key-3e9d"
SONNET_CALL_USD = 0.002058
HAIKU_CALL_USD = 0.000686
PROMPTS = [
    {"id": "capital", "user": "What is the capital of France? Paris", "expected": "Paris"},
    {"id": "river", "user": "Name a long river", "expected": "Nile"},
]


@pytest.fixture
def claude(fake_anthropic, monkeypatch):
    fake_anthropic.api_key = KEY
    fake_anthropic.cache_read_tokens = 500
    fake_anthropic.cache_write_tokens, fake_anthropic.cache_write_1h_tokens = 300, 100
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    yield fake_anthropic
    fake_anthropic.api_key = "test-anthropic-key"


def model(fake, **extra) -> dict:
    return {"provider": "anthropic", "model": "claude-sonnet-4-5", "base_url": fake.url, **extra}


def judge(fake) -> dict:
    return {
        "type": "judge",
        "name": "correct",
        "provider": "anthropic",
        "model": "claude-haiku-4-5",
        "base_url": fake.url,
        "rubric": "Is the answer correct?",
    }


def model_requests(fake, name: str = "claude-sonnet-4-5") -> list:
    return [r for r in fake.generation_requests() if r.body["model"] == name]


def test_a_claude_run_is_tracked_judged_cached_and_registered(
    tmp_path: Path, tracking_uri: str, claude
):
    path = write_experiment(
        tmp_path,
        [model(claude)],
        prompts=PROMPTS,
        scorers=[judge(claude)],
        cache="responses.sqlite",
    )
    result = invoke_cli("run", str(path), "--register")
    assert result.exit_code == 0, result.output
    assert KEY not in result.output

    (row,) = compare_rows()
    assert (row["provider"], row["n_calls"], row["n_errors"]) == ("anthropic", 2, 0)
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (1642, 66, 1708)
    assert row["estimated_cost_usd"] == pytest.approx(2 * SONNET_CALL_USD)
    client = MlflowClient(tracking_uri)
    child = client.get_run(row["run_id"])
    assert child.data.params["max_tokens"] == "4096"  # the default, recorded as sent
    assert child.data.metrics["score.correct"] == 0.5  # the echo holds Paris, not Nile
    assert all(r.body["max_tokens"] == 4096 and r.body["stream"] for r in model_requests(claude))

    calls = client.search_traces(locations=[child.info.experiment_id], run_id=child.info.run_id)
    judged = eval_view.judge_traces(client, child.info.experiment_id, child.info.run_id)
    assert sorted(call_of(t.info) for t in calls) == ["capital#0", "river#0"]
    span = calls[0].data.spans[0]
    assert span.attributes["mlflow.chat.tokenUsage"] == {
        "input_tokens": 821,
        "output_tokens": 33,
        "total_tokens": 854,
        "cache_read_input_tokens": 500,
        "cache_creation_input_tokens": 300,
        "cache_creation_input_tokens_above_1hr": 100,
    }
    assert span.attributes["mlflow.llm.provider"] == "anthropic"
    assert span.attributes["mlflow.llm.cost"]["total_cost"] == pytest.approx(SONNET_CALL_USD)
    assert len(judged) == 2 and len(model_requests(claude, "claude-haiku-4-5")) == 2
    judge_span = judged[0].data.spans[0]
    assert judge_span.attributes["mlflow.llm.cost"]["total_cost"] == pytest.approx(HAIKU_CALL_USD)

    version = client.get_model_version("llm_anthropic_chat", "1")
    requirements = Path(
        client.download_artifacts(version.run_id, "model/requirements.txt", str(tmp_path))
    ).read_text()
    assert "anthropic" in requirements.splitlines()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        served = mlflow.pyfunc.load_model("models:/llm_anthropic_chat/1")
        assert served.predict(["Hello Claude"]) == ["Echo: Hello Claude"]
    finally:
        mlflow.set_tracking_uri(None)
    assert len(model_requests(claude)) == 3

    again = invoke_cli("run", str(path))
    assert again.exit_code == 0, again.output
    assert len(model_requests(claude)) == 3, "the second run's answers came from the cache"


def test_a_system_prompt_travels_in_the_system_field(tmp_path: Path, claude):
    prompts = [{**PROMPTS[0], "system": "Answer in French."}]
    path = write_experiment(tmp_path, [model(claude)], prompts=prompts)
    assert invoke_cli("run", str(path)).exit_code == 0
    (request,) = model_requests(claude)
    assert request.body["system"] == "Answer in French."
    assert [m["role"] for m in request.body["messages"]] == ["user"]


def test_classify_with_claude(tmp_path: Path, tracking_uri: str, claude):
    labels = ["billing", "technical", "account", "other"]
    prompts = [
        {"id": "p1", "user": "I was charged twice, a billing problem", "expected": "billing"},
        {"id": "p2", "user": "The app crashes: technical issue", "expected": "technical"},
        {"id": "p3", "user": "Do you have an office in Berlin?", "expected": "other"},
    ]
    path = write_experiment(
        tmp_path, [model(claude)], task="classify", labels=labels, prompts=prompts
    )
    result = invoke_cli("run", str(path))
    assert result.exit_code == 0, result.output
    (row,) = compare_rows()
    metrics = MlflowClient(tracking_uri).get_run(row["run_id"]).data.metrics
    # the fake echoes the ticket: the first two name their label, the third none
    assert row["task_type"] == "classify" and metrics["accuracy"] == pytest.approx(2 / 3)
    assert all("billing" in r.body["system"] for r in model_requests(claude))


def test_the_budget_is_bounded_by_the_default_max_tokens(tmp_path: Path, claude):
    """No max_tokens in the file: the 4096 sent bounds each call, 4096 x $15/Mtok = $0.061."""
    refused = invoke_cli("run", str(write_experiment(tmp_path, [model(claude)], max_cost_usd=0.1)))
    assert refused.exit_code == 2 and "could cost up to $0.12" in refused.output
    assert model_requests(claude) == []
    path = write_experiment(tmp_path, [model(claude)], max_cost_usd=0.2)
    assert invoke_cli("run", str(path)).exit_code == 0
    assert compare_rows()[0]["estimated_cost_usd"] == pytest.approx(2 * SONNET_CALL_USD)


def test_ctrl_c_then_resume_sends_no_finished_call_twice(tmp_path: Path, claude):
    claude.delay_s = 0.2
    n = 12
    path = write_experiment(tmp_path, [model(claude)], prompts=unique_prompts(n), concurrency=1)
    process = spawn_run(path, tmp_path)
    journal = wait_for_journal_lines(tmp_path, at_least=2)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    finished = [json.loads(line) for line in journal.read_text().splitlines()[1:]]
    done = {c["messages"][-1]["content"] for c in finished if c.get("completion")}
    assert 2 <= len(done) < n

    claude.delay_s = 0
    assert invoke_cli("run", str(path), "--resume").exit_code == 0
    sent = [r.body["messages"][-1]["content"] for r in model_requests(claude)]
    assert all(sent.count(prompt) == 1 for prompt in done)
    (row,) = compare_rows()
    assert (row["n_calls"], row["n_errors"], row["input_tokens"]) == (n, 0, n * 821)
    assert row["estimated_cost_usd"] == pytest.approx(n * SONNET_CALL_USD)


def test_overloaded_and_rate_limited_calls_are_retried_by_the_runner(tmp_path: Path, claude):
    claude.retry_after_s = 0.05
    claude.inject("529", "429")
    path = write_experiment(tmp_path, [model(claude, max_retries=2)], concurrency=1)
    assert invoke_cli("run", str(path)).exit_code == 0
    (row,) = compare_rows()
    assert (row["n_calls"], row["n_errors"]) == (2, 0)
    assert len(model_requests(claude)) == 4, "two refused, each sent again once"
