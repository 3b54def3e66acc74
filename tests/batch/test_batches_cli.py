"""`llmflow run --detach`'s output, and `llmflow batches list | collect | cancel`, on the fake
Batch APIs through the real SDKs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmflow.journal import latest_journal, read_journal
from tests.batch.test_gemini_batch_run import gemini_batched
from tests.batch.test_openai_batch_run import KEY, batched_model
from tests.helpers import compare_rows, invoke_cli, unique_prompts, write_experiment


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("GEMINI_API_KEY", "test-gemini-key")


def detached(tmp_path: Path, models: list[dict], n: int = 3) -> tuple[Path, str]:
    """An experiment of `n` prompts run with --detach; its file and its parent run id."""
    path = write_experiment(tmp_path, models, prompts=unique_prompts(n))
    result = invoke_cli("run", str(path), "--detach")
    assert result.exit_code == 0, result.output
    header, _ = read_journal(latest_journal())
    assert header is not None
    return path, header.parent_run_id


def test_detach_says_what_was_submitted_and_prints_no_empty_table(tmp_path: Path, fake_openai):
    path = write_experiment(
        tmp_path,
        batched_model(fake_openai, max_requests=2, poll_s=0.01),
        prompts=unique_prompts(3),
    )
    result = invoke_cli("run", str(path), "--detach")
    assert result.exit_code == 0, result.output
    assert result.stdout == "", "no call has an answer yet: no comparison"
    assert "submitted: 2 batch job(s), 3 call(s), left running at the provider" in result.stderr
    header, _ = read_journal(latest_journal())
    run_id = header.parent_run_id
    assert f"collect them with: llmflow batches collect {run_id[:8]}" in result.stderr
    assert f"llmflow run {path} --resume {run_id}" in result.stderr
    assert f"llmflow batches list {run_id[:8]}" in result.stderr


def test_detach_of_a_mixed_run_shows_the_live_variant_alone(tmp_path: Path, fake_openai):
    live = {**batched_model(fake_openai)[0], "name": "live"}
    del live["batch"]
    models = [{**batched_model(fake_openai, poll_s=0.01)[0], "name": "batched"}, live]
    path = write_experiment(tmp_path, models, prompts=unique_prompts(2))
    result = invoke_cli("run", str(path), "--detach")
    assert result.exit_code == 0, result.output
    assert "| live |" in result.stdout
    assert "batched" not in result.stdout
    assert "submitted: 1 batch job(s), 2 call(s)" in result.stderr


def test_list_asks_the_provider_once_and_offline_reads_the_journal(tmp_path: Path, fake_openai):
    _, run_id = detached(tmp_path, batched_model(fake_openai, poll_s=0.01))
    (job,) = fake_openai.batch.jobs.values()
    fake_openai.batch.advance(2)  # finalizing, half of it done

    listed = invoke_cli("batches", "list")  # the latest run with batch jobs
    assert listed.exit_code == 0, listed.output
    assert job.id in listed.stdout
    assert "finalizing 1/3" in listed.stdout
    assert "submitted" in listed.stdout
    assert f"llmflow batches collect {run_id[:8]}" in listed.stderr
    assert job.status == "finalizing", "listing moved nothing on"

    offline = invoke_cli("batches", "list", run_id[:6], "--offline")
    assert offline.exit_code == 0, offline.output
    assert job.id in offline.stdout
    assert "finalizing" not in offline.stdout
    assert "provider state unknown: not asked (--offline)" in offline.stderr

    as_json = json.loads(invoke_cli("batches", "list", run_id, "--json").stdout)
    (row,) = as_json[0]["jobs"]
    assert as_json[0]["run_id"] == run_id
    assert (row["job_id"], row["state"], row["done"], row["total"]) == (job.id, "finalizing", 1, 3)
    assert (row["requests"], row["journaled"], row["provider"]) == (3, "submitted", "openai")


def test_list_says_why_the_provider_state_is_unknown(
    tmp_path: Path, fake_openai, monkeypatch: pytest.MonkeyPatch
):
    detached(tmp_path, batched_model(fake_openai, poll_s=0.01))
    monkeypatch.delenv("OPENAI_API_KEY")
    listed = invoke_cli("batches", "list")
    assert listed.exit_code == 0, listed.output
    assert "submitted" in listed.stdout
    # the fake's URL is a self-hosted server: the provider is asked without a key, and refuses
    assert "provider state unknown: AuthenticationError: openai 401" in listed.stderr


def test_list_of_an_experiment_and_bad_run_ids(tmp_path: Path, fake_openai):
    _, run_id = detached(tmp_path, batched_model(fake_openai, poll_s=0.01))
    by_experiment = invoke_cli("batches", "list", "-e", "provider-comparison", "--offline")
    assert by_experiment.exit_code == 0, by_experiment.output
    assert f"batch jobs of run {run_id[:8]}" in by_experiment.stdout

    for args, code, message in [
        (("list", "zz"), 1, "error: no run 'zz' in the journals in .llmflow/journals"),
        (("collect", "0000000"), 1, "error: no run '0000000' in the journals"),
        (("cancel", "0000000"), 1, "error: no run '0000000' in the journals"),
        (("list", "-e", "nowhere"), 1, "error: no experiment 'nowhere' in sqlite:"),
        (("list", run_id, "-e", "x"), 2, "error: give a RUN_ID or --experiment, not both"),
    ]:
        result = invoke_cli("batches", *args)
        assert result.exit_code == code, (args, result.output)
        assert result.stderr.startswith(message), (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.output


def test_collect_is_resume_of_the_run(tmp_path: Path, fake_openai):
    _, run_id = detached(tmp_path, batched_model(fake_openai, poll_s=0.01))
    fake_openai.batch.auto = True
    collected = invoke_cli("batches", "collect", run_id[:8])
    assert collected.exit_code == 0, collected.output
    assert len(fake_openai.batch.jobs) == 1, "the job was collected, not submitted again"
    assert sorted(fake_openai.batch.submitted.values()) == [1, 1, 1]
    (row,) = compare_rows()
    assert (row["n_calls"], row["n_errors"]) == (3, 0)
    listed = invoke_cli("batches", "list", run_id[:8])
    assert "collected" in listed.stdout
    assert "collect them" not in listed.stderr


def test_cancel_keeps_what_ran_and_a_later_resume_sends_the_rest(tmp_path: Path, fake_openai):
    path, run_id = detached(tmp_path, batched_model(fake_openai, poll_s=0.01), n=4)
    (job,) = fake_openai.batch.jobs.values()
    fake_openai.batch.advance(1)  # in progress

    cancelled = invoke_cli("batches", "cancel", run_id[:8])
    assert cancelled.exit_code == 0, cancelled.output
    assert job.status == "cancelling"
    assert "1 job(s) cancelled" in cancelled.stderr
    assert "cancelled" in invoke_cli("batches", "list", "--offline").stdout
    again = invoke_cli("batches", "cancel", run_id[:8])  # nothing left to cancel twice
    assert again.exit_code == 0, again.output

    fake_openai.batch.auto = True
    collected = invoke_cli("batches", "collect", run_id[:8])
    assert collected.exit_code == 1, "the calls the cancel stopped failed"
    _, records = read_journal(latest_journal())
    failed = sorted(r.case_id for r in records if not r.ok)
    assert failed == ["p02", "p03"], "the fake ran half of the job before the cancel"
    assert all("llmflow batches cancel" in r.error_message for r in records if not r.ok)

    resumed = invoke_cli("run", str(path), "--resume", run_id)
    assert resumed.exit_code == 0, resumed.output
    assert sorted(fake_openai.batch.submitted.values()) == [1, 1, 2, 2]
    (row,) = compare_rows()
    assert (row["n_calls"], row["n_errors"]) == (4, 0)


def test_cancel_a_gemini_job(tmp_path: Path, fake_gemini):
    _, run_id = detached(tmp_path, gemini_batched(fake_gemini), n=2)
    (job,) = fake_gemini.batch.jobs.values()
    cancelled = invoke_cli("batches", "cancel", run_id[:8])
    assert cancelled.exit_code == 0, cancelled.output
    assert job.state == "BATCH_STATE_CANCELLED"
    listed = invoke_cli("batches", "list", run_id[:8])
    assert "JOB_STATE_CANCELLED" in listed.stdout
    assert "cancelled" in listed.stdout
