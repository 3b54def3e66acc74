"""`scorers: [{type: mlflow, ...}]`: MLflow's built-in judges, called for real through MLflow's
OpenAI adapter on the fake server, grade every variant's answers after `llmflow run` and again
in `llmflow score`; the schema's mistakes are one line; a file without them never loads them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from llmflow.config import load_experiment
from llmflow.errors import ConfigError
from tests.helpers import compare_rows, invoke_cli, write_experiment

PROMPTS = [
    {"id": "capital", "user": "Capital of France?", "expected": "Paris"},
    {"id": "colour", "user": "Colour of the sky?", "expected": "Blue"},
]


def _models(fake) -> list[dict]:
    entry = {"provider": "openai", "base_url": f"{fake.url}/v1", "api_key_env": "K"}
    return [
        {**entry, "model": "gpt-4o-mini"},
        {**entry, "model": "gpt-4o"},
        {**entry, "model": "judge-model", "name": "judge"},
    ]


JUDGES = [
    {"type": "mlflow", "judge": "Correctness", "model": "judge"},
    {"type": "mlflow", "judge": "Guidelines", "model": "judge", "guidelines": "Be brief."},
    {"type": "not-empty"},
]


def _verdicts(client: MlflowClient, experiment_id: str, run_id: str) -> list[dict]:
    found = []
    for trace in client.search_traces(locations=[experiment_id], run_id=run_id):
        valid = [a for a in trace.info.assessments if a.valid is not False]
        found.append({a.name: (a.value, a.source.source_type) for a in valid})
    return found


def test_a_run_ends_with_mlflows_judges_verdicts_on_every_variant_trace(
    tmp_path: Path, tracking_uri: str, fake_openai, monkeypatch
):
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    monkeypatch.setenv("K", "test-openai-key")
    path = write_experiment(tmp_path, _models(fake_openai), prompts=PROMPTS, scorers=JUDGES)
    assert invoke_cli("run", str(path), "--tracking-uri", tracking_uri).exit_code == 0
    asked = [r for r in fake_openai.generation_requests() if r.body.get("response_format")]
    assert len(asked) == 3 * 2 * 2  # 3 variants (the judge's entry is one too) x 2 prompts x 2
    assert {r.body["model"] for r in asked} == {"judge-model"}
    assert "OPENAI_API_BASE" not in os.environ  # set for the judges only

    client = MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name("provider-comparison").experiment_id
    variants = client.search_runs([experiment_id], "tags.`llmflow.kind` = 'variant'")
    assert len(variants) == 3
    for run in variants:
        verdicts = _verdicts(client, experiment_id, run.info.run_id)
        assert len(verdicts) == 2
        for verdict in verdicts:
            assert verdict["correctness"] == (True, "LLM_JUDGE")
            assert verdict["guidelines"] == (True, "LLM_JUDGE")
            assert verdict["not-empty"] == (True, "CODE")
        assert run.data.metrics["score.correctness"] == 1.0
        assert run.data.metrics["score.guidelines"] == 1.0
    rows = compare_rows()
    assert all(row["scores"]["correctness"] == 1.0 for row in rows), rows

    # `llmflow score` keeps the verdicts of the same judges: nothing asked, nothing written
    before = len(fake_openai.generation_requests())
    scored = invoke_cli("score", "-e", "provider-comparison", "--tracking-uri", tracking_uri)
    assert scored.exit_code == 0, scored.stdout
    assert len(fake_openai.generation_requests()) == before
    run_id = variants[0].info.run_id
    assert _verdicts(client, experiment_id, run_id) == _verdicts(client, experiment_id, run_id)


def test_score_asks_a_judge_added_to_the_file(
    tmp_path: Path, tracking_uri: str, fake_openai, monkeypatch
):
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    monkeypatch.setenv("K", "test-openai-key")
    models = _models(fake_openai)
    path = write_experiment(tmp_path, models, prompts=PROMPTS, scorers=[{"type": "not-empty"}])
    assert invoke_cli("run", str(path), "--tracking-uri", tracking_uri).exit_code == 0
    write_experiment(tmp_path, models, prompts=PROMPTS, scorers=JUDGES[:1])
    scored = invoke_cli(
        "score", "-e", "provider-comparison", "--config", str(path), "--tracking-uri", tracking_uri
    )
    assert scored.exit_code == 0, scored.stdout
    client = MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name("provider-comparison").experiment_id
    for run in client.search_runs([experiment_id], "tags.`llmflow.kind` = 'variant'"):
        for verdict in _verdicts(client, experiment_id, run.info.run_id):
            assert verdict["correctness"] == (True, "LLM_JUDGE")
        assert run.data.metrics["score.correctness"] == 1.0


@pytest.mark.parametrize(
    ("scorer", "prompts", "problem"),
    [
        (
            {"judge": "Fairness", "model": "judge"},
            PROMPTS,
            "scorers[0].judge: must be one of Correctness, Equivalence, Guidelines,",
        ),
        ({"judge": "Safety", "model": "gpt-5"}, PROMPTS, "scorers[0].model: no models: entry"),
        ({"judge": "Safety", "model": "gem"}, PROMPTS, "scorers[0].model: 'gem' is gemini:"),
        ({"judge": "Guidelines", "model": "judge"}, PROMPTS, "scorers[0].guidelines: the"),
        (
            {"judge": "Correctness", "model": "judge"},
            [{"id": "open", "user": "Hi"}],
            "scorers[0].judge: Correctness needs each prompt's expected answer, 1 have none: open",
        ),
    ],
)
def test_a_mistake_in_an_mlflow_judge_is_one_line(tmp_path: Path, scorer, prompts, problem):
    models = [
        {"provider": "openai", "model": "judge-model", "name": "judge"},
        {"provider": "gemini", "model": "gemini-2.5-flash", "name": "gem"},
    ]
    path = write_experiment(
        tmp_path, models, prompts=prompts, scorers=[{"type": "mlflow", **scorer}]
    )
    with pytest.raises(ConfigError) as error:
        load_experiment(path)
    assert problem in str(error.value) and "\n" not in str(error.value)


def test_a_run_without_them_never_imports_mlflows_judges(
    tmp_path: Path, tracking_uri: str, fake_openai
):
    path = write_experiment(
        tmp_path, _models(fake_openai)[:1], prompts=PROMPTS, scorers=[{"type": "not-empty"}]
    )
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from llmflow.experiment import run_experiment\n"
        "from llmflow.run_types import RunRequest\n"
        f"result = run_experiment(RunRequest(Path({str(path)!r}), {tracking_uri!r}))\n"
        "print(len(result.records), 'mlflow.genai.scorers' in sys.modules)\n"
    )
    env = {**os.environ, "K": "test-openai-key"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.stdout.split() == ["1", "False"], done.stderr[-2000:]


def test_a_judges_bad_answer_or_dead_server_is_a_score_error_not_a_crash(
    tmp_path: Path, tracking_uri: str, fake_openai, monkeypatch
):
    import mlflow.genai.judges.adapters.utils as adapter

    tries = []
    monkeypatch.setattr(adapter, "_sleep_with_backoff", tries.append)  # MLflow's 3 min of waits
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    monkeypatch.setenv("K", "test-openai-key")
    fake_openai.structured_reply = "I think it is fine."
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
    models = [*_models(fake_openai)[:2], {"provider": "openai", "model": "m", "base_url": dead}]
    scorers = [
        {"type": "mlflow", "judge": "Correctness", "model": "gpt-4o"},
        {"type": "mlflow", "judge": "Safety", "model": "m"},
    ]
    path = write_experiment(tmp_path, models, prompts=PROMPTS, scorers=scorers)
    ran = invoke_cli("run", str(path), "--tracking-uri", tracking_uri)
    assert ran.exit_code == 1 and "Traceback" not in ran.output  # m itself was skipped
    # the first variant's 2 calls to the dead judge (in flight together), MLflow's 10 retries
    # each; none for the second variant's
    assert 10 <= len(tries) <= 20

    client = MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name("provider-comparison").experiment_id
    judged = 0
    for run in client.search_runs([experiment_id], "tags.`llmflow.kind` = 'variant'"):
        assert "score.correctness" not in run.data.metrics
        for trace in client.search_traces(locations=[experiment_id], run_id=run.info.run_id):
            errors = {a.name: a.error.error_message for a in trace.info.assessments}
            assert errors["correctness"].startswith("MLflow judge failed: ")
            assert errors["safety"].startswith("MLflow judge unreachable: ")
            judged += 1
    assert judged == 4  # 2 variants x 2 prompts (m was skipped: its server is down)
