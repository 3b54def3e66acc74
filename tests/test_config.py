from pathlib import Path

import pytest

from llmflow.config import (
    ModelEntry,
    load_experiment,
    resolve_connection,
    resolve_tracking_uri,
)
from llmflow.errors import ConfigError, MissingCredentials
from tests.helpers import write_experiment

GEMINI = {"provider": "gemini", "model": "gemini-2.5-flash", "temperature": 0.7}
OLLAMA = {"provider": "ollama", "model": "llama3.1", "temperature": 0.6}


def test_valid_file_loads_with_defaults(tmp_path: Path):
    loaded = load_experiment(write_experiment(tmp_path, [GEMINI, OLLAMA]))
    assert loaded.config.experiment == "provider-comparison"
    assert [m.provider for m in loaded.config.models] == ["gemini", "ollama"]
    assert loaded.config.models[0].stream is True
    assert loaded.prompts[0].system == "You are a concise assistant."
    assert len(loaded.sha256) == 64


def error_of(tmp_path: Path, models: list[dict], **fields) -> str:
    path = write_experiment(tmp_path, models, **fields)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    return str(info.value)


def test_temperature_out_of_range_names_file_and_field(tmp_path: Path):
    bad = {**OLLAMA, "temperature": 3}
    assert error_of(tmp_path, [GEMINI, bad]) == (
        f"{tmp_path / 'compare.yaml'}: models[1].temperature: must be between 0 and 2"
    )


@pytest.mark.parametrize(
    ("models", "fields", "expected"),
    [
        (
            [{**GEMINI, "temprature": 0.5}],
            {},
            "models[0].temprature: unknown field (did you mean temperature?)",
        ),
        (
            [{"provider": "bard", "model": "x"}],
            {},
            "models[0].provider: must be one of gemini, ollama, openai, local",
        ),
        ([{"provider": "gemini"}], {}, "models[0].model: is required for provider gemini"),
        ([{**GEMINI, "max_tokens": 0}], {}, "models[0].max_tokens: must be at least 1"),
        ([{**GEMINI, "top_p": 1.5}], {}, "models[0].top_p: must be between 0 and 1"),
        ([{**GEMINI, "n_ctx": 512}], {}, "models[0].n_ctx: only applies to provider local"),
        ([], {}, "models: List should have at least 1 item"),
        ([GEMINI], {"repeats": 0}, "repeats: must be at least 1"),
        ([GEMINI], {"concurrency": "many"}, "concurrency: Input should be a valid integer"),
        ([GEMINI], {"prompts": [{"id": "a"}]}, "prompts[0].user: is required"),
        (
            [GEMINI],
            {"prompts": [{"id": "a", "user": "x"}, {"id": "a", "user": "y"}]},
            "duplicate prompt id 'a'",
        ),
    ],
)
def test_errors_name_the_field(tmp_path: Path, models, fields, expected):
    message = error_of(tmp_path, models, **fields)
    assert expected in message
    assert message.startswith(str(tmp_path / "compare.yaml"))
    assert "\n" not in message


def test_yaml_syntax_error_names_the_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("experiment: x\nmodels: [\n  - provider: gemini\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: line \d+: "):
        load_experiment(path)


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read"):
        load_experiment(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (
            "prompts.jsonl",
            '{"id": "a", "user": "Hi"}\n{"id": "b", "user": "Yo", "system": "Be brief"}\n',
        ),
        ("prompts.csv", "id,user,system\na,Hi,\nb,Yo,Be brief\n"),
        ("prompts.yaml", "- {id: a, user: Hi}\n- {id: b, user: Yo, system: Be brief}\n"),
    ],
)
def test_prompts_from_a_file(tmp_path: Path, name: str, content: str):
    (tmp_path / name).write_text(content)
    loaded = load_experiment(write_experiment(tmp_path, [GEMINI], prompts=name))
    assert [(p.id, p.user, p.system) for p in loaded.prompts] == [
        ("a", "Hi", None),
        ("b", "Yo", "Be brief"),
    ]


def test_prompts_file_row_error_names_the_row(tmp_path: Path):
    (tmp_path / "p.jsonl").write_text('{"id": "a", "user": "Hi"}\n{"id": "b"}\n')
    with pytest.raises(ConfigError, match=r"p\.jsonl: \[1\]\.user: is required"):
        load_experiment(write_experiment(tmp_path, [GEMINI], prompts="p.jsonl"))


def test_gemini_key_from_either_variable(monkeypatch):
    entry = ModelEntry(provider="gemini", model="gemini-2.5-flash")
    with pytest.raises(MissingCredentials, match="GEMINI_API_KEY or GOOGLE_API_KEY is not set"):
        resolve_connection(entry, "compare.yaml")
    monkeypatch.setenv("GOOGLE_API_KEY", "k2")
    assert resolve_connection(entry).api_key == "k2"
    monkeypatch.setenv("GEMINI_API_KEY", "k1")
    assert resolve_connection(entry).api_key == "k1"


def test_openai_key_variable_and_keyless_local_servers(monkeypatch):
    named = ModelEntry(provider="openai", model="m", api_key_env="MY_KEY")
    with pytest.raises(MissingCredentials, match="MY_KEY is not set: export it"):
        resolve_connection(named)
    monkeypatch.setenv("MY_KEY", "secret")
    assert resolve_connection(named).api_key == "secret"
    assert "secret" not in repr(resolve_connection(named))
    self_hosted = ModelEntry(provider="openai", model="m", base_url="http://127.0.0.1:8000/v1")
    assert resolve_connection(self_hosted).api_key == "no-key"


def test_ollama_host_default_and_env(monkeypatch):
    entry = ModelEntry(provider="ollama", model="llama3.1")
    assert resolve_connection(entry).base_url == "http://localhost:11434"
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9999")
    assert resolve_connection(entry).base_url == "http://127.0.0.1:9999"


def test_tracking_uri_precedence(monkeypatch, tmp_path: Path):
    assert resolve_tracking_uri(None) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////data/env.db")
    assert resolve_tracking_uri(None) == "sqlite:////data/env.db"
    assert resolve_tracking_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
