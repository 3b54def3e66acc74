"""Spending limits: a pre-flight worst case, and a running account that never passes the limit."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from .errors import ConfigError
from .plan import Call, Plan
from .pricing import Pricer
from .types import Usage

CHARS_PER_TOKEN = 3.0  # a cautious guess for the pre-flight: real tokenizers average ~4


def worst_case_usd(call: Call, pricer: Pricer) -> float:
    """The most one call can cost: its prompt (estimated) plus max_tokens of output."""
    entry = call.variant.entry
    if pricer.kind == "local":
        return (entry.cost_per_hour_usd or 0.0) * entry.timeout_s / 3600.0
    characters = sum(len(m.content) for m in call.case.messages)
    usage = Usage(
        input_tokens=math.ceil(characters / CHARS_PER_TOKEN) + 16,
        output_tokens=entry.max_tokens or 0,
    )
    return pricer.price(usage, entry.timeout_s).usd or 0.0


def preflight(
    plan: Plan, pricers: dict[str, Pricer], max_cost_usd: float, allow_unpriced: bool, file: str
) -> float:
    """Refuse a plan that could exceed the budget; returns the worst-case estimate."""
    for index, variant in enumerate(plan.variants):
        pricer = pricers[variant.id]
        if pricer.kind == "local":
            continue
        probe = pricer.price(Usage(input_tokens=1, output_tokens=1), 1.0)
        if probe.usd is None and not allow_unpriced:
            raise ConfigError(
                f"{file}: models[{index}]: {variant.model} has no known price, so max_cost_usd "
                "cannot bound it: set price_per_mtok or price_as, or allow_unpriced: true"
            )
        if probe.usd is not None and variant.entry.max_tokens is None:
            raise ConfigError(
                f"{file}: models[{index}].max_tokens: is required under max_cost_usd "
                "(it bounds what a call can cost)"
            )
    worst = sum(worst_case_usd(call, pricers[call.variant.id]) for call in plan.calls())
    if worst > max_cost_usd:
        raise ConfigError(
            f"{file}: the plan could cost up to ${worst:.4f}, ${worst - max_cost_usd:.4f} over "
            f"max_cost_usd ${max_cost_usd:g}: lower repeats or max_tokens, or raise the budget"
        )
    return worst


@dataclass
class Reservation:
    usd: float


class Budget:
    """Spend so far plus what calls in flight could still cost never exceeds the limit."""

    def __init__(self, limit_usd: float) -> None:
        self.limit_usd = limit_usd
        self.spent_usd = 0.0
        self._reserved = 0.0
        self._lock = threading.Lock()

    def reserve(self, worst_usd: float) -> Reservation | None:
        with self._lock:
            if self.spent_usd + self._reserved + worst_usd > self.limit_usd:
                return None
            self._reserved += worst_usd
            return Reservation(worst_usd)

    def settle(self, reservation: Reservation, actual_usd: float | None) -> None:
        with self._lock:
            self._reserved -= reservation.usd
            # an unreported cost counts at its worst case: the budget must stay a promise
            self.spent_usd += reservation.usd if actual_usd is None else actual_usd
