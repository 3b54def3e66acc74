"""`llmflow compare` on a local sqlite store reads it without MLflow: the same comparison as
MLflow's client gives, and MLflow is asked whenever the reader cannot be sure."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from llmflow.experiment import RunRequest, run_experiment
from llmflow.report import to_json, to_markdown
from llmflow.tracking.read import read_comparison as load_comparison
from llmflow.tracking.read import sqlite_comparison
from tests.helpers import write_experiment

EXPERIMENT = "provider-comparison"


def ollama_and_openai(fake_ollama, fake_openai) -> list[dict]:
    """A local model and a priced one (its key: OPENAI_API_KEY)."""
    return [
        {"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url},
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": f"{fake_openai.url}/v1",
            "api_key_env": "OPENAI_API_KEY",
            "price_as": "openai/gpt-4o-mini",
        },
    ]


@pytest.fixture
def two_runs(tmp_path: Path, tracking_uri: str, fake_ollama, fake_openai) -> list[str]:
    """Two runs of four variants (a temperature sweep; openai skipped: no key); parent ids."""
    models = ollama_and_openai(fake_ollama, fake_openai)
    path = write_experiment(tmp_path, models, sweep={"temperature": [0.0, 0.5]})
    parents = []
    for _ in range(2):
        result = run_experiment(RunRequest(experiment_file=path, tracking_uri=tracking_uri))
        parents.append(result.parent_run_id)
    return parents


def both(tracking_uri: str, run_id: str | None = None):
    mine = sqlite_comparison(tracking_uri, EXPERIMENT, run_id)
    theirs = load_comparison(MlflowClient(tracking_uri), EXPERIMENT, run_id)
    return mine, theirs


def test_the_same_comparison_as_mlflow_gives(tracking_uri: str, two_runs: list[str]):
    for run_id in (None, two_runs[0]):
        mine, theirs = both(tracking_uri, run_id)
        assert mine == theirs
        assert to_json(mine) == to_json(theirs) and to_markdown(mine) == to_markdown(theirs)
    assert mine.parent_run_id == two_runs[0] and len(mine.rows) == 4


def test_nan_metrics_and_deleted_runs_as_mlflow_reads_them(tracking_uri: str, two_runs):
    client = MlflowClient(tracking_uri)
    client.delete_run(two_runs[1])  # the latest is gone: the one before is the latest now
    mine, theirs = both(tracking_uri)
    assert mine.parent_run_id == theirs.parent_run_id == two_runs[0]
    client.log_metric(mine.rows[0].run_id, "latency_p95_s", math.nan)
    mine, theirs = both(tracking_uri)
    # a NaN metric is one llmflow score has withdrawn (MLflow cannot delete one): unknown
    assert mine.rows[0].latency_p95_s is None
    assert to_json(mine) == to_json(theirs)


def test_what_it_cannot_tell_is_left_to_mlflow(tmp_path: Path, tracking_uri: str, two_runs):
    assert sqlite_comparison(tracking_uri, "no-such-experiment", None) is None
    assert sqlite_comparison(tracking_uri, EXPERIMENT, "no-such-run") is None
    assert sqlite_comparison(f"sqlite:///{tmp_path / 'absent.db'}", EXPERIMENT, None) is None
    (tmp_path / "text.db").write_text("not a database")
    assert sqlite_comparison(f"sqlite:///{tmp_path / 'text.db'}", EXPERIMENT, None) is None
    assert sqlite_comparison("http://127.0.0.1:5000", EXPERIMENT, None) is None


def test_compare_on_sqlite_does_not_import_mlflow(tracking_uri: str, two_runs):
    code = (
        "import sys\n"
        f"sys.argv = ['llmflow', 'compare', '-e', {EXPERIMENT!r}, '--tracking-uri', "
        f"{tracking_uri!r}]\n"
        "from llmflow.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "print('mlflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "llama3.1" in done.stdout and "skipped: OPENAI_API_KEY" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "False"
