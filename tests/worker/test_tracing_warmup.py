"""The worker imports MLflow as soon as it learns the store (OpenRun), while the parent is
still opening it, and not when the first call arrives; it leaves the store to the parent. It
loads the libraries of the checks to come then too."""

import subprocess
import sys
from pathlib import Path


def after_open(message: tuple, probe: str) -> list[str]:
    """What `probe` prints in a fresh interpreter once a run state has taken OpenRun(*message)."""
    code = (
        "import sys\n"
        "from llmflow.worker.protocol import OpenRun\n"
        "from llmflow.worker.tracing import RunState\n"
        "before = 'mlflow' in sys.modules\n"
        f"RunState().open(OpenRun(*{message!r}))\n"
        f"print({probe})"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_open_imports_mlflow_but_touches_no_store(tmp_path: Path):
    db = tmp_path / "new.db"
    probe = "before, 'mlflow.store.tracking.sqlalchemy_store' in sys.modules"
    assert after_open((f"sqlite:///{db}", ()), probe) == ["False", "True"]
    assert not db.exists()  # the parent creates it (from its template), never two at once


def test_open_loads_the_libraries_of_the_checks_to_come(tmp_path: Path):
    message = (f"sqlite:///{tmp_path / 'new.db'}", ("not-empty", "rouge-l", "chrf"))
    probe = "'sacrebleu' in sys.modules, 'nltk' in sys.modules"
    assert after_open(message, probe) == ["True", "False"]
