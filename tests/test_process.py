"""The process-wide tricks (_process.py): only in a process llmflow owns, all off with
LLMFLOW_LEAN=0; a library user's process is left as it was. Each case in a fresh interpreter:
this one has every library loaded already."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = "from llmflow._process import prepare_cli_process\nprepare_cli_process()\n"
WORKER = "from llmflow._process import prepare_worker_process\nprepare_worker_process()\n"


def _run(code: str, **env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LLMFLOW_"))}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**environ, **env}
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_importing_llmflow_leaves_the_users_process_as_it_was():
    changed = _run(
        "import gc, os, sys\n"
        "environ, hidden = dict(os.environ), [n for n, m in sys.modules.items() if m is None]\n"
        "finders, frozen, threshold = list(sys.meta_path), gc.get_freeze_count(), "
        "gc.get_threshold()\n"
        "import llmflow, llmflow.tracking, llmflow.experiment, llmflow.providers.openai_compat\n"
        "from llmflow._process import gc_paused\n"
        "with gc_paused():\n"  # the provider opening of run_experiment
        "    print(gc.isenabled())\n"
        "print(dict(os.environ) == environ, [n for n, m in sys.modules.items() if m is None]"
        " == hidden, sys.meta_path == finders, gc.get_freeze_count() == frozen,"
        " gc.get_threshold() == threshold)\n"
    )
    assert changed == ["True", "True", "True", "True", "True", "True"]


def test_the_command_sets_mlflows_defaults_and_a_users_value_wins():
    values = _run(
        CLI + "import os\n"
        "print(repr(os.environ['MLFLOW_MODEL_CATALOG_URI']),"
        " os.environ['MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT'],"
        " os.environ['MLFLOW_LOGGING_LEVEL'])",
        MLFLOW_LOGGING_LEVEL="DEBUG",
    )
    assert values == ["''", "true", "DEBUG"]


def test_the_openai_sdk_loads_without_aiohttp_which_the_gemini_sdk_still_gets():
    loaded = _run(
        CLI + "import sys\n"
        "from llmflow.providers import openai_compat\n"
        "print(*(n in sys.modules for n in ('openai', 'aiohttp')))\n"
        "from llmflow.providers import gemini\n"  # its error mapping imports aiohttp
        "print(sys.modules['aiohttp'] is not None)\n"
    )
    assert loaded == ["True", "False", "True"]


def test_a_users_own_process_keeps_its_libraries_whole():
    loaded = _run(
        "import sys\n"
        "from llmflow.providers import openai_compat\n"  # run_experiment in a user's program
        "import openai\n"
        "openai.DefaultAioHttpClient()\n"
        "print('aiohttp' in sys.modules)\n"
    )
    assert loaded == ["True"]


def test_pyarrow_and_scipy_stay_out_of_the_worker_and_can_still_be_imported():
    loaded = _run(
        WORKER + "import sys\n"
        "from llmflow.tracking.mlflow_import import import_mlflow\n"
        "import_mlflow('sqlite:')\n"
        "print(*(n in sys.modules for n in ('mlflow.store.tracking.sqlalchemy_store',"
        " 'pandas', 'pyarrow', 'scipy')))\n"
        "import scipy.sparse, pyarrow\n"  # a model trained in the run imports scikit-learn
        "print(sys.modules['scipy'] is not None)\n"
    )
    assert loaded == ["True", "True", "False", "False", "True"]


def test_the_switch_turns_every_trick_off():
    loaded = _run(
        WORKER + CLI + "import gc, sys\n"
        "from llmflow._process import gc_paused\n"
        "from llmflow.tracking.mlflow_import import import_mlflow\n"
        "import_mlflow('sqlite:')\n"
        "import openai\n"
        "with gc_paused():\n"
        "    print(gc.isenabled())\n"
        "print(*(n in sys.modules for n in ('aiohttp', 'pyarrow')))\n",
        LLMFLOW_LEAN="0",
    )
    assert loaded == ["True", "True", "True"]


def test_a_library_that_needs_a_hidden_one_fails_without_a_reimport():
    outcome = _run(
        WORKER + "import sys\n"
        "from llmflow._process import LeanImportFailed, import_lean\n"
        "try:\n"
        "    import_lean('mlflow.tracing.utils', ('cachetools',))\n"  # MLflow needs it
        "except LeanImportFailed as e:\n"
        "    print('failed', 'cachetools' in str(e))\n"
        "print(sys.modules.get('cachetools') is None, sys.meta_path[0].__class__.__name__)\n"
    )
    assert outcome[:3] == ["failed", "True", "True"] and outcome[3] != "_HiddenFrom"


def test_a_worker_whose_lean_import_fails_starts_again_without_the_tricks(tmp_path: Path):
    """The worker's main re-executes itself with LLMFLOW_LEAN=0: same pipes, nothing imported
    twice; it then serves as usual (its answer to an unknown message: the input ends)."""
    code = (
        "import sys, os\n"
        "from llmflow.tracking import mlflow_import\n"
        "if os.environ.get('LLMFLOW_LEAN') != '0':\n"
        "    mlflow_import.UNUSED_BY_THE_WRITER = ('pyarrow', 'cachetools')\n"
        "else:\n"
        "    print('restarted', file=sys.stderr, flush=True)\n"
        "from llmflow.worker.main import main\n"
        "main()\n"
    )
    script = tmp_path / "worker.py"
    script.write_text(code)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LLMFLOW_")}
    done = subprocess.run(
        [sys.executable, str(script), "sqlite"],
        input=b"",
        capture_output=True,
        env=environ,
        timeout=100,
    )
    assert b"restarted" in done.stderr, done.stderr[-2000:]


def test_the_worker_finds_the_users_pythonpath_first_then_this_llmflow(monkeypatch, tmp_path):
    from llmflow.worker import pool

    started: list[dict[str, str]] = []

    def popen(*args, env, **kwargs):
        started.append(env)
        raise OSError("not started")  # only the environment it would have had matters

    monkeypatch.setattr(pool.subprocess, "Popen", popen)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(OSError, match="not started"):
        pool._spawn("sqlite:///x.db")
    first, this = started[0]["PYTHONPATH"].split(os.pathsep)
    assert first == str(tmp_path) and Path(this, "llmflow", "_process.py").is_file()
