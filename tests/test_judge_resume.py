"""Judges paid once: judge calls are journaled, so kill -9 or SIGTERM during judging, then
`--resume`, never asks a judge again what it answered, judge_cost_usd is what was paid, and no
trace carries two valid assessments of one name."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from llmflow.judge_journal import read_entries
from llmflow.tracking import eval_view
from tests.fakes.server import JUDGE_MARKER
from tests.helpers import compare_rows, invoke_cli, unique_prompts, write_experiment
from tests.test_interruption import ROOT, _default_sigint

KEY = "test-openai-key"
RUBRICS = ("Is it correct?", "Is it concise?", "Is it polite?")
PRICE = {"input": 1.0, "output": 2.0}  # per million tokens: every judge call costs the same


def judge_file(tmp_path: Path, fake, n_prompts: int, repeats: int, rubrics=RUBRICS) -> Path:
    base = f"{fake.url}/v1"
    model = {"provider": "openai", "model": "gpt-4o-mini", "base_url": base, "stream": False}
    judges = [
        {
            "type": "judge",
            "name": f"judge-{i}",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": base,
            "rubric": rubric,
            "price_per_mtok": PRICE,
        }
        for i, rubric in enumerate(rubrics)
    ]
    prompts = unique_prompts(n_prompts)
    return write_experiment(
        tmp_path, [model], prompts=prompts, repeats=repeats, concurrency=1, scorers=judges
    )


def spawn(path: Path, cwd: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENAI_API_KEY": KEY}
    return subprocess.Popen(
        [sys.executable, "-m", "llmflow.cli", "run", str(path), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )


def judge_requests(fake, completed: bool = True) -> list:
    requests = fake.completed if completed else fake.requests
    return [r for r in requests if JUDGE_MARKER in _asked(r)]


def _asked(request) -> str:
    body = request.body if isinstance(request.body, dict) else {}
    return (body.get("messages") or [{}])[-1].get("content", "")


def wait_for_judging(fake, process: subprocess.Popen, seen: int, timeout: float = 60) -> bool:
    """True once the process asks a judge something new; False when it ended first."""
    deadline = time.time() + timeout
    while len(judge_requests(fake, completed=False)) <= seen:
        if process.poll() is not None:
            return False
        assert time.time() < deadline, "the run never reached its judges"
        time.sleep(0.01)
    return True


def journal_of(tmp_path: Path) -> Path:
    found = (tmp_path / ".llmflow" / "journals").glob("*.jsonl")
    (path,) = [p for p in found if not p.name.endswith(".judges.jsonl")]
    return path


def valid_by_name(client: MlflowClient, run) -> list[dict[str, int]]:
    """For each model call's trace: how many valid assessments each name has."""
    traces = client.search_traces(
        locations=[run.info.experiment_id], run_id=run.info.run_id, max_results=500
    )
    counts = []
    for trace in traces:
        if "llmflow.role" in trace.info.tags:
            continue
        names: dict[str, int] = {}
        for a in trace.info.assessments:
            if a.valid is not False:
                names[a.name] = names.get(a.name, 0) + 1
        counts.append(names)
    return counts


def check_paid_once(tmp_path: Path, tracking_uri: str, fake, n_answers: int, kills: int) -> None:
    entries = read_entries(journal_of(tmp_path))
    answered = [e for e in entries if e.answered]
    graded = [e.graded for e in answered]
    assert len(graded) == len(set(graded)), "a journaled judge question was asked again"
    assert len(set(graded)) == n_answers * len(RUBRICS)
    # a kill may lose the one judge call in flight (concurrency 1): answered, never journaled
    assert len(judge_requests(fake)) <= n_answers * len(RUBRICS) + kills
    (row,) = compare_rows()
    client = MlflowClient(tracking_uri)
    run = client.get_run(row["run_id"])
    paid = sum(e.record.cost.usd for e in entries)
    assert run.data.metrics["judge_cost_usd"] == paid > 0
    assert run.data.metrics["n_scored"] == n_answers
    counts = valid_by_name(client, run)
    assert len(counts) == n_answers
    for names in counts:
        assert names == {f"judge-{i}": 1 for i in range(len(RUBRICS))}, names
    judges = eval_view.judge_traces(client, run.info.experiment_id, run.info.run_id)
    assert len(judges) == n_answers * len(RUBRICS), "one trace per judge call used"


def test_kill_9_during_judging_twenty_times_pays_each_judge_once(
    tmp_path: Path, tracking_uri: str, fake_openai
):
    fake_openai.delay_s = 0.04
    n_answers = 12
    path = judge_file(tmp_path, fake_openai, n_prompts=6, repeats=2)
    rng = random.Random(28)
    kills, args = 0, ()
    while kills < 20:
        process = spawn(path, tmp_path, *args)
        seen = len(judge_requests(fake_openai, completed=False))
        judging = wait_for_judging(fake_openai, process, seen)
        if not judging:  # every judge had answered: this one finished the run
            break
        time.sleep(rng.uniform(0, 0.3))  # somewhere in judging or the finishing after it
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills, args = kills + 1, ("--resume",)
    assert kills >= 10, "too few kills landed while judging"
    final = invoke_cli("run", str(path), "--resume", env={"OPENAI_API_KEY": KEY})
    assert final.exit_code in (0, 1), final.output
    if final.exit_code == 1:
        assert "already finished" in final.stderr, final.stderr
    check_paid_once(tmp_path, tracking_uri, fake_openai, n_answers, kills)


