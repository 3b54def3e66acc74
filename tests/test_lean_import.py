"""Libraries imported without the optional ones llmflow never uses there (lean_import.py), each
in a fresh interpreter: this one has them all loaded already."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_pyarrow_and_scipy_stay_out_and_can_still_be_imported():
    loaded = _run(
        "import sys\n"
        "from llmflow.tracking.mlflow_import import import_mlflow\n"
        "import_mlflow('sqlite:')\n"
        "print(*(n in sys.modules for n in ('mlflow.store.tracking.sqlalchemy_store',"
        " 'pandas', 'pyarrow', 'scipy')))\n"
        "import scipy.sparse, pyarrow\n"  # a model trained in the run imports scikit-learn
        "print(sys.modules['scipy'] is not None)\n"
    )
    assert loaded == ["True", "True", "False", "False", "True"]


def test_a_library_mlflow_needs_at_import_is_imported_anyway():
    loaded = _run(
        "import sys\n"
        "from llmflow.tracking import mlflow_import\n"
        "mlflow_import.UNUSED_BY_THE_WRITER = ('sqlalchemy',)\n"  # the store imports it
        "mlflow_import.import_mlflow('sqlite:')\n"
        "print(*(sys.modules.get(n) is not None for n in"
        " ('sqlalchemy', 'mlflow.store.tracking.sqlalchemy_store')))\n"
    )
    assert loaded == ["True", "True"]


def test_the_openai_provider_leaves_aiohttp_to_the_gemini_sdk():
    loaded = _run(
        "import sys\n"
        "from llmflow.providers import openai_compat\n"
        "print(*(n in sys.modules for n in ('openai', 'aiohttp')))\n"
        "from llmflow.providers import gemini\n"  # its error mapping imports aiohttp
        "print(sys.modules['aiohttp'] is not None)\n"
    )
    assert loaded == ["True", "False", "True"]
