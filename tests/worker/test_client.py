"""The worker as the parent sees it (worker/client.py): every trace lands in its run, runs share
one worker, a dead worker's traces are counted as failed and the next run gets a new one."""

import os
import subprocess
import sys
import time
from pathlib import Path

from llmflow.config import load_experiment
from llmflow.plan import Plan, Variant, build_plan
from llmflow.prompt_set import write_prompt_set
from llmflow.tracking.runs import RunStore
from llmflow.tracking.traces import call_of
from llmflow.types import CallRecord, Completion, Message, Timing, Usage
from llmflow.worker.client import WorkerClient
from llmflow.worker.protocol import BeginCalls
from tests.helpers import write_experiment

ROOT = Path(__file__).resolve().parents[2]


def open_variant_run(tmp_path: Path, tracking_uri: str) -> tuple[RunStore, str, Variant, str]:
    models = [{"provider": "ollama", "model": "llama3.1", "base_url": "http://127.0.0.1:9"}]
    loaded = load_experiment(write_experiment(tmp_path, models))
    variant = build_plan(loaded).variants[0]
    store = RunStore(tracking_uri)
    experiment_id = store.experiment_id("traces")
    prompts = write_prompt_set(loaded.prompts, tmp_path)
    parent_id = store.start_parent(experiment_id, loaded, prompts, "test")
    return store, experiment_id, variant, store.start_variant(experiment_id, parent_id, variant, {})


def records(variant: Variant, first: int, n: int) -> list[CallRecord]:
    now = time.time_ns()
    return [
        CallRecord(
            variant_id=variant.id,
            case_id=f"case-{i}",
            repeat=0,
            messages=(Message("user", f"question {i}"),),
            settings=variant.settings,
            completion=Completion(f"answer {i}", Usage(5, 7), "stop"),
            timing=Timing(0.05, 0.01, now, now + 50_000_000),
            cost=None,
        )
        for i in range(first, first + n)
    ]


def begin_calls(experiment_id: str, variant: Variant, checks=None) -> BeginCalls:
    """What a run tells its worker once its runs exist, for calls of one variant."""
    plan = Plan(variants=(variant,), cases=(), repeats=1)
    return BeginCalls(experiment_id, "parent-run", None, plan, checks)


def write(tracking_uri: str, experiment_id: str, variant: Variant, run_id: str, batch: list):
    worker = WorkerClient(tracking_uri)
    worker.begin(begin_calls(experiment_id, variant))
    for record in batch:
        worker.submit(record, run_id)
    worker.close()
    return worker


def written(worker: WorkerClient) -> tuple[int, int]:
    return worker.traces.written, worker.failed


def test_each_run_gets_its_traces_from_one_shared_worker(tmp_path: Path, tracking_uri: str):
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    first = write(tracking_uri, experiment_id, variant, run_id, records(variant, 0, 3))
    second = write(tracking_uri, experiment_id, variant, run_id, records(variant, 3, 2))
    assert (*written(first), *written(second)) == (3, 0, 2, 0)
    assert first._worker.process.pid == second._worker.process.pid, "a second run reuses it"
    traces = store.client.search_traces(locations=[experiment_id], run_id=run_id)
    assert sorted(call_of(t.info) for t in traces) == [f"case-{i}#0" for i in range(5)]


def test_a_dead_worker_counts_its_traces_as_failed(tmp_path: Path, tracking_uri: str):
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    worker = WorkerClient(tracking_uri)
    worker._worker.kill()
    worker._worker.process.wait()
    worker.begin(begin_calls(experiment_id, variant))
    for record in records(variant, 0, 2):
        worker.submit(record, run_id)
    worker.close()
    assert written(worker) == (0, 2)
    assert worker.failure_reason == "the worker exited early"
    after = write(tracking_uri, experiment_id, variant, run_id, records(variant, 2, 1))
    assert written(after) == (1, 0)
    assert after._worker.process.pid != worker._worker.process.pid


