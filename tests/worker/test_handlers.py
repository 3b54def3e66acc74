"""The store tasks the worker does (worker/handlers.py): their answers, their errors, and a
worker kept from an earlier run that works as the current parent does."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from mlflow import MlflowClient

from llmflow.errors import TrackingError
from llmflow.worker.client import WorkerClient
from llmflow.worker.handlers import portable
from llmflow.worker.protocol import EndRuns, ExperimentId, OpenStore


def opened(tracking_uri: str) -> WorkerClient:
    worker = WorkerClient(tracking_uri)
    try:
        worker.ask(OpenStore(tracking_uri))
    except BaseException:
        worker.close()
        raise
    return worker


def test_the_worker_creates_and_ends_the_runs(tmp_path: Path, tracking_uri: str):
    worker = opened(tracking_uri)
    try:
        experiment_id = worker.ask(ExperimentId("in-the-worker"))
        client = MlflowClient(tracking_uri)
        run_id = client.create_run(experiment_id).info.run_id
        worker.ask(EndRuns((run_id,), "KILLED"))
        worker.end_runs_now(EndRuns((run_id,), "FINISHED"))  # beside the main loop, same store
    finally:
        worker.close()
    assert client.get_experiment(experiment_id).name == "in-the-worker"
    assert client.get_run(run_id).info.status == "FINISHED"


def test_an_unusable_store_is_one_line_from_the_worker(tmp_path: Path):
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("not a database")
    with pytest.raises(TrackingError, match="notes.db") as raised:
        opened(f"sqlite:///{not_a_db}")
    assert "\n" not in str(raised.value)
    assert any("worker's process" in note for note in raised.value.__notes__)  # --debug


def test_a_kept_worker_follows_the_parents_directory_and_environment(
    tmp_path: Path, tracking_uri: str, monkeypatch
):
    first = opened(tracking_uri)
    first.close()  # the worker waits in the pool for the next run
    later = tmp_path / "later"
    later.mkdir()
    monkeypatch.chdir(later)
    monkeypatch.setenv("LLMFLOW_CACHE_DIR", str(later / "cache"))
    worker = opened(f"sqlite:///{later / 'new.db'}")  # a new store: copied from the template
    worker.close()
    assert list((later / "cache").glob("mlflow-*-empty.db")), "the worker used the old cache dir"


class _NeedsTwoArguments(Exception):
    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")


def test_an_error_that_cannot_cross_keeps_its_line():
    crossed = portable(_NeedsTwoArguments("disk", "full"))
    assert isinstance(crossed, TrackingError)
    assert str(crossed) == "_NeedsTwoArguments: disk: full"
    assert pickle.loads(pickle.dumps(crossed)).__notes__ == crossed.__notes__
    kept = portable(OSError("disk full"))
    assert isinstance(kept, OSError) and str(kept) == "disk full"


def test_llmflow_errors_cross_whole_and_mlflows_stay_out_of_the_parent():
    from mlflow.exceptions import MlflowException

    from llmflow.errors import RunFailed

    crossed = pickle.loads(pickle.dumps(portable(RunFailed("run-1", OSError("disk full")))))
    assert isinstance(crossed, RunFailed) and crossed.parent_run_id == "run-1"  # --resume hint
    mlflows = portable(MlflowException("Run 'x' not found"))
    assert isinstance(mlflows, TrackingError)
    assert str(mlflows) == "MlflowException: Run 'x' not found"


def test_a_task_that_cannot_be_sent_is_an_error_and_the_worker_goes_on(tracking_uri: str):
    worker = opened(tracking_uri)
    try:
        with pytest.raises(TrackingError, match="cannot send ExperimentId"):
            worker.ask(ExperimentId(lambda: None))  # a lambda cannot be pickled
        assert worker.ask(ExperimentId("after")) != ""
    finally:
        worker.close()
