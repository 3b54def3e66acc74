"""What the CLI costs before a command runs: parsing and --help import only the CLI's own light
modules, and a usage error from the console script is a message, not a traceback."""

import subprocess
import sys

import pytest

from tests.helpers import write_experiment

HEAVY = ["mlflow", "pydantic", "openai", "google.genai", "numpy", "matplotlib", "rich"]
COMMANDS = [
    "",
    "run",
    "compare",
    "report",
    "score",
    "register",
    "promote",
    "models",
    "models history",  # the group parses its own options first
]


def imported_after(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport sys\nprint(sorted(set({HEAVY!r}) & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])


def test_importing_the_cli_imports_nothing_heavy():
    assert imported_after("import llmflow.cli") == []


@pytest.mark.parametrize("command", COMMANDS)
def test_help_imports_nothing_heavy(command):
    argv = ["llmflow", *command.split(), "--help"]
    code = (
        f"import sys; sys.argv = {argv!r}\n"
        "from llmflow.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code"
    )
    assert imported_after(code) == []


def test_a_usage_error_is_one_message_and_exit_code_2():
    done = subprocess.run(
        [sys.executable, "-m", "llmflow.cli", "run", "--no-such-option"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "No such option: --no-such-option" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_console_script_skips_the_last_garbage_collection():
    """Objects frozen before exit: the interpreter's final collection over everything MLflow
    made takes seconds otherwise."""
    code = (
        "import gc, sys; sys.argv = ['llmflow', '--help']\n"
        "from llmflow.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(gc.get_freeze_count() > 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "True", done.stderr


def test_a_run_never_imports_mlflow_where_the_calls_are_sent(tmp_path, fake_ollama):
    """The worker keeps the store (worker/handlers.py): a run, report and registration
    included, imports MLflow once, there."""
    models = [
        {
            "provider": "ollama",
            "model": "llama3.1",
            "base_url": fake_ollama.url,
            "register_as": "llm_ollama_chat",
        }
    ]
    path = write_experiment(tmp_path, models, prompts=[{"id": "a", "user": "hi"}], report=True)
    code = (
        f"import sys; sys.argv = ['llmflow', 'run', {str(path)!r}]\n"
        "from llmflow.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code"
    )
    assert "mlflow" not in imported_after(code)
    assert (tmp_path / "mlflow.db").exists()
