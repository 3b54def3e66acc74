"""`llmflow run` of a batched OpenAI model against the fake Batch API, through the openai SDK."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import TraceState

from llmflow.journal import latest_journal, read_journal
from llmflow.tracking.traces import call_of
from tests.helpers import compare_rows, invoke_cli, unique_prompts, write_experiment

KEY = "test-openai-key"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def batched_model(fake, **batch) -> list[dict]:
    return [
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": f"{fake.url}/v1",
            "max_tokens": 64,
            "price_as": "openai/gpt-4o-mini",  # the fake's URL is no OpenAI host
            "batch": batch or True,
        }
    ]


def test_a_batched_run_collects_every_answer_at_half_price(tmp_path: Path, fake_openai):
    fake_openai.batch.auto = True  # each poll moves a job one state on: no test sleeps
    path = write_experiment(
        tmp_path,
        batched_model(fake_openai, max_requests=4, poll_s=0.01),
        prompts=unique_prompts(10),
    )
    result = invoke_cli("run", str(path))
    assert result.exit_code == 0, result.output
    assert fake_openai.generation_requests() == [], "nothing was sent live"
    assert len(fake_openai.batch.jobs) == 3, "10 calls in jobs of at most 4"
    assert set(fake_openai.batch.submitted.values()) == {1}
    assert "completed 4/4" in result.stderr  # the progress line of a job

    (row,) = compare_rows()
    assert (row["n_calls"], row["n_errors"]) == (10, 0)
    _, records = read_journal(latest_journal())
    assert len(records) == 10
    for record in records:
        assert record.timing is None, "a batched call has no latency, never 0"
        assert record.batch_job in fake_openai.batch.jobs
        assert record.cost.kind == "batch"
        assert record.completion.text.startswith("Echo: Question number")
    # the answer matches its own prompt although the results came back out of order
    assert {r.completion.text for r in records} == {
        f"Echo: {p['user']}" for p in unique_prompts(10)
    }
    live = _list_price(records[0])
    assert records[0].cost.usd == pytest.approx(live / 2)

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    metrics = client.get_run(row["run_id"]).data.metrics
    assert metrics["n_batched"] == 10
    assert "latency_p50_s" not in metrics
    assert metrics["batch_wall_s"] >= 0
    table = invoke_cli("compare", "-e", "provider-comparison")
    assert "latency was not measured for gpt-4o-mini: 10 call(s) went through" in table.stdout
    params = client.get_run(row["run_id"]).data.params
    assert (
        params["cost_model"] == "genai-prices as openai/gpt-4o-mini less the batch discount (50%)"
    )


def _list_price(record) -> float:
    from llmflow.config import ModelEntry
    from llmflow.pricing import Pricer

    entry = ModelEntry(provider="openai", model="gpt-4o-mini", price_as="openai/gpt-4o-mini")
    return Pricer(entry).price(record.usage, 0.0).usd


def test_detach_submits_and_resume_collects(tmp_path: Path, fake_openai):
    path = write_experiment(
        tmp_path, batched_model(fake_openai, poll_s=0.01), prompts=unique_prompts(3)
    )
    detached = invoke_cli("run", str(path), "--detach")
    assert detached.exit_code == 0, detached.output
    assert "submitted: 1 batch job(s), 3 call(s), left running" in detached.stderr
    assert "--resume" in detached.stderr
    (job,) = fake_openai.batch.jobs.values()
    assert job.status == "validating"

    fake_openai.batch.advance(3)  # completed
    resumed = invoke_cli("run", str(path), "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert len(fake_openai.batch.jobs) == 1, "the job was collected, not submitted again"
    (row,) = compare_rows()
    assert (row["n_calls"], row["n_errors"]) == (3, 0)


def test_expired_and_errored_requests_fail_and_resume_sends_only_them(tmp_path: Path, fake_openai):
    fake_openai.batch.auto = True
    fake_openai.batch.expire_after = 3  # the job expires with 3 of its 5 requests run
    fake_openai.batch.failing_prompts = {"Question number 0": "Invalid 'messages': too long."}
    fake_openai.batch.shuffle = False
    path = write_experiment(
        tmp_path, batched_model(fake_openai, poll_s=0.01), prompts=unique_prompts(5)
    )
    first = invoke_cli("run", str(path))
    assert first.exit_code == 1
    _, records = read_journal(latest_journal())
    failed = {r.case_id: r for r in records if not r.ok}
    assert sorted(failed) == ["p00", "p03", "p04"]
    assert failed["p00"].error_type == "BatchRequestFailed"
    assert "too long" in failed["p00"].error_message
    assert failed["p03"].error_type == "BatchExpired"
    assert "batch_expired" in failed["p03"].error_message

    fake_openai.batch.expire_after = None
    fake_openai.batch.failing_prompts = {}
    # the run ended FINISHED; its expired and errored requests still make it resumable
    resumed = invoke_cli("run", str(path), "--resume")
    assert resumed.exit_code == 0, resumed.output
    (second,) = list(fake_openai.batch.jobs.values())[1:]
    assert sorted(line["body"]["messages"][-1]["content"] for line in second.lines) == [
        "Question number 0",
        "Question number 3",
        "Question number 4",
    ]
    sent = {json.loads(m)[-1]["content"]: n for (_, m), n in fake_openai.batch.submitted.items()}
    assert sorted(n for n in sent.values()) == [1, 1, 2, 2, 2], "answered calls never again"
    (row,) = compare_rows()
    assert (row["n_calls"], row["n_errors"]) == (5, 0)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("provider-comparison")
    traces = client.search_traces(locations=[experiment.experiment_id], max_results=50)
    assert sorted(call_of(t.info) for t in traces) == [f"p{i:02d}#0" for i in range(5)]
    # a call sent again keeps its one trace, rewritten with the answer: its span and its state
    # (MLflow's log_spans alone keeps the ERROR of the first write)
    for call in ("p00#0", "p03#0"):
        (trace,) = [t for t in traces if call_of(t.info) == call]
        assert trace.info.state == TraceState.OK, call
        assert trace.data.spans[0].status.status_code == "OK"
        assert "Echo: Question number" in str(trace.data.spans[0].outputs)
        assert trace.info.token_usage["total_tokens"] > 0
    found = mlflow.search_traces(
        locations=[experiment.experiment_id],
        filter_string="trace.status = 'OK'",
        return_type="list",
    )
    assert len(found) == 5, "one trace per call, every one OK"


def test_a_job_that_fails_validation_fails_its_calls_with_the_message(tmp_path: Path, fake_openai):
    fake_openai.batch.auto = True
    fake_openai.batch.validation_error = "Invalid 'model' on line 1"
    path = write_experiment(
        tmp_path, batched_model(fake_openai, poll_s=0.01), prompts=unique_prompts(2)
    )
    result = invoke_cli("run", str(path))
    assert result.exit_code == 1
    _, records = read_journal(latest_journal())
    assert {r.error_type for r in records} == {"BatchJobFailed"}
    assert all("Invalid 'model' on line 1" in r.error_message for r in records)
    assert compare_rows()[0]["n_errors"] == 2


def test_counts_cancel_and_a_part_done_job_through_the_sdk(fake_openai):
    asyncio.run(_cancelled(fake_openai))


async def _cancelled(fake_openai) -> None:
    import openai

    from llmflow.providers.openai_batch import OpenAIBatch
    from llmflow.types import GenerationSettings, Message

    client = openai.AsyncOpenAI(api_key=KEY, base_url=f"{fake_openai.url}/v1", max_retries=0)
    api = OpenAIBatch(client, "gpt-4o-mini")
    lines = [
        api.request(str(i), (Message("user", f"Q{i}"),), GenerationSettings()) for i in range(4)
    ]
    job_id = await api.submit(lines, "label-1")
    assert await api.find("label-1") == job_id
    fake_openai.batch.advance(2)  # finalizing: half of it done
    state = await api.state(job_id)
    assert (state.state, state.done, state.total, state.ended) == ("finalizing", 2, 4, False)
    await api.cancel(job_id)
    assert (await api.state(job_id)).state == "cancelling"
    fake_openai.batch.advance()
    assert (await api.state(job_id)).state == "cancelled"
    answers = {a.key: a for a in await api.answers(job_id)}
    assert [answers[k].delta.text for k in ("0", "1")] == ["Echo: Q0", "Echo: Q1"]
    assert answers["2"].expired and "batch_cancelled" in answers["2"].error
    await client.close()
