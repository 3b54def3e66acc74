"""Journal, kill -9 and resume; Ctrl-C, SIGTERM and a stopped provider mid-run."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from mlflow import MlflowClient

from llmflow.tracking.traces import call_of
from llmflow.worker.pool import WORKER_MODULE
from tests.helpers import (
    compare_rows,
    invoke_cli,
    ollama_models,
    unique_prompts,
    write_experiment,
)

ROOT = Path(__file__).resolve().parents[1]


# --- journal, kill -9 and resume ----------------------------------------------------------------


def spawn_run(path: Path, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, "-m", "llmflow.cli", "run", str(path)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        # a suite started with `&` inherits SIGINT as ignored, and llmflow honours that: the
        # child gets the disposition a terminal's foreground job has
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_journal_lines(cwd: Path, at_least: int, timeout: float = 60) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        journals = list((cwd / ".llmflow" / "journals").glob("*.jsonl"))
        if journals and len(journals[0].read_text().splitlines()) >= at_least + 1:
            return journals[0]
        time.sleep(0.05)
    raise AssertionError("the run never journaled enough calls")


def start_slow_run(tmp_path: Path, fake, journaled: int) -> tuple[Path, subprocess.Popen]:
    """A run of 30 calls, one at a time at 0.2 s each, once `journaled` of them have finished:
    time for a signal to land in the middle."""
    fake.delay_s = 0.2
    path = write_experiment(
        tmp_path, ollama_models(fake), prompts=unique_prompts(30), concurrency=1
    )
    process = spawn_run(path, tmp_path)
    wait_for_journal_lines(tmp_path, at_least=journaled)
    return path, process


def worker_pids(parent: int) -> list[int]:
    """The worker children of a process, started by any of its threads (Linux /proc)."""
    tasks = Path(f"/proc/{parent}/task").glob("*/children")
    pids = [int(pid) for children in tasks for pid in children.read_text().split()]
    module = WORKER_MODULE.encode()
    return [p for p in pids if module in Path(f"/proc/{p}/cmdline").read_bytes()]


def wait_until_gone(pids: list[int], timeout: float = 10) -> None:
    deadline = time.time() + timeout
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        while status.exists() and "zombie" not in status.read_text():
            assert time.time() < deadline, f"process {pid} outlived its parent"
            time.sleep(0.05)


def test_a_request_cut_off_mid_send_never_reaches_the_fake(fake_ollama):
    """A client killed between the headers and the body: like a real server, the fake drops it,
    so the kill -9 test counts only requests that were really sent."""
    host, port = fake_ollama.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as client:
        client.sendall(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n{")
        client.shutdown(socket.SHUT_WR)
        assert client.recv(1024) == b"", "the fake closes the connection without an answer"
    assert fake_ollama.generation_requests() == []


def test_kill_9_then_resume_sends_no_finished_call_twice(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    fake_ollama.delay_s = 0.15
    n = 24
    path = write_experiment(
        tmp_path, ollama_models(fake_ollama), prompts=unique_prompts(n), concurrency=2
    )
    process = spawn_run(path, tmp_path)
    journal = wait_for_journal_lines(tmp_path, at_least=5)
    writers = worker_pids(process.pid)
    assert writers or not Path("/proc").exists()
    process.send_signal(signal.SIGKILL)
    process.wait()
    wait_until_gone(writers)  # the worker dies with its parent: no trace written twice
    finished = [json.loads(line) for line in journal.read_text().splitlines()[1:]]
    finished_prompts = {c["messages"][-1]["content"] for c in finished if c.get("completion")}
    assert 5 <= len(finished_prompts) < n

    fake_ollama.delay_s = 0
    resumed = invoke_cli("run", str(path), "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert f"resumed: {len(finished)} call(s) came from the journal" in resumed.stderr

    sent = [r.body["messages"][-1]["content"] for r in fake_ollama.generation_requests()]
    for prompt in finished_prompts:
        assert sent.count(prompt) == 1, f"{prompt!r} was finished before the kill, then sent again"
    assert set(sent) == {p["user"] for p in unique_prompts(n)}

    client = MlflowClient(tracking_uri)
    (row,) = compare_rows()
    assert (row["n_calls"], row["n_errors"]) == (n, 0)
    run = client.get_run(row["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_run(run.data.tags["mlflow.parentRunId"]).info.status == "FINISHED"
    experiment = client.get_experiment_by_name("provider-comparison")
    traces = client.search_traces(locations=[experiment.experiment_id], max_results=200)
    keys = sorted(call_of(t.info) for t in traces)
    assert keys == [f"p{i:02d}#0" for i in range(n)], "every call has exactly one trace"


def test_ctrl_c_ends_runs_as_killed_and_says_how_to_resume(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    path, process = start_slow_run(tmp_path, fake_ollama, journaled=2)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("provider-comparison").experiment_id])
    assert {r.info.status for r in runs} == {"KILLED"}
    child = next(r for r in runs if r.data.tags.get("llmflow.kind") == "variant")
    assert child.data.metrics["n_calls"] >= 2  # what finished before Ctrl-C is in MLflow
    traces = client.search_traces(locations=[child.info.experiment_id], run_id=child.info.run_id)
    assert len(traces) == child.data.metrics["n_calls"], "the worker outlives Ctrl-C"

    fake_ollama.delay_s = 0
    assert invoke_cli("run", str(path), "--resume").exit_code == 0
    table = json.loads(Path(client.download_artifacts(child.info.run_id, "calls.json")).read_text())
    cases = [row[0] for row in table["data"]]
    assert sorted(cases) == [f"p{i:02d}" for i in range(30)], "each call once in calls.json"
    again = invoke_cli("run", str(path), "--resume")
    assert again.exit_code == 1 and "already finished: nothing to resume" in again.stderr
    assert client.get_run(child.info.run_id).data.metrics["n_calls"] == 30


def test_resume_while_the_provider_is_down_keeps_the_journaled_calls(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    path, process = start_slow_run(tmp_path, fake_ollama, journaled=3)
    os.killpg(process.pid, signal.SIGINT)
    process.communicate(timeout=60)
    (before,) = compare_rows()
    assert before["n_calls"] >= 3
    fake_ollama.models = set()  # the model is gone: the variant is skipped on resume
    resumed = invoke_cli("run", str(path), "--resume")
    assert resumed.exit_code == 1 and "skipped" in resumed.stderr
    (after,) = compare_rows()
    assert after["n_calls"] == before["n_calls"], "paid, journaled calls are never wiped"


def _statuses(tracking_uri: str) -> set[str]:
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("provider-comparison").experiment_id])
    return {r.info.status for r in runs}


def test_sigterm_ends_runs_as_killed_like_ctrl_c(tmp_path: Path, tracking_uri: str, fake_ollama):
    """docker stop, a CI cancel and `timeout` send SIGTERM: the same clean end as Ctrl-C."""
    path, process = start_slow_run(tmp_path, fake_ollama, journaled=2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "SIGTERM" in stderr and "ended as KILLED" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    assert _statuses(tracking_uri) == {"KILLED"}


def test_repeated_ctrl_c_never_leaves_a_run_running(tmp_path: Path, tracking_uri: str, fake_ollama):
    """Ctrl-C, then Ctrl-C again while the runs are being written, then a third: the user may
    abandon the wait, but the runs are still ended as KILLED."""
    path, process = start_slow_run(tmp_path, fake_ollama, journaled=2)
    for _ in range(3):
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(0.2)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert _statuses(tracking_uri) == {"KILLED"}, stderr


def test_resume_refuses_a_changed_file(tmp_path: Path, fake_ollama):
    path = write_experiment(tmp_path, ollama_models(fake_ollama))
    assert invoke_cli("run", str(path)).exit_code == 0
    path.write_text(path.read_text().replace("repeats: 1", "repeats: 2"))
    result = invoke_cli("run", str(path), "--resume")
    assert result.exit_code == 2 and "--resume needs the same experiment file" in result.stderr
