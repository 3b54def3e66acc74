"""A judge with `batch:`: its questions go through the OpenAI Batch API of the fake (through the
openai SDK) once the answers are in; its verdicts are the live judge's, journaled the same way,
and a kill while its job runs submits no question twice."""

from __future__ import annotations

import json
import re
import signal
from collections import Counter
from pathlib import Path

import pytest
from mlflow import MlflowClient

from llmflow.journal import latest_journal, read_journal
from llmflow.judge_journal import read_entries
from llmflow.tracking import eval_view
from tests.batch.test_batch_resume import interrupt_while_a_job_waits, wait_for
from tests.batch.test_openai_batch_run import KEY
from tests.helpers import compare_rows, invoke_cli, unique_prompts, write_experiment
from tests.test_interruption import spawn_run

N = 6


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def live_model(fake) -> list[dict]:
    return [
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": f"{fake.url}/v1",
            "max_tokens": 64,
            "price_as": "openai/gpt-4o-mini",
        }
    ]


def judge(fake, batch=None) -> dict:
    entry = {
        "type": "judge",
        "name": "correct",
        "rubric": "Does the answer hold the reference?",
        "provider": "openai",
        "model": "gpt-4o",
        "base_url": f"{fake.url}/v1",
        "max_tokens": 64,
        "price_as": "openai/gpt-4o",
    }
    return entry if batch is None else {**entry, "batch": batch}


def graded_prompts(n: int = N) -> list[dict]:
    """The fake judge gives 1 when the answer (the fake's echo) holds the reference: half do."""
    prompts = unique_prompts(n)
    for i, prompt in enumerate(prompts):
        prompt["expected"] = f"Echo: {prompt['user']}" if i % 2 == 0 else "something else"
    return prompts


def experiment(tmp_path: Path, fake, name: str, batch=None) -> Path:
    return write_experiment(
        tmp_path,
        live_model(fake),
        name=f"{name}.yaml",
        experiment=name,
        prompts=graded_prompts(),
        scorers=[judge(fake, batch)],
        max_cost_usd=1.0,
    )


def verdicts(journal: Path) -> dict[str, float]:
    """Each graded call's judge score, read from the journal's judge lines."""
    found = {}
    for entry in read_entries(journal):
        assert entry.answered, entry.record.error_message
        found[f"{entry.case_id}#{entry.repeat}"] = entry.record.completion.text
    return {call: float(re.search(r'"score": ([\d.]+)', text)[1]) for call, text in found.items()}


def judge_questions(fake) -> Counter[str]:
    """How many times a judge question about each prompt went into a batch job."""
    asked: Counter[str] = Counter()
    for job in fake.batch.jobs.values():
        for line in job.lines:
            prompt = line["body"]["messages"][-1]["content"]
            asked[re.search(r"<question-\w+>(.*?)</question-", prompt)[1]] += 1
    return asked


def judge_metrics(tracking_uri: str, name: str) -> dict[str, float]:
    (row,) = compare_rows(name)
    metrics = MlflowClient(tracking_uri).get_run(row["run_id"]).data.metrics
    return {k: v for k, v in metrics.items() if k in ("score.correct", "pass_rate", "n_scored")}


