"""What a call cost: genai-prices for cloud models, the user's own price, or a local cost model.

An unknown price is "unpriced" (usd None), never 0.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlparse

from .config import ModelEntry
from .providers.spec import provider_spec
from .types import Cost, Usage


class Pricer:
    """Prices the calls of one model entry."""

    def __init__(self, entry: ModelEntry) -> None:
        self.entry = entry
        self.kind = cost_kind_of(entry)

    def describe(self) -> str:
        """A short human description of the cost model, logged as a param."""
        if self.entry.price_per_mtok is not None:
            p = self.entry.price_per_mtok
            return f"config: ${p.input:g}/Mtok in, ${p.output:g}/Mtok out"
        if self.kind == "local":
            return f"local: ${self.entry.cost_per_hour_usd or 0:g}/hour of wall time"
        listed = f"genai-prices as {self.entry.price_as}" if self.entry.price_as else "genai-prices"
        return f"{listed} less the batch discount (50%)" if self.entry.batch else listed

    def price(self, usage: Usage, latency_s: float) -> Cost:
        entry = self.entry
        if entry.price_per_mtok is not None:
            return _per_token(
                usage, entry.price_per_mtok.input, entry.price_per_mtok.output, "config"
            )
        if self.kind == "local":
            usd = (entry.cost_per_hour_usd or 0.0) * latency_s / 3600.0
            return Cost(kind="local", usd=usd, source="local cost model")
        if usage.input_tokens is None or usage.output_tokens is None:
            return Cost(kind="unpriced", usd=None, source="usage not reported")
        lookup = _lookup_of(entry)
        if lookup is None:
            return Cost(
                kind="unpriced", usd=None, source=f"no genai-prices id for {entry.provider}"
            )
        return _genai_price(
            lookup,
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_input_tokens,
            usage.cache_write_input_tokens,
            usage.cache_write_1h_input_tokens,
        )


def cost_kind_of(entry: ModelEntry) -> str:
    """ "priced" (a price table, or the user's own price) or "local" (the local cost model)."""
    if entry.price_per_mtok is not None or entry.price_as is not None:
        return "priced"
    return "local" if entry.is_local_compute else "priced"


def _per_token(usage: Usage, input_per_mtok: float, output_per_mtok: float, source: str) -> Cost:
    if usage.input_tokens is None or usage.output_tokens is None:
        return Cost(kind="unpriced", usd=None, source="usage not reported")
    input_usd = usage.input_tokens * input_per_mtok / 1e6
    output_usd = usage.output_tokens * output_per_mtok / 1e6
    return Cost("priced", input_usd + output_usd, input_usd, output_usd, source)


def _lookup_of(entry: ModelEntry) -> tuple[str, str, str] | None:
    """(model, "provider_id" | "provider_api_url", value) to look the entry up in genai-prices;
    None when its provider has no genai-prices id (unpriced).

    `price_as: provider/model` names the price explicitly (proxies, fine-tunes, gateways).
    Where the spec lists its own hosts, a custom base_url elsewhere is matched by URL, so a
    self-hosted model is unpriced, not OpenAI-priced.
    """
    if entry.price_as:
        provider_id, _, model = entry.price_as.partition("/")
        return model, "provider_id", provider_id
    spec = provider_spec(entry.provider)
    host = urlparse(entry.base_url).hostname if entry.base_url else None
    if entry.base_url is None or spec.own_hosts is None or host in spec.own_hosts:
        return (entry.model_name, "provider_id", spec.price_id) if spec.price_id else None
    return entry.model_name, "provider_api_url", entry.base_url


@lru_cache(maxsize=4096)
def _genai_price(
    lookup: tuple[str, str, str],
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int,
    cache_write_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
) -> Cost:
    """The price of a call; genai-prices, like Usage, counts the cache's tokens inside
    input_tokens and prices them apart (a model without a cache-write rate: at its input rate)."""
    import genai_prices

    usage = genai_prices.Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cached_tokens,
        cache_write_tokens=cache_write_tokens,
        cache_write_1h_tokens=cache_write_1h_tokens,
    )
    model, how, where = lookup
    try:
        result = genai_prices.calc_price(usage, model, **{how: where})
    except LookupError:
        return Cost(kind="unpriced", usd=None, source=f"no price for {model} in genai-prices")
    return Cost(
        kind="priced",
        usd=float(result.total_price),
        input_usd=float(result.input_price),
        output_usd=float(result.output_price),
        source=f"genai-prices {result.provider.id}/{result.model.id}",
    )
