"""The trace-writer process: every trace lands in its run, runs share one child, a dead child's
traces are counted as failed and the next run gets a new one."""

import os
import subprocess
import sys
import time
from pathlib import Path

from llmflow.config import load_experiment
from llmflow.plan import Variant, build_plan
from llmflow.tracking.runs import RunStore
from llmflow.tracking.trace_writer import TraceWriter
from llmflow.tracking.traces import call_of
from llmflow.types import CallRecord, Completion, Message, Timing, Usage
from tests.helpers import write_experiment

ROOT = Path(__file__).resolve().parents[2]


def open_variant_run(tmp_path: Path, tracking_uri: str) -> tuple[RunStore, str, Variant, str]:
    models = [{"provider": "ollama", "model": "llama3.1", "base_url": "http://127.0.0.1:9"}]
    loaded = load_experiment(write_experiment(tmp_path, models))
    variant = build_plan(loaded).variants[0]
    store = RunStore(tracking_uri)
    experiment_id = store.experiment_id("traces")
    parent_id = store.start_parent(experiment_id, loaded, "test")
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


def write(tracking_uri: str, experiment_id: str, variant: Variant, run_id: str, batch: list):
    writer = TraceWriter(tracking_uri)
    writer.begin(experiment_id, [variant])
    for record in batch:
        writer.submit(record, variant, run_id)
    writer.close()
    return writer


def test_each_run_gets_its_traces_from_one_shared_child(tmp_path: Path, tracking_uri: str):
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    first = write(tracking_uri, experiment_id, variant, run_id, records(variant, 0, 3))
    second = write(tracking_uri, experiment_id, variant, run_id, records(variant, 3, 2))
    assert (first.written, first.failed, second.written, second.failed) == (3, 0, 2, 0)
    assert first._child.pid == second._child.pid, "a second run reuses the started child"
    traces = store.client.search_traces(locations=[experiment_id], run_id=run_id)
    assert sorted(call_of(t.info) for t in traces) == [f"case-{i}#0" for i in range(5)]


def test_a_dead_child_counts_its_traces_as_failed(tmp_path: Path, tracking_uri: str):
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    writer = TraceWriter(tracking_uri)
    writer._child.kill()
    writer._child.wait()
    writer.begin(experiment_id, [variant])
    for record in records(variant, 0, 2):
        writer.submit(record, variant, run_id)
    writer.close()
    assert (writer.written, writer.failed) == (0, 2)
    assert writer.failure_reason == "the trace writer process exited early"
    after = write(tracking_uri, experiment_id, variant, run_id, records(variant, 2, 1))
    assert (after.written, after.failed) == (1, 0) and after._child.pid != writer._child.pid


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
    assert (after.written, after.failed) == (0, 2)
    assert after.failure_reason and "Traceback" not in after.failure_reason


def test_a_run_scores_each_answer_once_in_the_writer(tmp_path: Path, fake_ollama):
    """The trace writer scores every call for its assessments and hands the scores back: the
    run's metrics use them, and the run's own process never loads sacrebleu, which the writer
    loaded while the store was being opened."""
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


def test_the_writer_keeps_the_scores_it_gave_for_the_finishing(tmp_path: Path, tracking_uri: str):
    """The child's state holds each call's scores, which its finishing reads
    (writer_process.StoreTasks); here the child's loop runs in this process."""
    from llmflow.scoring import CaseChecks, Score
    from llmflow.scoring.specs import ScorerSpec
    from llmflow.tracking.trace_child import ChildState

    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    state = ChildState()
    batch = records(variant, 0, 2)
    checks = CaseChecks(None, (("filled", ScorerSpec(type="not-empty")),))
    state.take(("open", tracking_uri, ("not-empty",)))
    state.take(("begin", experiment_id, {variant.id: variant}, {r.case_id: checks for r in batch}))
    state.write([state.take(("call", record, variant.id, run_id)) for record in batch])
    assert state.written == 2
    assert set(state.scores) == {variant.id}
    given = state.scores[variant.id]
    assert set(given) == {(r.case_id, r.repeat) for r in batch}
    assert all(
        [(s.name, s.passed) for s in scores] == [("filled", True)] for scores in given.values()
    )
    assert all(isinstance(s, Score) for scores in given.values() for s in scores)