def test_a_script_without_a_main_guard_runs_once(tmp_path: Path, fake_ollama):
    """The writer is a fresh interpreter: the caller's script is never imported again (as
    multiprocessing's spawn would), so a plain top-level script works."""
    models = [{"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}]
    write_experiment(tmp_path, models)
    printed = run_script(
        tmp_path,
        "from pathlib import Path\n"
        "from llmflow.experiment import RunRequest, run_experiment\n"
        "request = RunRequest(Path('compare.yaml'), tracking_uri='sqlite:///mlflow.db')\n"
        "print('traces written:', run_experiment(request).traces_written)\n",
    )
    assert printed == ["traces written: 2"]


def run_script(directory: Path, text: str) -> list[str]:
    """The lines a plain top-level script prints, run as its own process in `directory`."""
    script = directory / "script.py"
    script.write_text(text)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=directory,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_trace_the_store_refuses_is_counted_with_its_reason(tmp_path: Path, tracking_uri: str):
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    after = write(tracking_uri, "no-such-experiment", variant, run_id, records(variant, 0, 2))
    assert written(after) == (0, 2)
    assert after.failure_reason and "Traceback" not in after.failure_reason


def test_a_run_scores_each_answer_once_in_the_worker(tmp_path: Path, fake_ollama):
    """The worker scores every call for its assessments and keeps the scores for the finish:
    the run's metrics use them, and the run's own process never loads sacrebleu, which the
    worker loaded while the store was being opened."""
    models = [{"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}]
    scorers = [{"type": "chrf", "threshold": 0.3}, {"type": "not-empty"}]
    prompts = [
        {"id": "a", "user": "one two", "expected": "Echo: one two"},
        {"id": "b", "user": "three", "expected": "something else entirely"},
    ]
    write_experiment(tmp_path, models, prompts=prompts, scorers=scorers)
    printed = run_script(
        tmp_path,
        "import sys\n"
        "from pathlib import Path\n"
        "from mlflow import MlflowClient\n"
        "from llmflow.experiment import RunRequest, run_experiment\n"
        "request = RunRequest(Path('compare.yaml'), tracking_uri='sqlite:///mlflow.db')\n"
        "result = run_experiment(request)\n"
        "client = MlflowClient('sqlite:///mlflow.db')\n"
        "runs = client.search_runs([result.experiment_id], 'tags.`llmflow.kind` = \"variant\"')\n"
        "print(runs[0].data.metrics['pass_rate'], runs[0].data.metrics['n_scored'])\n"
        "print('sacrebleu' in sys.modules)\n",
    )
    assert printed == ["0.5 2.0", "False"]


def test_the_worker_keeps_each_call_and_its_scores_for_the_finish(
    tmp_path: Path, tracking_uri: str
):
    """The worker's run state keeps every call it traced, and its scores, which its finish
    reads (worker/finish.py): the finish sends no call again. Here in this process."""
    from llmflow.scoring import CaseChecks, Score
    from llmflow.scoring.specs import ScorerSpec
    from llmflow.worker.protocol import OpenRun, TraceCall
    from llmflow.worker.tracing import RunState

    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    run = RunState()
    batch = records(variant, 0, 2)
    checks = CaseChecks(None, (("filled", ScorerSpec(type="not-empty")),))
    run.open(OpenRun(tracking_uri, ("not-empty",)))
    run.begin(begin_calls(experiment_id, variant, {r.case_id: checks for r in batch}))
    run.write([run.take(TraceCall(record, run_id)) for record in batch])
    assert run.written == 2
    assert run.records.by_variant() == {variant.id: batch}  # on disk, read back whole
    assert set(run.scores) == {variant.id}
    given = run.scores[variant.id]
    assert set(given) == {(r.case_id, r.repeat) for r in batch}
    assert all(
        [(s.name, s.passed) for s in scores] == [("filled", True)] for scores in given.values()
    )
    assert all(isinstance(s, Score) for scores in given.values() for s in scores)


def test_a_run_asks_the_worker_once_to_finish_and_sends_no_call_twice(
    tmp_path: Path, fake_ollama, monkeypatch
):
    """Each call crosses the pipe once (TraceCall); the finish is one ask, and the worker
    finishes with the calls it kept: FinishRun carries none."""
    import dataclasses

    from typer.testing import CliRunner

    from llmflow.cli import app
    from llmflow.worker.protocol import FinishRun

    asked, sent = [], []
    ask, submit = WorkerClient.ask, WorkerClient.submit

    def counting_ask(self, request):
        asked.append(type(request).__name__)
        return ask(self, request)

    def counting_submit(self, record, run_id):
        sent.append((record.case_id, record.repeat))
        return submit(self, record, run_id)

    monkeypatch.setattr(WorkerClient, "ask", counting_ask)
    monkeypatch.setattr(WorkerClient, "submit", counting_submit)
    models = [{"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}]
    prompts = [{"id": "a", "user": "hi"}, {"id": "b", "user": "ho"}]
    path = write_experiment(tmp_path, models, prompts=prompts, repeats=2, report=True)
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 0, result.output
    assert asked == ["OpenStore", "ExperimentId", "OpenRuns", "FinishRun", "Register"]
    assert sorted(sent) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    fields = {f.name for f in dataclasses.fields(FinishRun)}
    assert not fields & {"records", "result", "calls"}
