"""A model's answer is untrusted input: answers built to crash or hang a check, scored by the
real trace writer process of `llmflow run` (the fake Ollama server answers what each test
says), end as scorer errors on their calls; the run itself finishes, and a stop signal ends it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from mlflow import MlflowClient

from llmflow.scoring.guard import CHECK_LIMIT_S, MAX_OVERRUNS
from llmflow.tracking.traces import call_of
from tests.helpers import invoke_cli, ollama_models, unique_prompts, write_experiment
from tests.test_interruption import (
    _default_sigint,
    wait_for_journal_lines,
    wait_until_gone,
    worker_pids,
)

ROOT = Path(__file__).resolve().parents[2]
BACKTRACKS = "a" * 40 + "!"  # `re`, and jsonschema's patterns, take 2**40 steps on ^(a|a)+$
ANSWERS = {
    "nested": "[" * 1000 + "]" * 1000,  # Python's parser: RecursionError
    "digits": "1" * 5000,  # int(): ValueError past 4,300 digits
    "pattern": f'"{BACKTRACKS}"',  # a string whose schema pattern backtracks
    "backtrack": BACKTRACKS,
}
PROMPTS = [
    {"id": "nested", "user": "nested", "assert": [{"type": "is-json"}]},
    {"id": "digits", "user": "digits", "assert": [{"type": "is-json"}]},
    {
        "id": "pattern",
        "user": "pattern",
        "assert": [{"type": "is-json", "schema": {"type": "string", "pattern": "^(a|a)+$"}}],
    },
    {
        "id": "backtrack",
        "user": "backtrack",
        "assert": [
            {"type": "regex", "value": "^(a+)+$", "name": "nested-plus"},
            {"type": "regex", "value": "^(a|a)+$", "name": "alternation"},
        ],
    },
]
REPEATS = MAX_OVERRUNS + 1


def assessments_by_call(tracking_uri: str) -> tuple[dict, dict]:
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("provider-comparison").experiment_id
    (child,) = client.search_runs([experiment], filter_string="tags.`llmflow.kind` = 'variant'")
    traces = client.search_traces(locations=[experiment], run_id=child.info.run_id)
    found = {call_of(t.info): {a.name: a for a in t.info.assessments} for t in traces}
    return child, found


def error_of(assessment) -> str | None:
    return assessment.error.error_message if assessment.error else None


def test_hostile_answers_are_scorer_errors_and_the_run_finishes(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    fake_ollama.reply = lambda last: ANSWERS[last]
    path = write_experiment(tmp_path, ollama_models(fake_ollama), prompts=PROMPTS, repeats=REPEATS)
    start = time.monotonic()
    result = invoke_cli("run", str(path), "--tracking-uri", tracking_uri)
    took = time.monotonic() - start
    assert result.exit_code == 0, result.output
    child, calls = assessments_by_call(tracking_uri)
    assert child.info.status == "FINISHED"
    assert len(calls) == 4 * REPEATS  # every call traced, every score written
    nested = [error_of(calls[f"nested#{r}"]["nested.is-json"]) for r in range(REPEATS)]
    assert nested == ["not checked: JSON nested 1,000 levels deep (the limit is 64)"] * REPEATS
    digits = error_of(calls["digits#0"]["digits.is-json"])
    assert digits == "not checked: a JSON number of 5,000 characters (the limit is 1,000)"
    # a pattern that cannot backtrack in the regex engine: a plain failed check, at once
    plain = calls["backtrack#0"]["nested-plus"]
    assert plain.value is False and plain.error is None
    # the ones that do: the first MAX_OVERRUNS calls run to the limit, the rest not at all
    # a prompt's own unnamed check is named after the prompt: pattern.is-json
    for name, check in (("pattern", "pattern.is-json"), ("backtrack", "alternation")):
        reasons = Counter(error_of(calls[f"{name}#{r}"][check]) for r in range(REPEATS))
        kind = "is-json" if name == "pattern" else "regex"
        overran = f"not checked: {kind} ran past its 1 s limit"
        assert reasons == {
            overran: MAX_OVERRUNS,
            f"{overran} on {MAX_OVERRUNS} calls of this run already": REPEATS - MAX_OVERRUNS,
        }
    metrics = child.data.metrics
    assert metrics["n_score_errors"] == 4 * REPEATS and metrics["pass_rate"] == 0.0
    # 2 checks x MAX_OVERRUNS overruns of CHECK_LIMIT_S each, and the run's own few seconds
    assert took < 2 * MAX_OVERRUNS * CHECK_LIMIT_S + 30


def test_a_stop_signal_ends_a_run_whose_writer_is_busy_with_a_hostile_answer(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    """SIGTERM while the writer matches answers that backtrack: the runs end KILLED, and
    neither the run nor its trace writer outlives it (before: RUNNING, a writer spinning)."""
    fake_ollama.reply = lambda last: BACKTRACKS
    fake_ollama.delay_s = 0.2
    scorers = [{"type": "regex", "value": "^(a|a)+$"}]
    path = write_experiment(
        tmp_path,
        ollama_models(fake_ollama),
        prompts=unique_prompts(30),
        scorers=scorers,
        concurrency=1,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "llmflow.cli", "run", str(path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "stderr.txt").open("w"),
        start_new_session=True,
        preexec_fn=_default_sigint,
    )
    writers: list[int] = []
    try:
        wait_for_journal_lines(tmp_path, at_least=3)
        writers = worker_pids(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 130
        stderr = (tmp_path / "stderr.txt").read_text()
        assert "ended as KILLED" in stderr and "Traceback" not in stderr, stderr
        client = MlflowClient(tracking_uri)
        experiment = client.get_experiment_by_name("provider-comparison").experiment_id
        assert {r.info.status for r in client.search_runs([experiment])} == {"KILLED"}
        wait_until_gone(writers)
    finally:  # a failing run must not leave its processes behind
        for pid in [process.pid, *writers]:
            _kill(pid)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