def test_a_batched_judge_gives_the_live_judges_scores_at_the_batch_price(
    tmp_path: Path, tracking_uri: str, fake_openai
):
    live = invoke_cli("run", str(experiment(tmp_path, fake_openai, "live-judge")))
    assert live.exit_code == 0, live.output
    live_journal = latest_journal()
    assert fake_openai.batch.jobs == {}
    assert len(fake_openai.generation_requests()) == 2 * N  # the answers, then the verdicts

    fake_openai.reset()
    fake_openai.batch.auto = True  # each poll moves a job one state on: no test sleeps
    path = experiment(tmp_path, fake_openai, "batched-judge", batch={"poll_s": 0.01})
    batched = invoke_cli("run", str(path))
    assert batched.exit_code == 0, batched.output
    assert len(fake_openai.generation_requests()) == N, "only the model was asked live"
    assert judge_questions(fake_openai) == {f"Question number {i}": 1 for i in range(N)}
    assert re.search(rf"openai judge:gpt-4o#\w+: job \S+ completed {N}/{N}", batched.stderr)

    journal = latest_journal()
    assert journal != live_journal
    assert verdicts(journal) == verdicts(live_journal)
    assert sorted(verdicts(journal).values()) == [0.0] * (N // 2) + [1.0] * (N // 2)
    assert judge_metrics(tracking_uri, "batched-judge") == judge_metrics(tracking_uri, "live-judge")
    for entry in read_entries(journal):
        record = entry.record
        assert record.cost.kind == "batch" and record.timing is None
        assert record.batch_job in fake_openai.batch.jobs
        (live_entry,) = [e for e in read_entries(live_journal) if e.case_id == entry.case_id]
        assert record.cost.usd == pytest.approx(live_entry.record.cost.usd / 2)
    _, records = read_journal(journal)
    assert all(r.cost.kind == "priced" for r in records), "the model itself was live"


def test_kill_9_while_the_judge_job_runs_then_resume_asks_no_judge_twice(
    tmp_path: Path, tracking_uri: str, fake_openai
):
    path = experiment(tmp_path, fake_openai, "killed-judge", batch={"poll_s": 0.05})
    process = spawn_run(path, tmp_path)
    journals = tmp_path / ".llmflow" / "journals"

    def judge_job_journaled() -> bool:
        found = list(journals.glob("*.jsonl"))
        return bool(found) and '"type": "batch_job"' in found[0].read_text()

    wait_for(judge_job_journaled)
    fake_openai.batch.advance(1)  # in progress
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    (journal,) = journals.glob("*.jsonl")
    assert read_entries(journal) == [], "killed before any verdict came back"

    fake_openai.batch.auto = True
    resumed = invoke_cli("run", str(path), "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert len(fake_openai.batch.jobs) == 1, "the judge's job was collected, not created again"
    assert judge_questions(fake_openai) == {f"Question number {i}": 1 for i in range(N)}
    assert len(fake_openai.generation_requests()) == N, "no model call was made again"

    graded = Counter(f"{e.case_id}#{e.repeat}" for e in read_entries(journal))
    assert graded == {f"p{i:02d}#0": 1 for i in range(N)}, "every verdict journaled once"
    assert sorted(verdicts(journal).values()) == [0.0] * (N // 2) + [1.0] * (N // 2)
    (row,) = compare_rows("killed-judge")
    client = MlflowClient(tracking_uri)
    run = client.get_run(row["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_run(run.data.tags["mlflow.parentRunId"]).info.status == "FINISHED"
    assert run.data.metrics["score.correct"] == 0.5
    judges = eval_view.judge_traces(client, run.info.experiment_id, run.info.run_id)
    assert len(judges) == N, "each verdict traced once"


def test_detach_leaves_the_judge_job_running_and_resume_collects_it(
    tmp_path: Path, tracking_uri: str, fake_openai
):
    path = experiment(tmp_path, fake_openai, "detached-judge", batch={"poll_s": 0.01})
    detached = invoke_cli("run", str(path), "--detach")
    assert detached.exit_code == 0, detached.output
    assert f"submitted: 1 batch job(s), {N} call(s), left running" in detached.stderr
    (job,) = fake_openai.batch.jobs.values()
    assert len(job.lines) == N

    fake_openai.batch.advance(3)  # completed
    resumed = invoke_cli("run", str(path), "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert len(fake_openai.batch.jobs) == 1
    assert len(verdicts(latest_journal())) == N
    (row,) = compare_rows("detached-judge")
    run = MlflowClient(tracking_uri).get_run(row["run_id"])
    assert run.info.status == "FINISHED" and run.data.metrics["score.correct"] == 0.5


def test_batches_lists_and_cancels_a_judge_job(tmp_path: Path, fake_openai):
    """`llmflow batches` finds a batched judge's jobs through the judge's entry in the file,
    as a batched model's through its model entry."""
    path = experiment(tmp_path, fake_openai, "listed-judge", batch={"poll_s": 0.01})
    assert invoke_cli("run", str(path), "--detach").exit_code == 0
    (job,) = fake_openai.batch.jobs.values()
    fake_openai.batch.advance(1)

    listed = invoke_cli("batches", "list", "--json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)[0]["jobs"]
    assert row["variant_id"].startswith("judge:gpt-4o#")
    assert (row["job_id"], row["provider"], row["unknown"]) == (job.id, "openai", None)
    assert row["state"] == job.status

    cancelled = invoke_cli("batches", "cancel")
    assert cancelled.exit_code == 0, cancelled.output
    assert job.status in ("cancelling", "cancelled")


def test_a_batched_judge_counts_at_the_batch_price_in_the_budget(tmp_path: Path, fake_openai):
    """The plan's worst case counts a batched judge at half its live price: a budget between
    the two lets the batched run start and refuses the live one."""
    from llmflow.budget import judges_worst_case_usd
    from llmflow.config import load_experiment
    from llmflow.plan import build_plan
    from llmflow.pricing import Pricer
    from llmflow.scoring.judge_plan import judge_checks

    def judging_usd(batch) -> float:
        loaded = load_experiment(experiment(tmp_path, fake_openai, "budget", batch))
        checks = judge_checks(loaded)
        pricers = {c.where: Pricer(c.judge.entry) for c in checks}
        return judges_worst_case_usd(build_plan(loaded), checks, pricers)

    assert judging_usd(True) == pytest.approx(judging_usd(None) / 2)


def test_ctrl_c_while_the_judge_job_runs_leaves_it_running_and_says_how_to_collect(
    tmp_path: Path, fake_openai
):
    path = experiment(tmp_path, fake_openai, "interrupted-judge", batch={"poll_s": 0.05})
    interrupt_while_a_job_waits(path, tmp_path, fake_openai)

    fake_openai.batch.auto = True
    resumed = invoke_cli("run", str(path), "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert len(fake_openai.batch.jobs) == 1
    assert sorted(verdicts(latest_journal()).values()) == [0.0] * (N // 2) + [1.0] * (N // 2)


@pytest.mark.parametrize(
    ("provider", "batch", "problem"),
    [
        ("ollama", True, "scorers[0].batch: only applies to provider openai or gemini"),
        ("openai", "yes", "scorers[0].batch: write true, false or {max_requests: N, poll_s:"),
        ("openai", {"poll_s": 0}, "scorers[0].batch.poll_s: must be between 0.01 and 3,600"),
    ],
)
def test_a_judges_batch_setting_is_checked_as_a_models(
    tmp_path: Path, fake_openai, provider: str, batch, problem: str
):
    scorer = {**judge(fake_openai, batch), "provider": provider}
    path = write_experiment(tmp_path, live_model(fake_openai), scorers=[scorer])
    result = invoke_cli("plan", str(path))
    assert result.exit_code == 2, result.output
    assert problem in result.output
    assert "Traceback" not in result.output


def test_a_gemini_batched_judge_grades_through_batch_mode(
    tmp_path: Path, tracking_uri: str, fake_gemini, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("GEMINI_API_KEY", "test-gemini-key")
    fake_gemini.batch.auto = True
    model = {
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "base_url": fake_gemini.url,
        "max_tokens": 64,
        "price_as": "google/gemini-2.5-flash",
    }
    scorer = {
        **judge(fake_gemini, batch={"poll_s": 0.01}),
        "provider": "gemini",
        "model": "gemini-2.5-pro",
        "base_url": fake_gemini.url,
        "price_as": "google/gemini-2.5-pro",
    }
    path = write_experiment(tmp_path, [model], prompts=graded_prompts(), scorers=[scorer])
    result = invoke_cli("run", str(path))
    assert result.exit_code == 0, result.output
    assert len(fake_gemini.generation_requests()) == N, "only the model was asked live"
    (job,) = fake_gemini.batch.jobs.values()
    assert job.model.endswith("gemini-2.5-pro") and len(job.requests) == N
    assert sorted(fake_gemini.batch.submitted.values()) == [1] * N

    journal = latest_journal()
    assert sorted(verdicts(journal).values()) == [0.0] * (N // 2) + [1.0] * (N // 2)
    assert {e.record.cost.kind for e in read_entries(journal)} == {"batch"}
    assert judge_metrics(tracking_uri, "provider-comparison")["score.correct"] == 0.5


def test_a_batched_model_and_its_batched_judge_share_a_run_and_its_resume(
    tmp_path: Path, tracking_uri: str, fake_openai
):
    """The model's job is detached, then `--resume` collects it and only then submits the
    judge's job: two jobs, each question in one of them once."""
    model = {**live_model(fake_openai)[0], "batch": {"poll_s": 0.01}}
    path = write_experiment(
        tmp_path,
        [model],
        prompts=graded_prompts(),
        scorers=[judge(fake_openai, batch={"poll_s": 0.01})],
    )
    detached = invoke_cli("run", str(path), "--detach")
    assert detached.exit_code == 0, detached.output
    (model_job,) = fake_openai.batch.jobs.values()
    assert model_job.lines[0]["body"]["model"] == "gpt-4o-mini", "the judge waits for answers"

    fake_openai.batch.auto = True
    resumed = invoke_cli("run", str(path), "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert fake_openai.generation_requests() == []
    models = [job.lines[0]["body"]["model"] for job in fake_openai.batch.jobs.values()]
    assert models == ["gpt-4o-mini", "gpt-4o"]
    assert set(fake_openai.batch.submitted.values()) == {1}
    assert sorted(verdicts(latest_journal()).values()) == [0.0] * (N // 2) + [1.0] * (N // 2)
    assert judge_metrics(tracking_uri, "provider-comparison")["score.correct"] == 0.5


def test_score_asks_a_batched_judge_live(tmp_path: Path, tracking_uri: str, fake_openai):
    """`llmflow score` keeps no journal of batch jobs: a new rubric is asked live."""
    fake_openai.batch.auto = True
    path = experiment(tmp_path, fake_openai, "rescored", batch={"poll_s": 0.01})
    assert invoke_cli("run", str(path)).exit_code == 0
    asked_live = len(fake_openai.generation_requests())
    path.write_text(path.read_text().replace("Does the answer hold", "Does it hold"))
    scored = invoke_cli("score", "-e", "rescored", "--config", str(path))
    assert scored.exit_code == 0, scored.output
    assert len(fake_openai.generation_requests()) == asked_live + N
    assert len(fake_openai.batch.jobs) == 1, "no job for the new rubric"
    assert judge_metrics(tracking_uri, "rescored")["score.correct"] == 0.5
