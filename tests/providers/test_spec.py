"""Every provider spec agrees with itself, its adapter, genai-prices and pip; and a provider
registered by one spec alone (tests/providers/fake_provider.py) runs an experiment end to end."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
from pathlib import Path

import pytest
from genai_prices import data_snapshot
from mlflow import MlflowClient
from packaging.requirements import Requirement
from typer.testing import CliRunner

from llmflow.cli import app
from llmflow.config import ModelEntry
from llmflow.config.environment import Connection, resolve_connection
from llmflow.config.fields import is_http_url
from llmflow.errors import ConfigError, MissingCredentials
from llmflow.pricing import Pricer
from llmflow.providers import create_provider
from llmflow.providers.spec import (
    ProviderSpec,
    provider_names,
    provider_spec,
    provider_specs,
    register_provider,
    unregister_provider,
)
from llmflow.types import Usage
from tests.helpers import write_experiment
from tests.providers.fake_provider import FAKE_SPEC, FakeProvider

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
ALL_SPECS = [*provider_specs(), FAKE_SPEC]


@pytest.fixture
def fake_registered():
    register_provider(FAKE_SPEC)
    FakeProvider.calls.clear()
    yield FAKE_SPEC
    unregister_provider(FAKE_SPEC.name)


def _ids(spec: ProviderSpec) -> str:
    return spec.name


@pytest.mark.parametrize("spec", ALL_SPECS, ids=_ids)
def test_adapter_import_path_resolves_to_a_provider_class(spec: ProviderSpec):
    module_name, sep, class_name = spec.adapter.partition(":")
    assert sep and module_name and class_name, f"{spec.adapter}: write module:Class"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:  # an optional extra that is not installed here
        assert spec.extra is not None and (e.name or "").split(".")[0] in spec.sdk_modules
        pytest.skip(f"{spec.name}: llmflow[{spec.extra}] is not installed")
    adapter = getattr(module, class_name)
    for method in ("stream", "check", "aclose"):
        assert callable(getattr(adapter, method, None)), f"{spec.adapter} has no {method}()"


@pytest.mark.parametrize("spec", ALL_SPECS, ids=_ids)
def test_keys_and_urls_are_consistent(spec: ProviderSpec):
    assert re.fullmatch(r"[a-z][a-z0-9_-]*", spec.name)
    for name in (*spec.key_env, *filter(None, [spec.base_url_env])):
        assert ENV_NAME.match(name), f"{spec.name}: {name!r} is not an env variable name"
    assert not spec.key_required or spec.key_env, "a required key needs a variable to read"
    assert spec.self_hosted_key is None or spec.key_required
    if spec.default_base_url is not None:
        assert is_http_url(spec.default_base_url)
    if not spec.remote:  # in-process: nothing to connect to
        assert not (spec.key_env or spec.default_base_url or spec.base_url_env or spec.own_hosts)


@pytest.mark.parametrize("spec", ALL_SPECS, ids=_ids)
def test_pricing_identity_is_known_to_genai_prices_or_none(spec: ProviderSpec):
    if spec.price_id is None:
        assert spec.own_hosts is None, "own hosts only matter to a priced provider"
        return
    known = {p.id for p in data_snapshot.get_snapshot().providers}
    assert spec.price_id in known, f"genai-prices has no provider {spec.price_id!r}"


@pytest.mark.parametrize("spec", ALL_SPECS, ids=_ids)
def test_pip_requirements_and_extra_exist(spec: ProviderSpec):
    assert spec.pip_requirements, "a registered model must be able to install its SDK"
    for requirement in spec.pip_requirements:
        Requirement(requirement)  # raises InvalidRequirement
    extras = importlib.metadata.metadata("llmflow").get_all("Provides-Extra") or []
    assert (spec.extra is None) == (not spec.sdk_modules)
    assert spec.extra is None or spec.extra in extras


@pytest.mark.parametrize("spec", ALL_SPECS, ids=_ids)
def test_own_options_are_model_entry_fields(spec: ProviderSpec):
    unknown = set(spec.own_options) - set(ModelEntry.model_fields)
    assert not unknown, f"{spec.name}: no ModelEntry field {sorted(unknown)}"


@pytest.mark.parametrize("spec", ALL_SPECS, ids=_ids)
def test_config_accepts_the_provider_once_registered(spec: ProviderSpec, fake_registered):
    entry = ModelEntry(provider=spec.name, model=spec.default_model or "some-model")
    assert entry.model_name and entry.is_local_compute == spec.local_compute


def test_registry_order_is_the_one_messages_show():
    assert provider_names() == ("gemini", "ollama", "openai", "local", "sklearn", "anthropic")
    with pytest.raises(ConfigError, match="unknown provider 'nope': use one of gemini, ollama"):
        provider_spec("nope")


def test_a_name_is_registered_once(fake_registered):
    with pytest.raises(ConfigError, match="already registered"):
        register_provider(FAKE_SPEC)


def test_unregistered_provider_is_refused_by_config():
    with pytest.raises(ValueError, match="must be one of gemini, ollama, openai, local"):
        ModelEntry(provider="fake", model="m")


def test_provider_without_a_price_id_is_unpriced_not_a_key_error(fake_registered):
    entry = ModelEntry(provider="fake", model="m")
    cost = Pricer(entry).price(Usage(input_tokens=10, output_tokens=5), 0.1)
    assert cost.kind == "unpriced" and cost.usd is None
    assert "genai-prices" in Pricer(entry).describe()


def test_connection_from_the_spec(fake_registered, monkeypatch):
    entry = ModelEntry(provider="fake", model="m")
    with pytest.raises(MissingCredentials, match="^FAKE_PROVIDER_KEY is not set: export it"):
        resolve_connection(entry, "x.yaml")
    monkeypatch.setenv("FAKE_PROVIDER_KEY", "k")
    assert resolve_connection(entry) == Connection("http://127.0.0.1:9/v1", "k")


def test_local_only_options_are_refused_elsewhere_with_the_same_message():
    with pytest.raises(ValueError, match="n_ctx: only applies to provider local"):
        ModelEntry(provider="ollama", model="m", n_ctx=512)


def test_create_provider_reads_the_spec(fake_registered):
    provider = create_provider("fake", model="m", api_key="k", base_url=None, timeout_s=1.0)
    assert isinstance(provider, FakeProvider) and provider.model == "m"


def test_fake_provider_runs_an_experiment_and_registers(tmp_path, fake_registered, monkeypatch):
    monkeypatch.setenv("FAKE_PROVIDER_KEY", "fake-key-0b1c")
    path = write_experiment(tmp_path, [{"provider": "fake", "model": "echo-1"}])
    result = CliRunner().invoke(app, ["run", str(path), "--register"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert FakeProvider.calls == [("echo-1", "fake-key-0b1c")] * 2
    client = MlflowClient()
    version = client.get_model_version("llm_fake_chat", "1")
    assert version.tags["llmflow.provider"] == "fake"
    requirements = Path(
        client.download_artifacts(version.run_id, "model/requirements.txt", str(tmp_path))
    ).read_text()
    assert "pyyaml>=6" in requirements.splitlines()
    rows = json.loads(
        CliRunner().invoke(app, ["compare", "-e", "provider-comparison", "-f", "json"]).stdout
    )
    assert rows[0]["provider"] == "fake" and rows[0]["estimated_cost_usd"] is None
    assert rows[0]["cost_kind"] == "unpriced"
