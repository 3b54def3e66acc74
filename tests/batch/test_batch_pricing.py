"""The batch price: the list price less 50%, the user's own price as it is, the tier served."""

from __future__ import annotations

import pytest

from llmflow.batch.pricing import batch_cost
from llmflow.config import ModelEntry
from llmflow.pricing import Pricer
from llmflow.types import Usage

USAGE = Usage(input_tokens=1_000_000, output_tokens=1_000_000)


def pricer(**fields) -> Pricer:
    return Pricer(ModelEntry(provider="openai", model="gpt-4o-mini", batch=True, **fields))


def test_half_of_the_list_price_on_both_sides():
    listed = pricer().price(USAGE, 0.0)
    cost = batch_cost(pricer(), USAGE)
    assert cost.kind == "batch"
    assert cost.usd == pytest.approx(listed.usd / 2)
    assert cost.input_usd == pytest.approx(listed.input_usd / 2)
    assert cost.output_usd == pytest.approx(listed.output_usd / 2)
    assert "less the batch discount (50%)" in cost.source


def test_your_own_price_is_used_as_it_is():
    cost = batch_cost(pricer(price_per_mtok={"input": 1.0, "output": 2.0}), USAGE)
    assert (cost.kind, cost.usd) == ("priced", pytest.approx(3.0))


@pytest.mark.parametrize("tier", [None, "default", "flex", "batch"])
def test_the_batch_rate_tiers(tier):
    assert batch_cost(pricer(), USAGE, tier).kind == "batch"


def test_a_tier_of_unknown_price_is_unpriced_never_guessed():
    cost = batch_cost(pricer(), USAGE, "priority")
    assert (cost.kind, cost.usd) == ("unpriced", None)
    assert "priority" in cost.source


def test_batch_only_for_providers_with_a_batch_api():
    from llmflow.errors import ConfigError

    with pytest.raises((ValueError, ConfigError), match="batch: only applies to provider"):
        ModelEntry(provider="ollama", model="llama3.1", batch=True)
    assert ModelEntry(provider="gemini", model="gemini-2.5-flash", batch={"poll_s": 5}).batch


def test_the_preflight_counts_a_batched_variant_at_the_batch_price(tmp_path):
    from llmflow.budget import plan_worst_case_usd
    from llmflow.config import load_experiment
    from llmflow.plan import build_plan
    from tests.helpers import write_experiment

    def worst(batch: bool) -> float:
        model = {"provider": "openai", "model": "gpt-4o-mini", "max_tokens": 100}
        path = write_experiment(tmp_path, [{**model, "batch": batch}], name=f"{batch}.yaml")
        loaded = load_experiment(path)
        plan = build_plan(loaded)
        return plan_worst_case_usd(plan, {v.id: Pricer(v.entry) for v in plan.variants})

    assert worst(True) == pytest.approx(worst(False) / 2)


def test_every_provider_that_accepts_batch_has_a_batch_api():
    from llmflow.config.models import BATCH_PROVIDERS
    from llmflow.providers.batch_api import BATCH_ADAPTERS

    assert set(BATCH_PROVIDERS) == set(BATCH_ADAPTERS)


def test_a_batched_variant_has_costs_to_compare_and_no_latency():
    from llmflow.report.pairs import COST, LATENCY, evidence

    row = {"repeat": 0, "error": None, "cached": False, "latency_s": None, "case": "q"}
    found = evidence("batched", [{**row, "cost_kind": "batch", "cost_usd": 0.001}])
    assert found.values[COST] == {"q": [0.001]}
    assert LATENCY not in found.values
