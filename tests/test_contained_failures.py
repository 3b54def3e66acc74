"""What each broad `except` in the pipeline catches: a failure after the calls are paid for is a
line in the run's summary, never a lost run, and an unforeseen error in one call fails only
that call."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

from typer.testing import CliRunner

from llmflow.cli import app
from tests.helpers import write_experiment


def run(tmp_path: Path, fake_ollama, **fields):
    models = [{"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url, **fields}]
    path = write_experiment(tmp_path, models, prompts=[{"id": "a", "user": "hi"}], repeats=2)
    return CliRunner().invoke(app, ["run", str(path)])


def compared(tmp_path: Path) -> dict:
    shown = CliRunner().invoke(app, ["compare", "-e", "provider-comparison", "-f", "json"])
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.stdout)[0]


def test_an_unforeseen_error_in_a_provider_fails_that_call_only(
    tmp_path: Path, fake_ollama, monkeypatch
):
    from llmflow.providers import ollama

    real = ollama.OllamaProvider.stream
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("an SDK bug")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ollama.OllamaProvider, "stream", flaky)
    result = run(tmp_path, fake_ollama, max_retries=0)
    assert result.exit_code == 1, result.output  # a failed call: exit 1, not a crash
    assert "Traceback" not in result.output
    row = compared(tmp_path)
    assert (row["n_calls"], row["n_errors"]) == (2, 1)


def test_a_variant_whose_every_call_fails_inside_llmflow_fails_the_run(
    tmp_path: Path, fake_ollama, monkeypatch
):
    """Not a provider's error but a bug (llmflow's or an SDK's) on every call: the run fails
    with one line naming the variant, its calls kept (FAILED runs); --debug shows where."""
    from mlflow import MlflowClient

    from llmflow.providers import ollama

    def broken(self, *args, **kwargs):
        raise TypeError("an adapter bug")

    monkeypatch.setattr(ollama.OllamaProvider, "stream", broken)
    result = run(tmp_path, fake_ollama, max_retries=0)
    assert result.exit_code == 1, result.output
    assert "every call of llama3.1 failed inside llmflow" in result.output, result.output
    assert "TypeError: an adapter bug" in result.output and "Traceback" not in result.output
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("provider-comparison").experiment_id
    assert {r.info.status for r in client.search_runs([experiment])} == {"FAILED"}
    assert compared(tmp_path)["n_errors"] == 2
    models = [{"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}]
    path = write_experiment(tmp_path, models, prompts=[{"id": "a", "user": "hi"}])
    debugged = CliRunner().invoke(app, ["run", str(path), "--debug"])
    assert debugged.exit_code != 0
    shown = "".join(traceback.format_exception(debugged.exception))
    assert 'raise TypeError("an adapter bug")' in shown


def test_a_report_that_fails_is_a_line_and_the_run_is_kept(tmp_path: Path, fake_ollama):
    taken = tmp_path / "taken"
    taken.write_text("a file where the report folder should go")
    models = [{"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}]
    path = write_experiment(tmp_path, models, prompts=[{"id": "a", "user": "hi"}], report=True)
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(taken)])
    assert "could not write the report: FileExistsError" in result.output, result.output
    assert compared(tmp_path)["n_calls"] == 1


def test_a_registration_that_fails_is_a_line_and_the_run_is_kept(
    tmp_path: Path, fake_ollama, monkeypatch
):
    """The registration runs in the worker (worker/handlers.py): its containment
    is register_and_promote's, called here on the comparison of a real run."""
    from mlflow import MlflowClient

    from llmflow.config import load_experiment
    from llmflow.plan import build_plan
    from llmflow.registry import versions
    from llmflow.registry.registration import register_and_promote
    from llmflow.tracking.read import read_comparison as load_comparison

    def refused(*_args, **_kwargs):
        raise RuntimeError("registry down")

    models = [
        {
            "provider": "ollama",
            "model": "llama3.1",
            "base_url": fake_ollama.url,
            "register_as": "llm_ollama_chat",
        }
    ]
    path = write_experiment(tmp_path, models, prompts=[{"id": "a", "user": "hi"}], repeats=2)
    # in this process only; the lookup of what to register fails first (the run itself
    # registered v1 already, which a rerun of unchanged settings would keep)
    monkeypatch.setattr(versions, "registration_target", refused)
    monkeypatch.setattr(versions, "register_run", refused)
    assert CliRunner().invoke(app, ["run", str(path)]).exit_code == 0
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    comparison = load_comparison(client, "provider-comparison", None)
    loaded = load_experiment(path)
    outcome = register_and_promote(client, loaded, build_plan(loaded), False, comparison)
    assert outcome.problems == ["could not register llama3.1: RuntimeError: registry down"]
    assert compared(tmp_path)["n_calls"] == 2


def test_a_report_whose_data_cannot_be_read_is_a_line_not_a_failed_run():
    """The report's data is read in the worker, inside the finish: a failure there is a line in
    the run's problems, as any other report failure."""
    from types import SimpleNamespace

    from llmflow.worker.finish import Finish

    class RefusingClient:
        def __getattr__(self, name):
            raise OSError("store refused")

    loaded = SimpleNamespace(config=SimpleNamespace(report=True, experiment="e"))
    run = SimpleNamespace(loaded=loaded)
    store = SimpleNamespace(client=RefusingClient())
    finish = Finish(store, run, request=None)
    comparison = SimpleNamespace(rows=[SimpleNamespace(run_id="r", skipped=None)])
    assert finish.report_data(comparison) is None
    assert finish.problems == ["could not write the report: OSError: store refused"]


def test_a_finishing_that_fails_ends_every_run_as_failed(
    tmp_path: Path, tracking_uri: str, fake_ollama, monkeypatch
):
    """Wherever the finish fails, the main process asks the worker to end every run
    (session.Session._end_all_failed): none is left RUNNING."""
    from mlflow import MlflowClient

    from llmflow.worker.client import WorkerClient
    from llmflow.worker.protocol import FinishRun

    asking = WorkerClient.ask

    def broken(self, request):
        if isinstance(request, FinishRun):
            raise OSError("disk full")
        return asking(self, request)

    monkeypatch.setattr(WorkerClient, "ask", broken)  # the main process's side
    result = run(tmp_path, fake_ollama)
    assert result.exit_code == 1, result.output
    assert "OSError: disk full" in result.output and "was ended as FAILED" in result.output
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("provider-comparison").experiment_id])
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FAILED"}
