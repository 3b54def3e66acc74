"""Every command's error paths: one line, a documented exit code, never a traceback."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmflow.cli import app
from tests.helpers import write_experiment


def run_cli(*args: str, cwd: Path):
    result = CliRunner().invoke(app, list(args))
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    return write_experiment(
        tmp_path, [{"provider": "ollama", "model": "llama3.1", "base_url": "http://127.0.0.1:9"}]
    )


def bad_stores(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "folder.db").mkdir()
    (tmp_path / "text.db").write_text("not a database\n")
    return {
        "folder": f"sqlite:///{tmp_path / 'folder.db'}",
        "text file": f"sqlite:///{tmp_path / 'text.db'}",
        "missing folder": f"sqlite:///{tmp_path / 'nope' / 'x.db'}",
        "no server": "http://user:PASSWORD@127.0.0.1:9",
    }


@pytest.mark.parametrize("store", ["folder", "text file", "missing folder", "no server"])
@pytest.mark.parametrize("command", ["run", "compare", "report", "models"])
def test_an_unusable_store_is_one_line(tmp_path: Path, experiment: Path, store: str, command):
    uri = bad_stores(tmp_path)[store]
    args = {
        "run": ["run", str(experiment)],
        "compare": ["compare", "-e", "provider-comparison"],
        "report": ["report", "-e", "provider-comparison", "--out", str(tmp_path / "r")],
        "models": ["models"],
    }[command]
    result = run_cli(*args, "--tracking-uri", uri, cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stderr.count("error:") == 1 and "PASSWORD" not in result.stderr


def test_bad_input_is_exit_2(tmp_path: Path, experiment: Path):
    assert run_cli("run", str(tmp_path / "missing.yaml"), cwd=tmp_path).exit_code == 2
    (tmp_path / "broken.yaml").write_text("models: [\n")
    assert run_cli("run", str(tmp_path / "broken.yaml"), cwd=tmp_path).exit_code == 2
    assert run_cli("run", str(experiment), "some-run-id", cwd=tmp_path).exit_code == 2


def test_reading_what_does_not_exist_is_one_line(tmp_path: Path, experiment: Path):
    for args in (
        ["compare", "-e", "nothing-here"],
        ["report", "-e", "nothing-here", "--out", str(tmp_path / "r")],
        ["run", str(experiment), "--resume", "no-such-run"],
    ):
        result = run_cli(*args, cwd=tmp_path)
        assert result.exit_code in (1, 2) and "error:" in result.stderr, args


@pytest.mark.parametrize(
    "args",
    [
        ["compare", "-e", "quickstart"],
        ["compare", "-e", "quickstart", "--baseline", "previous"],
        ["report", "-e", "quickstart", "--out", "r"],
        ["score", "-e", "quickstart"],
        ["models"],
        ["models", "history", "llm_local_chat"],
        ["promote", "llm_local_chat", "-v", "1", "--to", "production"],
        ["register", "--run", "0123"],
    ],
)
def test_a_command_that_reads_runs_never_creates_a_store(tmp_path: Path, args: list[str]):
    """Typed in a folder without the runs, it says so, rather than MLflow leaving an empty
    mlflow.db there and the command saying that the experiment or model is unknown."""
    missing = tmp_path / "mlflow.db"
    result = run_cli(*args, "--tracking-uri", f"sqlite:///{missing}", cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stderr.count("error:") == 1
    makers = "only `llmflow run` and `llmflow dataset push` make one"
    assert f"no MLflow store at {missing} ({makers})" in result.stderr
    assert not missing.exists()


def test_no_registered_models_is_said_not_drawn(tmp_path: Path, tracking_uri: str):
    from llmflow.tracking.runs import RunStore

    RunStore(tracking_uri)  # the store exists, with nothing registered
    result = run_cli("models", cwd=tmp_path)
    assert result.exit_code == 0
    assert result.stdout.startswith("no registered models yet: `llmflow run` registers")


def test_an_unexpected_error_is_one_line_that_points_at_debug(
    tmp_path: Path, tracking_uri: str, monkeypatch
):
    import llmflow.tracking.read as read
    from llmflow.tracking.runs import RunStore

    RunStore(tracking_uri)  # the working folder's store

    def broken(*args, **kwargs):
        raise RuntimeError("something inside llmflow broke")

    monkeypatch.setattr(read, "read_comparison", broken)
    result = run_cli("compare", "-e", "x", cwd=tmp_path)
    assert result.exit_code == 1
    assert "unexpected RuntimeError: something inside llmflow broke" in result.stderr
    assert "--debug" in result.stderr
    with pytest.raises(RuntimeError):
        CliRunner().invoke(app, ["compare", "-e", "x", "--debug"], catch_exceptions=False)


def test_a_deleted_experiment_is_one_line(tmp_path: Path, tracking_uri: str, fake_ollama):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    client.delete_experiment(client.create_experiment("provider-comparison"))
    path = write_experiment(
        tmp_path, [{"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}]
    )
    result = run_cli("run", str(path), cwd=tmp_path)
    assert result.exit_code == 1 and "is deleted: restore it" in result.stderr
    deleted = client.get_experiment_by_name("provider-comparison")
    assert client.search_runs([deleted.experiment_id], run_view_type=3) == []


def test_a_failure_after_the_runs_exist_ends_them_and_says_how_to_resume(
    tmp_path: Path, tracking_uri: str, fake_ollama, monkeypatch
):
    from mlflow import MlflowClient

    from llmflow import runner

    async def broken(self, calls):
        raise OSError("No space left on device")

    monkeypatch.setattr(runner.Runner, "run", broken)
    path = write_experiment(
        tmp_path, [{"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}]
    )
    result = run_cli("run", str(path), cwd=tmp_path)
    assert result.exit_code == 1
    assert "OSError: No space left on device" in result.stderr
    assert "was ended as FAILED" in result.stderr and "--resume" in result.stderr
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("provider-comparison").experiment_id])
    assert runs and {r.info.status for r in runs} == {"FAILED"}


def test_a_run_error_is_the_first_line(tmp_path: Path):
    """No blank line above it: the progress bar starts with the calls, not before the file is
    read."""
    path = write_experiment(tmp_path, [{"provider": "ollama", "model": "llama3.1"}])
    path.write_text(path.read_text().replace("repeats: 1", "repeats: 0"))
    result = run_cli("run", str(path), cwd=tmp_path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}: repeats:"), repr(result.stderr)


def test_a_missing_prompts_file_names_the_experiment_file_and_where_it_looked(tmp_path: Path):
    (tmp_path / "exp").mkdir()
    path = write_experiment(tmp_path / "exp", [{"provider": "local"}], prompts="data/p.jsonl")
    result = run_cli("run", str(path), cwd=tmp_path)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {path}: prompts: cannot read data/p.jsonl ({tmp_path / 'exp' / 'data' / 'p.jsonl'}"
        "): No such file or directory"
    )


def test_an_unreachable_server_is_said_once_with_its_url(tmp_path: Path, tracking_uri: str):
    models = [
        {"provider": "openai", "model": "m", "base_url": "http://me:PASSWORD@127.0.0.1:9/v1"},
        {"provider": "ollama", "model": "llama3.1", "base_url": "http://127.0.0.1:9"},
    ]
    result = run_cli("run", str(write_experiment(tmp_path, models)), cwd=tmp_path)
    assert result.exit_code == 1
    said = [line for line in result.stderr.splitlines() if "cannot connect" in line]
    assert len(said) == 2, result.stderr
    assert "openai: cannot connect to http://127.0.0.1:9/v1/" in said[0]
    assert "ollama: cannot connect to http://127.0.0.1:9" in said[1]
    assert "PASSWORD" not in result.stderr + result.stdout


def test_an_unknown_experiment_gets_a_did_you_mean(tmp_path: Path, tracking_uri: str):
    from llmflow.tracking.runs import RunStore

    RunStore(tracking_uri).experiment_id("fake-providers")
    result = run_cli("compare", "-e", "fake-provider", cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: no MLflow experiment named 'fake-provider' in {tracking_uri} "
        "(did you mean 'fake-providers'?)"
    )
