"""kill -9 while a batch job is in progress, then --resume: nothing submitted twice."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from llmflow.journal import latest_journal, read_journal
from llmflow.tracking.traces import call_of
from tests.batch.test_openai_batch_run import KEY, batched_model
from tests.helpers import compare_rows, invoke_cli, unique_prompts, write_experiment
from tests.test_interruption import spawn_run


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def wait_for(predicate, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "the run never got there"
        time.sleep(0.05)


def test_kill_9_while_a_job_runs_then_resume_submits_nothing_twice(
    tmp_path: Path, tracking_uri: str, fake_openai
):
    n = 12
    models = batched_model(fake_openai, max_requests=5, poll_s=0.05)
    path = write_experiment(tmp_path, models, prompts=unique_prompts(n))
    process = spawn_run(path, tmp_path)
    journals = tmp_path / ".llmflow" / "journals"

    def all_jobs_journaled() -> bool:
        found = list(journals.glob("*.jsonl"))
        return bool(found) and found[0].read_text().count('"type": "batch_job"') == 3

    wait_for(all_jobs_journaled)
    fake_openai.batch.advance(1)  # in progress
    wait_for(lambda: "in_progress" in str([j.status for j in fake_openai.batch.jobs.values()]))
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL

    fake_openai.batch.auto = True
    resumed = invoke_cli("run", str(path), "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert len(fake_openai.batch.jobs) == 3, "the jobs were collected, none created again"
    assert sorted(fake_openai.batch.submitted.values()) == [1] * n, "no request sent twice"

    (row,) = compare_rows()
    assert (row["n_calls"], row["n_errors"]) == (n, 0)
    client = MlflowClient(tracking_uri)
    run = client.get_run(row["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_run(run.data.tags["mlflow.parentRunId"]).info.status == "FINISHED"
    experiment = client.get_experiment_by_name("provider-comparison")
    traces = client.search_traces(locations=[experiment.experiment_id], max_results=200)
    assert sorted(call_of(t.info) for t in traces) == [f"p{i:02d}#0" for i in range(n)]


def test_a_job_whose_id_was_never_journaled_is_found_by_its_label(tmp_path: Path, fake_openai):
    """Killed between creating the job and journaling its id: --resume asks the provider for
    the job of that label rather than sending its calls again."""
    path = write_experiment(
        tmp_path, batched_model(fake_openai, poll_s=0.01), prompts=unique_prompts(4)
    )
    assert invoke_cli("run", str(path), "--detach").exit_code == 0
    journal = latest_journal()
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(x for x in lines if '"type": "batch_job"' not in x))

    fake_openai.batch.auto = True
    resumed = invoke_cli("run", str(path), "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert len(fake_openai.batch.jobs) == 1
    assert sorted(fake_openai.batch.submitted.values()) == [1] * 4
    _, records = read_journal(journal)
    assert sorted(r.case_id for r in records) == [f"p{i:02d}" for i in range(4)]


def test_ctrl_c_while_waiting_leaves_the_jobs_running_and_says_how_to_collect(
    tmp_path: Path, fake_openai
):
    path = write_experiment(
        tmp_path, batched_model(fake_openai, poll_s=0.05), prompts=unique_prompts(3)
    )
    interrupt_while_a_job_waits(path, tmp_path, fake_openai)


def interrupt_while_a_job_waits(path: Path, cwd: Path, fake_openai) -> None:
    """Ctrl-C to `llmflow run` once its one batch job exists: it exits 130 saying how to collect
    the job, which it leaves running at the provider."""
    import os

    process = spawn_run(path, cwd)
    journals = cwd / ".llmflow" / "journals"
    wait_for(lambda: any('"type": "batch_job"' in p.read_text() for p in journals.glob("*.jsonl")))
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr
    (job,) = fake_openai.batch.jobs.values()
    assert job.status == "validating", "the job was left running, not cancelled"
