import subprocess
import sys
from pathlib import Path

import llmflow

API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def test_every_public_name_resolves_and_is_documented():
    section = API_PAGE.read_text()
    for name in llmflow.__all__:
        assert hasattr(llmflow, name), name
        assert f"`{name}" in section, f"{name} is public: say what it is in docs/python-api.md"


def test_nothing_public_is_left_out_of_all():
    for name in llmflow.__all__:
        getattr(llmflow, name)
    public = {
        name
        for name, value in vars(llmflow).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("llmflow")
    }
    assert public <= set(llmflow.__all__)
    assert set(llmflow.__all__) == {*llmflow._EXPORTS, "__version__"}


def test_help_imports_no_sdk_and_no_mlflow():
    code = (
        "import sys; from typer.testing import CliRunner; from llmflow.cli import app;"
        "r = CliRunner().invoke(app, ['run', '--help']); assert r.exit_code == 0, r.output;"
        "heavy = {'mlflow', 'openai', 'ollama', 'google.genai', 'llama_cpp'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
