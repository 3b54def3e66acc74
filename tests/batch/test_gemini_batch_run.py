"""`llmflow run` of a batched Gemini model against the fake Batch Mode, through google-genai."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from llmflow.journal import latest_journal, read_journal
from llmflow.providers.gemini_batch import GeminiBatch
from tests.helpers import compare_rows, invoke_cli, unique_prompts, write_experiment


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "test-gemini-key")


def gemini_batched(fake, **batch) -> list[dict]:
    return [
        {
            "provider": "gemini",
            "model": "gemini-2.5-flash",
            "base_url": fake.url,
            "max_tokens": 64,
            "price_as": "google/gemini-2.5-flash",
            "batch": batch or {"poll_s": 0.01},
        }
    ]


@pytest.mark.parametrize("through", ["inline", "file"])
def test_a_batched_gemini_run_collects_every_answer(
    tmp_path: Path, fake_gemini, monkeypatch: pytest.MonkeyPatch, through: str
):
    if through == "file":  # past the inline limit: the requests go in an uploaded file
        monkeypatch.setattr("llmflow.providers.gemini_batch.INLINE_BYTES", 0)
    fake_gemini.batch.auto = True
    fake_gemini.batch.failing_prompts = {
        "Question number 1": "Request contains an invalid argument."
    }
    path = write_experiment(tmp_path, gemini_batched(fake_gemini), prompts=unique_prompts(4))
    result = invoke_cli("run", str(path))
    assert result.exit_code == 1, result.output  # the one request the fake refused
    assert fake_gemini.generation_requests() == []
    (job,) = fake_gemini.batch.jobs.values()
    assert job.from_file is (through == "file")
    assert sorted(fake_gemini.batch.submitted.values()) == [1] * 4

    _, records = read_journal(latest_journal())
    by_case = {r.case_id: r for r in records}
    assert by_case["p01"].error_type == "BatchRequestFailed"
    assert "invalid argument" in by_case["p01"].error_message
    for case in ("p00", "p02", "p03"):
        record = by_case[case]
        assert record.completion.text == f"Echo: Question number {int(case[1:])}"
        assert record.timing is None
        assert record.cost.kind == "batch"
        assert record.usage.input_tokens == fake_gemini.prompt_tokens
    (row,) = compare_rows()
    assert (row["n_calls"], row["n_errors"]) == (4, 1)


def test_a_job_that_failed_fails_its_calls_with_the_reason(tmp_path: Path, fake_gemini):
    fake_gemini.batch.auto = True
    fake_gemini.batch.fail_next = "Batch input is malformed at line 1."
    models = gemini_batched(fake_gemini, max_requests=2, poll_s=0.01)
    path = write_experiment(tmp_path, models, prompts=unique_prompts(2))
    assert invoke_cli("run", str(path)).exit_code == 1
    _, records = read_journal(latest_journal())
    assert {r.error_type for r in records} == {"BatchJobFailed"}
    assert all("malformed at line 1" in r.error_message for r in records)


def test_each_state_is_read_through_the_sdk(fake_gemini):
    asyncio.run(_each_state(fake_gemini))


async def _each_state(fake_gemini):
    from google import genai
    from google.genai import types as gt

    from llmflow.types import GenerationSettings, Message

    client = genai.Client(
        api_key="test-gemini-key", http_options=gt.HttpOptions(base_url=fake_gemini.url)
    )
    api = GeminiBatch(client, "gemini-2.5-flash")
    fake_gemini.batch.expire_next = True
    line = api.request("0", (Message("user", "Hi"),), GenerationSettings())
    job_id = await api.submit([line], "label-1")
    assert await api.find("label-1") == job_id
    seen = [(await api.state(job_id)).state]
    for _ in range(2):
        fake_gemini.batch.advance()
        seen.append((await api.state(job_id)).state)
    assert seen == ["JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_EXPIRED"]
    assert (await api.state(job_id)).ended
    assert await api.answers(job_id) == []
    other = await api.submit([line], "label-2")
    await api.cancel(other)
    assert (await api.state(other)).state == "JOB_STATE_CANCELLED"
