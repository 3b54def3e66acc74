"""The batch price. genai-prices lists no batch prices, so a batched call is priced at the list
price less the providers' documented discount: 50% of input and output on OpenAI's Batch API
(OpenAI's API pricing page, "Batch API") and on Gemini's Batch Mode (Gemini API pricing page,
"Batch"). A `price_per_mtok` of the user's is their price and is used as it is."""

from __future__ import annotations

from dataclasses import replace

from ..pricing import Pricer
from ..types import Cost, Usage

BATCH_DISCOUNT = 0.5
# tiers a batch result may report that are billed at the batch rate; "default" is what OpenAI's
# batch output echoes for a request that asked for no tier. Any other tier served
# ("priority", "scale") has no known price.
BATCH_RATE_TIERS = frozenset({None, "default", "auto", "batch", "flex"})


def batch_cost(pricer: Pricer, usage: Usage, service_tier: str | None = None) -> Cost:
    cost = pricer.price(usage, 0.0)
    if pricer.entry.price_per_mtok is not None or cost.usd is None or cost.kind != "priced":
        return cost
    if service_tier not in BATCH_RATE_TIERS:
        return Cost("unpriced", None, source=f"served at tier {service_tier!r}: no price known")
    return replace(
        cost,
        kind="batch",
        usd=cost.usd * BATCH_DISCOUNT,
        input_usd=None if cost.input_usd is None else cost.input_usd * BATCH_DISCOUNT,
        output_usd=None if cost.output_usd is None else cost.output_usd * BATCH_DISCOUNT,
        source=f"{cost.source} less the batch discount ({BATCH_DISCOUNT:.0%})",
    )


def discount_of(pricer: Pricer) -> float:
    """What a batched call of this entry costs, as a fraction of the same call live."""
    return 1.0 if pricer.entry.price_per_mtok is not None else BATCH_DISCOUNT
