"""Basic auth on the server: credentials come from the environment only; a user who may only
read cannot create runs, and a wrong password, each say so in one line (exit code 1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmflow.cli import app
from tests.helpers import write_experiment
from tests.server.conftest import ADMIN_PASSWORD
from tests.server.servers import MlflowServer

pytestmark = pytest.mark.server

READER_PASSWORD = "canary-reader-pass-9b17"
EXPERIMENT = "team-auth"


@pytest.fixture(scope="module")
def reader(auth_mlflow: MlflowServer) -> str:
    """A user `reader` (READ by default) and the experiment, created by the admin."""
    from mlflow import MlflowClient
    from mlflow.server.auth.client import AuthServiceClient

    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    mp.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    try:
        AuthServiceClient(auth_mlflow.url).create_user("reader", READER_PASSWORD)
        MlflowClient(auth_mlflow.url).create_experiment(EXPERIMENT)
    finally:
        mp.undo()
    return "reader"


def _run_as(tmp_path: Path, url: str, fake_openai, user: str, password: str):
    fake_openai.api_key = None
    models = [{"provider": "openai", "model": "gpt-4o-mini", "base_url": f"{fake_openai.url}/v1"}]
    path = write_experiment(tmp_path, models, experiment=EXPERIMENT)
    env = {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}
    try:
        return CliRunner().invoke(app, ["run", str(path), "--tracking-uri", url], env=env)
    finally:
        fake_openai.api_key = "test-openai-key"


def _one_line(result) -> str:
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_reader_cannot_create_runs(
    tmp_path: Path, auth_mlflow: MlflowServer, reader: str, fake_openai
):
    result = _run_as(tmp_path, auth_mlflow.url, fake_openai, reader, READER_PASSWORD)
    assert result.exit_code == 1, result.output
    line = _one_line(result)
    assert "PERMISSION_DENIED" in line or "ermission" in line, line
    assert READER_PASSWORD not in result.output
    assert fake_openai.generation_requests() == [], "a call was paid for before the refusal"


def test_a_wrong_password_is_one_line(tmp_path: Path, auth_mlflow: MlflowServer, fake_openai):
    result = _run_as(tmp_path, auth_mlflow.url, fake_openai, "admin", "not-the-password")
    assert result.exit_code == 1, result.output
    line = _one_line(result)
    assert "401" in line or "authenticat" in line.lower(), line
    assert "not-the-password" not in result.output


def test_a_reader_cannot_score_and_no_judge_is_paid(
    tmp_path: Path, auth_mlflow: MlflowServer, reader: str, fake_openai
):
    fake_openai.api_key = None
    base = f"{fake_openai.url}/v1"
    judge = {
        "type": "judge",
        "name": "correct",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": base,
        "rubric": "Is the answer correct?",
    }
    models = [{"provider": "openai", "model": "gpt-4o-mini", "base_url": base}]
    try:
        path = write_experiment(tmp_path, models, experiment=EXPERIMENT, scorers=[judge])
        admin = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
        ran = CliRunner().invoke(
            app, ["run", str(path), "--tracking-uri", auth_mlflow.url], env=admin
        )
        assert ran.exit_code == 0, ran.output
        stricter = {**judge, "rubric": "Is the answer exactly right?"}  # would ask the judge
        edited = write_experiment(
            tmp_path, models, name="edited.yaml", experiment=EXPERIMENT, scorers=[stricter]
        )
        paid = len(fake_openai.completed)
        env = {"MLFLOW_TRACKING_USERNAME": reader, "MLFLOW_TRACKING_PASSWORD": READER_PASSWORD}
        score = ["score", "-e", EXPERIMENT, "--tracking-uri", auth_mlflow.url]
        result = CliRunner().invoke(app, [*score, "--config", str(edited)], env=env)
    finally:
        fake_openai.api_key = "test-openai-key"
    assert result.exit_code == 1, result.output
    line = _one_line(result)
    assert "may read it but not write it" in line and "no judge was asked" in line, line
    assert len(fake_openai.completed) == paid, "a judge was paid before the refusal"
