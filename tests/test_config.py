import time
from pathlib import Path

import pytest

from llmflow.config import ModelEntry, load_experiment
from llmflow.config.environment import resolve_cache_path, resolve_connection
from llmflow.errors import ConfigError, MissingCredentials
from llmflow.tracking.uri import resolve_tracking_uri
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
        (
            [{**GEMINI, "batch": "yes"}],
            {},
            "models[0].batch: write true, false or {max_requests: N, poll_s: SECONDS}",
        ),
        ([{**GEMINI, "batch": 1}], {}, "models[0].batch: write true, false or {max_requests"),
        ([], {}, "models: List should have at least 1 item"),
        ([GEMINI], {"repeats": 0}, "repeats: must be between 1 and 1,000,000"),
        ([GEMINI], {"concurrency": "many"}, "concurrency: Input should be a valid integer"),
        ([GEMINI], {"prompts": [{"id": "a"}]}, "prompts[0].user: is required"),
        (
            [GEMINI],
            {"prompts": [{"id": "a", "user": "u", "asert": []}]},
            "prompts[0].asert: unknown field (did you mean assert?)",
        ),
        (
            [GEMINI],
            {"prompts": [{"id": "x" * 1001, "user": "u"}]},  # it names the call's trace
            "prompts[0].id: String should have at most 1000 characters",
        ),
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
    # a query is SQLAlchemy's, not part of the file's path
    assert (
        resolve_tracking_uri("sqlite:///m.db?timeout=30") == f"sqlite:///{tmp_path}/m.db?timeout=30"
    )


# --- values no check can compare with, and messages that must stay one short line -----------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("field", ["timeout_s", "temperature", "top_p", "cost_per_hour_usd"])
def test_nan_and_inf_are_refused_in_model_fields(tmp_path: Path, value: float, field: str):
    message = error_of(tmp_path, [{**GEMINI, field: value}])  # written as .nan, .inf, -.inf
    assert f"models[0].{field}: must be a finite number (got {value})" in message
    assert "\n" not in message


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_and_inf_do_not_disable_the_budget(tmp_path: Path, value: float):
    message = error_of(tmp_path, [GEMINI], max_cost_usd=value)
    assert message.endswith(f"max_cost_usd: must be a finite number (got {value})")


def test_nan_in_prices_and_sweeps_is_refused(tmp_path: Path):
    price = {**GEMINI, "price_per_mtok": {"input": float("nan"), "output": 1}}
    assert "models[0].price_per_mtok.input: must be a finite number" in error_of(tmp_path, [price])
    sweep = {"temperature": [0.5, float("inf")]}
    assert "sweep.temperature[1]: must be a finite number" in error_of(
        tmp_path, [GEMINI], sweep=sweep
    )


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://host:99999", "localhost:11434", "ftp://host", "http://"]
)
def test_base_url_must_be_a_url(tmp_path: Path, url: str):
    message = error_of(tmp_path, [{**OLLAMA, "base_url": url}])
    assert "models[0].base_url: not a valid URL" in message and "\n" not in message


def test_base_url_message_does_not_echo_a_credential(tmp_path: Path):
    message = error_of(tmp_path, [{**OLLAMA, "base_url": "http://me:s3cret@[::1"}])
    assert "s3cret" not in message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", "experiment: must not be empty"),
        ("   ", "experiment: must not be empty"),
        ("x" * 501, "experiment: must be at most 500 characters, MLflow's limit (got 501)"),
    ],
)
def test_experiment_name_fits_mlflow(tmp_path: Path, name: str, expected: str):
    message = error_of(tmp_path, [GEMINI], experiment=name)
    assert expected in message and len(message) < 300
    assert load_experiment(write_experiment(tmp_path, [GEMINI], experiment="x" * 500))


def billion_laughs() -> str:
    """9 levels of 9 aliases each: under 1 KB of YAML, 9**9 values once expanded."""
    lines = [
        "experiment: bomb",
        "prompts: [{id: a, user: hi}]",
        f"a: &a [{', '.join(['lol'] * 9)}]",
    ]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    lines.append("models: [{provider: *i}]")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path):
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    assert path.stat().st_size < 1024
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert time.perf_counter() - started < 1
    message = str(info.value)
    assert "aliases expand to more than 100,000 values" in message and len(message) < 200


def test_anchors_for_shared_settings_still_work(tmp_path: Path):
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "experiment: x\nprompts: [{id: a, user: hi}]\n"
        "models:\n  - &base {provider: ollama, model: llama3.1, temperature: 0.2}\n"
        "  - {<<: *base, name: warm, temperature: 0.9}\n"
    )
    assert [m.temperature for m in load_experiment(path).config.models] == [0.2, 0.9]


def test_echoed_values_are_cut_short(tmp_path: Path):
    huge = "y" * 100_000
    assert len(error_of(tmp_path, [{"provider": huge, "model": "m"}])) < 300
    assert len(error_of(tmp_path, [{**GEMINI, huge: 1}])) < 300
    prompts = [{"id": huge, "user": "a"}, {"id": huge, "user": "b"}]
    assert len(error_of(tmp_path, [GEMINI], prompts=prompts)) < 300
    assert len(error_of(tmp_path, [GEMINI], promote={"require": [huge]})) < 400
    assert len(error_of(tmp_path, [GEMINI], prompts=f"{'p' * 5000}.jsonl")) < 300


