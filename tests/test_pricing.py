import genai_prices
import pytest

from llmflow.config import ModelEntry
from llmflow.pricing import Pricer
from llmflow.types import Usage


def test_gemini_priced_by_genai_prices_with_reasoning_at_output_rate():
    usage = Usage(input_tokens=1000, output_tokens=500, reasoning_tokens=200)
    cost = Pricer(ModelEntry(provider="gemini", model="gemini-2.5-flash")).price(usage, 1.0)
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, output_tokens=500),
        "gemini-2.5-flash",
        provider_id="google",
    )
    assert cost.kind == "priced"
    assert cost.usd == pytest.approx(float(expected.total_price))
    assert cost.input_usd + cost.output_usd == pytest.approx(cost.usd)


def test_unknown_model_is_unpriced_never_zero():
    entry = ModelEntry(provider="openai", model="my-finetune-xyz")
    cost = Pricer(entry).price(Usage(input_tokens=10, output_tokens=10), 1.0)
    assert cost.kind == "unpriced" and cost.usd is None


def test_self_hosted_openai_compatible_model_is_unpriced_unless_told():
    hosted = ModelEntry(provider="openai", model="gpt-4o-mini", base_url="http://127.0.0.1:8000/v1")
    usage = Usage(input_tokens=100, output_tokens=100)
    assert Pricer(hosted).price(usage, 1.0).usd is None
    proxied = hosted.model_copy(update={"price_as": "openai/gpt-4o-mini"})
    assert Pricer(proxied).price(usage, 1.0).usd > 0


def test_local_cost_model_is_per_hour_of_wall_time():
    entry = ModelEntry(provider="ollama", model="llama3.1", cost_per_hour_usd=1.8)
    cost = Pricer(entry).price(Usage(input_tokens=1, output_tokens=1), 2.0)
    assert cost.kind == "local" and cost.usd == pytest.approx(0.001)
    free = Pricer(ModelEntry(provider="local")).price(Usage(input_tokens=1, output_tokens=1), 2.0)
    assert free.kind == "local" and free.usd == 0.0


def test_user_price_overrides_the_table():
    entry = ModelEntry(
        provider="gemini", model="gemini-2.5-flash", price_per_mtok={"input": 1, "output": 2}
    )
    cost = Pricer(entry).price(Usage(input_tokens=1_000_000, output_tokens=500_000), 1.0)
    assert cost.usd == pytest.approx(2.0)


def test_missing_usage_is_unpriced():
    cost = Pricer(ModelEntry(provider="gemini", model="gemini-2.5-flash")).price(Usage(), 1.0)
    assert cost.kind == "unpriced"


def test_claude_prices_cache_reads_and_writes_at_their_own_rates():
    """claude-sonnet-4-5: $3/Mtok input, $15 output, $0.30 cache read, $3.75 cache write (5
    minutes), $6 cache write (1 hour). 821 input tokens: 21 uncached, 500 read, 300 written of
    which 100 for an hour."""
    usage = Usage(
        input_tokens=821,
        output_tokens=33,
        cached_input_tokens=500,
        cache_write_input_tokens=300,
        cache_write_1h_input_tokens=100,
    )
    cost = Pricer(ModelEntry(provider="anthropic", model="claude-sonnet-4-5")).price(usage, 1.0)
    input_usd = (21 * 3 + 500 * 0.30 + 200 * 3.75 + 100 * 6) / 1e6
    assert cost.input_usd == pytest.approx(input_usd) == 0.001563
    assert cost.output_usd == pytest.approx(33 * 15 / 1e6)
    assert cost.usd == pytest.approx(0.002058)
    assert cost.source == "genai-prices anthropic/claude-sonnet-4-5"


def test_a_cache_write_without_its_own_rate_is_priced_as_input():
    usage = Usage(input_tokens=1000, output_tokens=0, cache_write_input_tokens=400)
    cost = Pricer(ModelEntry(provider="openai", model="gpt-4o-mini")).price(usage, 1.0)
    assert cost.usd == pytest.approx(1000 * 0.15 / 1e6)
