"""The trace writer child imports MLflow as soon as it learns the store, while the parent is
still opening it, and not when the first call arrives; it leaves the store to the parent."""

import subprocess
import sys
from pathlib import Path


def test_open_imports_mlflow_but_touches_no_store(tmp_path: Path):
    db = tmp_path / "new.db"
    code = (
        "import sys\n"
        "from llmflow.tracking.trace_writer import _ChildState\n"
        "before = 'mlflow' in sys.modules\n"
        f"_ChildState().take(('open', 'sqlite:///{db}'))\n"
        "print(before, 'mlflow.store.tracking.sqlalchemy_store' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
    assert not db.exists()  # the parent creates it (from its template), never two at once
