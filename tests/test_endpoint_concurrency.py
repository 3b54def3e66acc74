"""max_concurrency holds per provider endpoint (provider + base URL + key variable), shared by
every variant that calls it; `concurrency` holds for the whole run."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

import llmflow.provider_opening
from llmflow.cli import app
from llmflow.config import load_experiment
from llmflow.config.environment import Endpoint, endpoint_of
from llmflow.plan import build_plan
from llmflow.pricing import Pricer
from llmflow.providers.openai_compat import OpenAICompatProvider
from llmflow.runner import RetryPolicy, Runner
from llmflow.types import CallRecord
from tests.helpers import write_experiment

SWEEP = {"temperature": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]}
KEY = "test-openai-key"


def _model(fake, **fields) -> dict:
    return {"provider": "openai", "model": "gpt-4o-mini", "base_url": f"{fake.url}/v1", **fields}


def _run(path: Path, concurrency: int) -> list[CallRecord]:
    plan = build_plan(load_experiment(path))
    records: list[CallRecord] = []

    async def go():
        providers = {
            v.id: OpenAICompatProvider(v.model, api_key=KEY, base_url=v.entry.base_url)
            for v in plan.variants
        }
        pricers = {v.id: Pricer(v.entry) for v in plan.variants}
        fast = RetryPolicy(base_delay_s=0.001, max_delay_s=0.01)
        runner = Runner(
            providers, pricers, concurrency=concurrency, on_record=records.append, retry=fast
        )
        try:
            await runner.run(plan.calls())
        finally:
            await asyncio.gather(*(p.aclose() for p in providers.values()))

    asyncio.run(go())
    return records


def test_a_six_variant_sweep_keeps_max_concurrency_at_its_endpoint(tmp_path, fake_openai):
    fake_openai.delay_s = 0.05
    model = _model(fake_openai, max_concurrency=2)
    path = write_experiment(tmp_path, [model], sweep=SWEEP, repeats=2, concurrency=16)
    records = _run(path, concurrency=16)
    assert len(records) == 6 * 2 * 2 and all(r.ok for r in records)
    assert fake_openai.max_in_flight == 2, "6 variants x max_concurrency 2 must stay at 2"


def test_the_smallest_max_concurrency_of_an_endpoint_holds(tmp_path, fake_openai):
    fake_openai.delay_s = 0.05
    models = [
        _model(fake_openai, name="a", max_concurrency=3),
        _model(fake_openai, name="b", max_concurrency=1),
    ]
    _run(write_experiment(tmp_path, models, repeats=3), concurrency=8)
    assert fake_openai.max_in_flight == 1


def test_another_key_variable_is_another_endpoint(tmp_path, fake_openai, monkeypatch):
    monkeypatch.setenv("OTHER_OPENAI_KEY", KEY)
    fake_openai.delay_s = 0.05
    models = [
        _model(fake_openai, name="a", max_concurrency=1),
        _model(fake_openai, name="b", max_concurrency=1, api_key_env="OTHER_OPENAI_KEY"),
    ]
    path = write_experiment(tmp_path, models, repeats=3)
    entry = load_experiment(path).config.models[1]
    assert endpoint_of(entry) == Endpoint("openai", f"{fake_openai.url}/v1", ("OTHER_OPENAI_KEY",))
    _run(path, concurrency=8)
    assert fake_openai.max_in_flight == 2


def test_global_concurrency_still_bounds_all_endpoints(tmp_path, fake_openai, monkeypatch):
    monkeypatch.setenv("OTHER_OPENAI_KEY", KEY)
    fake_openai.delay_s = 0.05
    models = [
        _model(fake_openai, name="a"),
        _model(fake_openai, name="b", api_key_env="OTHER_OPENAI_KEY"),
    ]
    _run(write_experiment(tmp_path, models, repeats=4), concurrency=3)
    assert fake_openai.max_in_flight == 3


def test_a_run_opens_one_client_for_a_sweep_of_one_model(tmp_path, fake_openai, monkeypatch):
    fake_openai.delay_s = 0.05
    created = []
    real = llmflow.provider_opening.create_provider

    def counting(name, **options):
        created.append(name)
        return real(name, **options)

    monkeypatch.setattr(llmflow.provider_opening, "create_provider", counting)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    model = _model(fake_openai, max_concurrency=2)
    path = write_experiment(tmp_path, [model], sweep=SWEEP, concurrency=16)
    result = CliRunner().invoke(app, ["run", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert created == ["openai"]
    assert len(fake_openai.generation_requests()) == 6 * 2
    assert fake_openai.max_in_flight == 2