def test_an_experiment_file_that_is_not_utf8_is_one_line(tmp_path: Path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("experiment: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert str(info.value) == (
        f"{path}: not UTF-8 text (byte 0xe9 at position 15): save it as UTF-8"
    )


def test_an_experiment_file_with_a_byte_order_mark_loads(tmp_path: Path):
    path = write_experiment(tmp_path, [GEMINI])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_experiment(path).config.experiment == "provider-comparison"


# --- plan size --------------------------------------------------------------------------------


def test_an_absurd_plan_is_refused_before_it_is_built(tmp_path: Path):
    prompts = [{"id": f"p{i}", "user": "hi"} for i in range(3)]
    message = error_of(tmp_path, [GEMINI], prompts=prompts, repeats=1_000_000)
    assert message.endswith(
        "the plan has 3,000,000 calls (3 prompts x 1000000 repeats x 1 variant); "
        "the limit is 1,000,000"
    )
    sweep = {"temperature": [0.1, 0.2], "seed": list(range(600))}
    message = error_of(tmp_path, [GEMINI], sweep=sweep, repeats=500, warmup=3)
    assert "the plan has 1,203,600 calls (2 prompts x 500 repeats + 3 warmup x 1200 variants)" in (
        message
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"repeats": 200_000_000}, "repeats: must be between 1 and 1,000,000"),
        ({"concurrency": 100_000}, "concurrency: must be between 1 and 1,024"),
        ({"prompt_sizes": [10**12]}, "prompt_sizes[0]: must be between 1 and 2,000,000"),
    ],
)
def test_sizes_are_bounded(tmp_path: Path, fields: dict, expected: str):
    assert expected in error_of(tmp_path, [GEMINI], **fields)


def test_timeout_is_bounded(tmp_path: Path):
    assert "models[0].timeout_s: must be between 0.001 and 86,400" in error_of(
        tmp_path, [{**GEMINI, "timeout_s": 1e300}]
    )


# --- cache setting ----------------------------------------------------------------------------


def test_cache_is_off_unless_asked_for(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LLMFLOW_CACHE_DIR", str(tmp_path / "c"))
    config = load_experiment(write_experiment(tmp_path, [GEMINI])).config
    assert config.cache is False
    assert resolve_cache_path(config.cache, tmp_path) is None
    assert resolve_cache_path(False, tmp_path) is None
    assert resolve_cache_path(True, tmp_path) == tmp_path / "c" / "responses.sqlite"
    assert resolve_cache_path(False, tmp_path, force=True) == tmp_path / "c" / "responses.sqlite"
    assert resolve_cache_path("mine.sqlite", tmp_path / "exp") == tmp_path / "exp" / "mine.sqlite"
    assert resolve_cache_path("mine.sqlite", tmp_path, force=True) == tmp_path / "mine.sqlite"
    assert "cache: write true, false or the path" in error_of(tmp_path, [GEMINI], cache="")


CLAUDE = {"provider": "anthropic", "model": "claude-sonnet-4-5"}


@pytest.mark.parametrize(
    ("models", "fields", "expected"),
    [
        (
            [{**CLAUDE, "temperature": 1.5}],
            {},
            "models[0].temperature: must be between 0 and 1 for provider anthropic",
        ),
        (
            [{**CLAUDE, "seed": 7}],
            {},
            "models[0].seed: provider anthropic has no seed (its API takes none): remove it",
        ),
        (
            [GEMINI, CLAUDE],
            {"sweep": {"temperature": [0.5, 1.2]}},
            "sweep: temperature 1.2 for models[1]: must be between 0 and 1 for provider anthropic",
        ),
        (
            [CLAUDE],
            {"sweep": {"seed": [1, 2]}},
            "sweep: seed 1 for models[0]: provider anthropic has no seed",
        ),
        (
            [GEMINI],
            {
                "scorers": [
                    {"type": "judge", "rubric": "Correct?", "temperature": 2, **CLAUDE},
                ]
            },
            "scorers[0].temperature: must be between 0 and 1 for provider anthropic",
        ),
    ],
)
def test_what_anthropic_cannot_take_is_refused_naming_the_field(
    tmp_path: Path, models, fields, expected
):
    message = error_of(tmp_path, models, **fields)
    assert expected in message and "\n" not in message


def test_other_providers_keep_their_own_ranges(tmp_path: Path):
    gemini = {**GEMINI, "temperature": 1.5, "seed": 7}
    loaded = load_experiment(write_experiment(tmp_path, [gemini], sweep={"temperature": [1.8]}))
    assert loaded.config.models[0].temperature == 1.5 and loaded.config.models[0].seed == 7


def test_anthropic_max_tokens_defaults_to_4096_where_every_reader_sees_it(tmp_path: Path):
    loaded = load_experiment(
        write_experiment(tmp_path, [CLAUDE, {**CLAUDE, "name": "short", "max_tokens": 64}])
    )
    assert [m.max_tokens for m in loaded.config.models] == [4096, 64]
    assert ModelEntry(provider="gemini", model="m").max_tokens is None
    # a registered model's entry is validated again when it loads: the value survives
    dumped = loaded.config.models[0].model_dump(exclude_none=True)
    assert ModelEntry.model_validate(dumped).max_tokens == 4096


def test_anthropic_key_and_base_url_from_the_environment(monkeypatch):
    entry = ModelEntry(**CLAUDE)
    with pytest.raises(MissingCredentials, match="^ANTHROPIC_API_KEY is not set: export it"):
        resolve_connection(entry)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    assert resolve_connection(entry).base_url == "http://127.0.0.1:9"
    monkeypatch.setenv("MY_CLAUDE_KEY", "mine")
    own = ModelEntry(**CLAUDE, api_key_env="MY_CLAUDE_KEY", base_url="https://gw.example/x")
    assert resolve_connection(own).api_key == "mine"
