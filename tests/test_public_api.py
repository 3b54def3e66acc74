import subprocess
import sys

import llmflow

EXPECTED = {
    "CallRecord",
    "Completion",
    "ConfigError",
    "Experiment",
    "GenerationSettings",
    "LlmflowError",
    "Message",
    "ModelEntry",
    "PromptCase",
    "ProviderError",
    "Usage",
    "__version__",
    "load_experiment",
}


def test_public_api_does_not_drift():
    assert set(llmflow.__all__) == EXPECTED
    for name in llmflow.__all__:
        assert hasattr(llmflow, name), name


def test_help_imports_no_sdk_and_no_mlflow():
    code = (
        "import sys; from typer.testing import CliRunner; from llmflow.cli import app;"
        "r = CliRunner().invoke(app, ['run', '--help']); assert r.exit_code == 0, r.output;"
        "heavy = {'mlflow', 'openai', 'ollama', 'google.genai', 'llama_cpp'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
