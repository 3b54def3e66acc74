"""Cache, journal and resume, Ctrl-C, budget, injected faults, malformed files."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from llmflow.cli import app
from llmflow.tracking.traces import call_of
from llmflow.tracking.writer_pool import WRITER_MODULE
from tests.helpers import write_experiment

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def ollama(fake, **extra) -> list[dict]:
    return [{"provider": "ollama", "model": "llama3.1", "base_url": fake.url, **extra}]


def rows(experiment: str = "provider-comparison") -> list[dict]:
    return json.loads(invoke("compare", "-e", experiment, "-f", "json").stdout)


# --- cache -------------------------------------------------------------------------------------


def test_a_second_run_measures_again_unless_the_cache_is_asked_for(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    path = write_experiment(tmp_path, ollama(fake_ollama), repeats=2)
    assert invoke("run", str(path)).exit_code == 0
    assert invoke("run", str(path)).exit_code == 0
    assert len(fake_ollama.generation_requests()) == 8, "no cache unless asked: a rerun measures"
    metrics = MlflowClient(tracking_uri).get_run(rows()[0]["run_id"]).data.metrics
    assert metrics["n_cached"] == 0 and metrics["n_timed"] == 4


def test_second_run_is_served_from_the_cache(tmp_path: Path, tracking_uri: str, fake_ollama):
    path = write_experiment(tmp_path, ollama(fake_ollama), repeats=2)
    assert invoke("run", str(path), "--cache").exit_code == 0
    assert len(fake_ollama.generation_requests()) == 4
    second = invoke("run", str(path), "--cache")
    assert second.exit_code == 0 and "4 call(s) answered from the cache" in second.stderr
    assert len(fake_ollama.generation_requests()) == 4, "a cached call must not be sent again"
    run_id = rows()[0]["run_id"]
    metrics = MlflowClient(tracking_uri).get_run(run_id).data.metrics
    assert metrics["n_cached"] == 4 and metrics["n_timed"] == 0
    assert "latency_p50_s" not in metrics, "cached calls never enter latency statistics"
    assert metrics["total_tokens"] == 4 * 68 and metrics["estimated_cost_usd"] == 0
    assert invoke("run", str(path), "--no-cache").exit_code == 0
    assert len(fake_ollama.generation_requests()) == 8


def test_cache_false_and_failed_calls_are_never_cached(tmp_path: Path, fake_ollama):
    fake_ollama.inject("500")
    path = write_experiment(tmp_path, ollama(fake_ollama, max_retries=0), cache=True)
    assert invoke("run", str(path)).exit_code == 1
    assert invoke("run", str(path)).exit_code == 0  # the failed one is sent again
    assert len(fake_ollama.generation_requests()) == 3
    off = write_experiment(tmp_path, ollama(fake_ollama), name="off.yaml", cache=False)
    invoke("run", str(off))
    assert len(fake_ollama.generation_requests()) == 5


def test_a_cache_that_is_not_sqlite_is_one_line_before_any_run(tmp_path: Path, fake_ollama):
    (tmp_path / "notes.txt").write_text("not a database\n" * 10)
    path = write_experiment(tmp_path, ollama(fake_ollama), cache="notes.txt")
    result = invoke("run", str(path))
    assert result.exit_code == 2 and "notes.txt is not a sqlite database" in result.stderr
    assert not (tmp_path / "mlflow.db").exists() and fake_ollama.generation_requests() == []
    assert invoke("run", str(path), "--no-cache").exit_code == 0


def test_run_cache_forces_the_user_cache_on(tmp_path: Path, fake_ollama):
    path = write_experiment(tmp_path, ollama(fake_ollama))
    assert invoke("run", str(path), "--cache").exit_code == 0
    assert "1 call(s) answered" not in invoke("run", str(path)).stderr  # the file says no cache
    assert "2 call(s) answered from the cache" in invoke("run", str(path), "--cache").stderr


# --- journal, kill -9 and resume ----------------------------------------------------------------


def unique_prompts(n: int) -> list[dict]:
    return [{"id": f"p{i:02d}", "user": f"Question number {i}"} for i in range(n)]


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
    path = write_experiment(tmp_path, ollama(fake), prompts=unique_prompts(30), concurrency=1)
    process = spawn_run(path, tmp_path)
    wait_for_journal_lines(tmp_path, at_least=journaled)
    return path, process


def trace_writer_pids(parent: int) -> list[int]:
    """The trace-writer children of a process, started by any of its threads (Linux /proc)."""
    tasks = Path(f"/proc/{parent}/task").glob("*/children")
    pids = [int(pid) for children in tasks for pid in children.read_text().split()]
    module = WRITER_MODULE.encode()
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
    path = write_experiment(tmp_path, ollama(fake_ollama), prompts=unique_prompts(n), concurrency=2)
    process = spawn_run(path, tmp_path)
    journal = wait_for_journal_lines(tmp_path, at_least=5)
    writers = trace_writer_pids(process.pid)
    assert writers or not Path("/proc").exists()
    process.send_signal(signal.SIGKILL)
    process.wait()
    wait_until_gone(writers)  # the trace writer dies with its parent: no trace written twice
    finished = [json.loads(line) for line in journal.read_text().splitlines()[1:]]
    finished_prompts = {c["messages"][-1]["content"] for c in finished if c.get("completion")}
    assert 5 <= len(finished_prompts) < n

    fake_ollama.delay_s = 0
    resumed = invoke("run", str(path), "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert f"resumed: {len(finished)} call(s) came from the journal" in resumed.stderr

    sent = [r.body["messages"][-1]["content"] for r in fake_ollama.generation_requests()]
    for prompt in finished_prompts:
        assert sent.count(prompt) == 1, f"{prompt!r} was finished before the kill, then sent again"
    assert set(sent) == {p["user"] for p in unique_prompts(n)}

    client = MlflowClient(tracking_uri)
    (row,) = rows()
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
    assert len(traces) == child.data.metrics["n_calls"], "the trace writer outlives Ctrl-C"

    fake_ollama.delay_s = 0
    assert invoke("run", str(path), "--resume").exit_code == 0
    table = json.loads(Path(client.download_artifacts(child.info.run_id, "calls.json")).read_text())
    cases = [row[0] for row in table["data"]]
    assert sorted(cases) == [f"p{i:02d}" for i in range(30)], "each call once in calls.json"
    again = invoke("run", str(path), "--resume")
    assert again.exit_code == 1 and "already finished: nothing to resume" in again.stderr
    assert client.get_run(child.info.run_id).data.metrics["n_calls"] == 30


def test_resume_while_the_provider_is_down_keeps_the_journaled_calls(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    path, process = start_slow_run(tmp_path, fake_ollama, journaled=3)
    os.killpg(process.pid, signal.SIGINT)
    process.communicate(timeout=60)
    (before,) = rows()
    assert before["n_calls"] >= 3
    fake_ollama.models = set()  # the model is gone: the variant is skipped on resume
    resumed = invoke("run", str(path), "--resume")
    assert resumed.exit_code == 1 and "skipped" in resumed.stderr
    (after,) = rows()
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
    path = write_experiment(tmp_path, ollama(fake_ollama))
    assert invoke("run", str(path)).exit_code == 0
    path.write_text(path.read_text().replace("repeats: 1", "repeats: 2"))
    result = invoke("run", str(path), "--resume")
    assert result.exit_code == 2 and "--resume needs the same experiment file" in result.stderr


# --- budget ------------------------------------------------------------------------------------


def gemini(fake, **extra) -> list[dict]:
    return [
        {
            "provider": "gemini",
            "model": "gemini-2.5-flash",
            "base_url": fake.url,
            "max_tokens": 1000,
            **extra,
        }
    ]


def test_preflight_refuses_a_plan_over_budget(tmp_path: Path, fake_gemini):
    env = {"GEMINI_API_KEY": "test-gemini-key"}
    path = write_experiment(tmp_path, gemini(fake_gemini), repeats=10)
    result = invoke("run", str(path), "--max-cost", "0.001", env=env)
    assert result.exit_code == 2
    assert "over max_cost_usd $0.001" in result.stderr and "\n" not in result.stderr.strip()
    assert fake_gemini.generation_requests() == [] and not (tmp_path / "mlflow.db").exists()
    assert invoke("run", str(path), "--max-cost", "1", env=env).exit_code == 0


def test_budget_needs_max_tokens_and_a_price(tmp_path: Path, fake_gemini, fake_openai):
    no_cap = write_experiment(tmp_path, gemini(fake_gemini, max_tokens=None), max_cost_usd=1)
    result = invoke("run", str(no_cap), env={"GEMINI_API_KEY": "test-gemini-key"})
    assert (
        result.exit_code == 2
        and "models[0].max_tokens: is required under max_cost_usd" in result.stderr
    )
    unpriced = [
        {
            "provider": "openai",
            "model": "my-model",
            "base_url": f"{fake_openai.url}/v1",
            "max_tokens": 10,
        }
    ]
    path = write_experiment(tmp_path, unpriced, name="u.yaml", max_cost_usd=1)
    result = invoke("run", str(path))
    assert result.exit_code == 2 and "allow_unpriced: true" in result.stderr


def test_running_budget_never_passes_the_limit():
    from llmflow.budget import Budget

    budget = Budget(1.0)
    held = [budget.reserve(0.3) for _ in range(4)]
    assert held[3] is None, "a fourth worst case of 0.3 would pass 1.0"
    for reservation in held[:3]:
        budget.settle(reservation, 0.25)
    assert budget.spent_usd == 0.75
    assert budget.reserve(0.3) is None and budget.reserve(0.25) is not None


# --- faults ------------------------------------------------------------------------------------


def test_twenty_percent_faults_every_call_accounted_for(
    tmp_path: Path, tracking_uri: str, fake_openai
):
    fake_openai.fault_rate, fake_openai.hang_s = 0.2, 1.0
    models = [
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": f"{fake_openai.url}/v1",
            "api_key_env": "K",
            "max_retries": 1,
            "timeout_s": 0.5,
        }
    ]
    path = write_experiment(tmp_path, models, prompts=unique_prompts(20), repeats=2, concurrency=8)
    result = invoke("run", str(path), env={"K": "test-openai-key"})
    assert result.exit_code in (0, 1)
    (row,) = rows()
    client = MlflowClient(tracking_uri)
    table = json.loads(Path(client.download_artifacts(row["run_id"], "calls.json")).read_text())
    errors = [r[table["columns"].index("error")] for r in table["data"]]
    assert row["n_calls"] == len(errors) == 40
    assert row["n_errors"] == sum(e is not None for e in errors)
    known = ("RateLimited", "ServerError", "ProviderTimeout", "BadResponse", "ProviderUnavailable")
    assert all(e.split(":")[0] in known for e in errors if e)
    injected = len(fake_openai.generation_requests()) - len(fake_openai.completed)
    assert injected > 0, "the fake injected no fault: the test proved nothing"
    experiment = client.get_experiment_by_name("provider-comparison")
    assert len(client.search_traces(locations=[experiment.experiment_id], max_results=100)) == 40


# --- malformed files ---------------------------------------------------------------------------

GOOD = {"provider": "ollama", "model": "llama3.1"}
MALFORMED = [
    ({"models": [{**GOOD, "temperature": -1}]}, "models[0].temperature"),
    ({"models": [{**GOOD, "temperature": 2.5}]}, "models[0].temperature"),
    ({"models": [{**GOOD, "temperature": "hot"}]}, "models[0].temperature"),
    ({"models": [{**GOOD, "top_p": 2}]}, "models[0].top_p"),
    ({"models": [{**GOOD, "max_tokens": -5}]}, "models[0].max_tokens"),
    ({"models": [{**GOOD, "max_tokens": "lots"}]}, "models[0].max_tokens"),
    ({"models": [{**GOOD, "seed": "x"}]}, "models[0].seed"),
    ({"models": [{**GOOD, "stream": "maybe"}]}, "models[0].stream"),
    ({"models": [{**GOOD, "timeout_s": 0}]}, "models[0].timeout_s"),
    ({"models": [{**GOOD, "max_retries": -1}]}, "models[0].max_retries"),
    ({"models": [{**GOOD, "max_concurrency": 0}]}, "models[0].max_concurrency"),
    ({"models": [{**GOOD, "cost_per_hour_usd": -1}]}, "models[0].cost_per_hour_usd"),
    ({"models": [{**GOOD, "price_per_mtok": {"input": 1}}]}, "models[0].price_per_mtok.output"),
    ({"models": [{**GOOD, "price_as": "nonsense"}]}, "models[0].price_as"),
    ({"models": [{**GOOD, "n_ctx": 1024}]}, "models[0].n_ctx"),
    ({"models": [{**GOOD, "temprature": 0.5}]}, "models[0].temprature"),
    ({"models": [{"provider": "bard", "model": "x"}]}, "models[0].provider"),
    ({"models": [{"provider": "openai"}]}, "models[0].model"),
    (
        {"models": [{"provider": "local", "prompt_template": "no placeholder"}]},
        "models[0].prompt_template",
    ),
    ({"models": [GOOD, {**GOOD, "stop": "x"}]}, "models[1].stop"),
    ({"models": []}, "models"),
    ({"models": "ollama"}, "models"),
    ({"repeats": 0}, "repeats"),
    ({"concurrency": 0}, "concurrency"),
    ({"experiment": ""}, "experiment"),
    ({"prompts": []}, "prompts"),
    ({"prompts": [{"id": "a"}]}, "prompts[0].user"),
    ({"prompts": [{"user": "hi"}]}, "prompts[0].id"),
    ({"max_cost_usd": -1}, "max_cost_usd"),
    ({"promote": {"require": ["p95 < fast"]}}, "promote.require"),
]


@pytest.mark.parametrize(("change", "field"), MALFORMED, ids=[f for _, f in MALFORMED])
def test_malformed_files_give_one_line_exit_2_and_no_run(tmp_path: Path, change: dict, field: str):
    fields = {"models": [GOOD], **change}
    path = write_experiment(tmp_path, **fields)
    result = invoke("run", str(path))
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert "\n" not in message
    assert message.startswith(f"error: {path}: {field}"), message
    assert not (tmp_path / "mlflow.db").exists()


def test_a_cut_off_stream_is_retried_then_failed_never_a_success(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    fake_ollama.truncate_stream = True
    path = write_experiment(tmp_path, ollama(fake_ollama, max_retries=1), prompts=unique_prompts(1))
    assert invoke("run", str(path)).exit_code == 1
    assert len(fake_ollama.generation_requests()) == 2, "retried once, as max_retries says"
    (row,) = rows()
    assert (row["n_calls"], row["n_errors"]) == (1, 1) and row["latency_p50_s"] is None
    client = MlflowClient(tracking_uri)
    table = json.loads(Path(client.download_artifacts(row["run_id"], "calls.json")).read_text())
    error = table["data"][0][table["columns"].index("error")]
    assert error.startswith("StreamCutOff: ollama: the stream was cut off")