def test_sigterm_during_judging_leaves_unjudged_answers_out_of_the_pass_rate(
    tmp_path: Path, tracking_uri: str, fake_openai
):
    fake_openai.delay_s = 0.1
    n_answers = 6
    path = judge_file(tmp_path, fake_openai, n_prompts=6, repeats=1)
    process = spawn(path, tmp_path)
    assert wait_for_judging(fake_openai, process, 0)
    time.sleep(0.25)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    (row,) = compare_rows()
    client = MlflowClient(tracking_uri)
    killed = client.get_run(row["run_id"])
    entries = read_entries(journal_of(tmp_path))
    per_call: dict[tuple, int] = {}
    for e in entries:
        per_call[(e.case_id, e.repeat)] = per_call.get((e.case_id, e.repeat), 0) + 1
    fully = sum(n == len(RUBRICS) for n in per_call.values())
    assert fully < n_answers, "judging was not stopped midway"
    # the pass rate covers only the answers every judge graded, never the others as passed
    assert killed.data.metrics.get("n_scored", 0) == fully
    assert killed.data.metrics["judge_cost_usd"] == sum(e.record.cost.usd for e in entries)
    before = len(judge_requests(fake_openai))

    resumed = invoke_cli("run", str(path), "--resume", env={"OPENAI_API_KEY": KEY})
    assert resumed.exit_code == 0, resumed.output
    asked_again = len(judge_requests(fake_openai)) - before
    assert asked_again == n_answers * len(RUBRICS) - len(entries)
    # the one judge call in flight at the signal is cancelled, unjournaled: the fake may have
    # written its whole answer (a provider billed it) before the client read it, as on a kill
    check_paid_once(tmp_path, tracking_uri, fake_openai, n_answers, kills=1)


def test_resume_gives_every_trace_the_assessments_it_missed(
    tmp_path: Path, tracking_uri: str, fake_openai
):
    """Traces written before an outage (or a kill) whose assessments never reached the store:
    `--resume` adds what they miss, and nothing twice."""
    import mlflow

    from tests.test_interruption import wait_for_journal_lines

    fake_openai.delay_s = 0.1
    scorers = [{"type": "not-empty"}, {"type": "regex", "value": "^Echo"}]
    base = f"{fake_openai.url}/v1"
    model = {"provider": "openai", "model": "gpt-4o-mini", "base_url": base}
    path = write_experiment(
        tmp_path, [model], prompts=unique_prompts(12), concurrency=1, scorers=scorers
    )
    process = spawn(path, tmp_path)
    wait_for_journal_lines(tmp_path, at_least=4)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    (row,) = compare_rows()
    client = MlflowClient(tracking_uri)
    run = client.get_run(row["run_id"])
    traces = client.search_traces(locations=[run.info.experiment_id], run_id=run.info.run_id)
    assert len(traces) >= 4
    mlflow.set_tracking_uri(tracking_uri)
    try:
        for trace in traces[:3]:  # as an outage leaves them: written, without their scores
            for assessment in trace.info.assessments:
                mlflow.delete_assessment(trace.info.trace_id, assessment.assessment_id)
    finally:
        mlflow.set_tracking_uri(None)

    fake_openai.delay_s = 0
    resumed = invoke_cli("run", str(path), "--resume", env={"OPENAI_API_KEY": KEY})
    assert resumed.exit_code == 0, resumed.output
    counts = valid_by_name(client, run)
    assert len(counts) == 12
    assert all(names == {"not-empty": 1, "regex": 1} for names in counts), counts


def test_kill_9_during_score_then_score_again_pays_each_judge_once(
    tmp_path: Path, tracking_uri: str, fake_openai
):
    path = judge_file(tmp_path, fake_openai, n_prompts=4, repeats=2, rubrics=RUBRICS[:1])
    ran = invoke_cli("run", str(path), "--tracking-uri", tracking_uri, env={"OPENAI_API_KEY": KEY})
    assert ran.exit_code == 0, ran.output
    edited = path.with_name("edited.yaml")
    edited.write_text(path.read_text().replace(RUBRICS[0], "Is it exactly right?"))
    fake_openai.delay_s = 0.2
    before = len(judge_requests(fake_openai))
    command = ["score", "-e", "provider-comparison", "--tracking-uri", tracking_uri]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENAI_API_KEY": KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "llmflow.cli", *command, "--config", str(edited)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while len(judge_requests(fake_openai)) < before + 3:
        assert process.poll() is None and time.time() < deadline, "the judges were never asked"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    fake_openai.delay_s = 0
    again = invoke_cli(*command, "--config", str(edited), env={"OPENAI_API_KEY": KEY})
    assert again.exit_code == 0, again.output
    asked = len(judge_requests(fake_openai)) - before
    assert 8 <= asked <= 8 + 1, "a judged answer journaled before the kill was asked again"
    (ledger,) = (tmp_path / ".llmflow" / "journals").glob("*.judges.jsonl")
    graded = [e.graded for e in read_entries(ledger) if e.answered]
    assert len(graded) == len(set(graded)) == 8
    (row,) = compare_rows()
    metrics = MlflowClient(tracking_uri).get_run(row["run_id"]).data.metrics
    run_entries = read_entries(journal_of(tmp_path))
    paid = sum(e.record.cost.usd for e in [*run_entries, *read_entries(ledger)])
    assert metrics["judge_cost_usd"] == pytest.approx(paid)
