"""Libraries imported without the optional ones llmflow never uses there (lean_import.py), each
in a fresh interpreter: this one has them all loaded already."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

OWN = "from llmflow.lean_import import claim_process\nclaim_process()\n"


def _run(code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_pyarrow_and_scipy_stay_out_of_the_writer_and_can_still_be_imported():
    loaded = _run(
        OWN + "import sys\n"
        "from llmflow.tracking.mlflow_import import import_mlflow\n"
        "import_mlflow('sqlite:')\n"
        "print(*(n in sys.modules for n in ('mlflow.store.tracking.sqlalchemy_store',"
        " 'pandas', 'pyarrow', 'scipy')))\n"
        "import scipy.sparse, pyarrow\n"  # a model trained in the run imports scikit-learn
        "print(sys.modules['scipy'] is not None)\n"
    )
    assert loaded == ["True", "True", "False", "False", "True"]


def test_a_library_mlflow_needs_at_import_is_imported_anyway_and_mlflow_works(tmp_path: Path):
    loaded = _run(
        OWN + "import sys\n"
        "from llmflow.tracking import mlflow_import\n"
        "mlflow_import.UNUSED_BY_THE_WRITER = ('pyarrow', 'cachetools')\n"  # MLflow needs it
        "mlflow_import.import_mlflow('sqlite:')\n"
        "from mlflow import MlflowClient\n"
        f"client = MlflowClient('sqlite:///{tmp_path / 'mlflow.db'}')\n"
        "client.create_registered_model('m')\n"
        "print(*(sys.modules.get(n) is not None for n in ('cachetools', 'pyarrow')))\n"
        "print(client.get_registered_model('m').name)\n"
    )
    assert loaded == ["True", "True", "m"]


def test_the_openai_provider_leaves_aiohttp_to_the_gemini_sdk():
    loaded = _run(
        OWN + "import sys\n"
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
