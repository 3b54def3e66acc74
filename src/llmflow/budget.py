"""Spending limits: a pre-flight worst case, and a running account that never passes the limit."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .batch.pricing import discount_of
from .errors import ConfigError
from .plan import Call, Plan, Variant
from .pricing import Pricer
from .scoring.judge_plan import JudgeCheck
from .types import CallRecord, Usage
from .user_files import shorten

# The worst case must never be below what a call really costs: concurrent calls reserve it,
# and a reservation that is too low lets them pass the limit together (CJK prompts at the old
# 3 characters a token went 27% over). One token per UTF-8 byte of the prompt bounds the
# tokenizers in use: byte-level BPE (OpenAI, Llama 3, Qwen) and SentencePiece with byte
# fallback (Gemini, Gemma) never make more tokens than bytes, as a token covers at least one.
# One per character would not do: a rare CJK character or an emoji is 2 to 4 byte-level
# tokens. It overestimates English about 4 times, on the input side only, and max_tokens
# of output usually dominates. Chat templates add role markers around every message.
TOKENS_PER_MESSAGE = 8
TOKENS_PER_PROMPT = 16


def input_tokens_bound(call: Call) -> int:
    """At least as many input tokens as any tokenizer counts for the call's messages."""
    return TOKENS_PER_PROMPT + sum(
        len(m.content.encode("utf-8")) + TOKENS_PER_MESSAGE for m in call.case.messages
    )


# A judge reads the answer it grades: at most max_tokens tokens of the judged model, which the
# judge's tokenizer may cut finer. Counted as this many judge tokens per answer token (a token
# of one vocabulary is rarely more than 4 of another's). The estimate only decides whether a run
# may start: at run time each judge call reserves its worst case on its actual prompt.
ANSWER_TOKEN_RATIO = 4


def worst_case_usd(call: Call, pricer: Pricer, extra_input_tokens: int = 0) -> float:
    """The most one call can cost: its prompt (bounded from above) plus max_tokens of output;
    `extra_input_tokens`: input not in the call's messages yet (the answer a judge grades)."""
    entry = call.variant.entry
    if pricer.kind == "local":
        return (entry.cost_per_hour_usd or 0.0) * entry.timeout_s / 3600.0
    tokens = input_tokens_bound(call) + extra_input_tokens
    usage = Usage(input_tokens=tokens, output_tokens=entry.max_tokens or 0)
    return pricer.price(usage, entry.timeout_s).usd or 0.0


def preflight(
    plan: Plan,
    pricers: dict[str, Pricer],
    max_cost_usd: float,
    allow_unpriced: bool,
    file: str,
    judges: Sequence[JudgeCheck] = (),
) -> float:
    """Refuse a plan that could exceed the budget, its judges' calls included; returns the
    worst-case estimate."""
    check_limit(max_cost_usd)
    for variant in plan.variants:
        _check_bounded(variant, pricers[variant.id], variant.where, allow_unpriced, file)
    judge_pricers = _check_judges(plan, judges, allow_unpriced, file)
    judging = judges_worst_case_usd(plan, judges, judge_pricers)
    worst = plan_worst_case_usd(plan, pricers) + judging
    if worst > max_cost_usd:
        of_which = f" (${judging:.4f} of it for judges)" if judging else ""
        raise ConfigError(
            f"{file}: the plan could cost up to ${worst:.4f}{of_which}, "
            f"${worst - max_cost_usd:.4f} over max_cost_usd ${max_cost_usd:g}: lower repeats or "
            "max_tokens, or raise the budget"
        )
    return worst


def _check_bounded(
    variant: Variant, pricer: Pricer, where: str, allow_unpriced: bool, file: str
) -> bool:
    """ConfigError when max_cost_usd cannot bound the calls of a model entry (unpriced and not
    allowed, or priced without max_tokens); True when its calls are priced per token."""
    if pricer.kind == "local":
        return False
    probe = pricer.price(Usage(input_tokens=1, output_tokens=1), 1.0)
    if probe.usd is None and not allow_unpriced:
        raise ConfigError(
            f"{file}: {where}: {variant.model} has no known price, so max_cost_usd "
            "cannot bound it: set price_per_mtok or price_as, or allow_unpriced: true"
        )
    if probe.usd is not None and variant.entry.max_tokens is None:
        raise ConfigError(
            f"{file}: {where}.max_tokens: is required under max_cost_usd "
            f"(it bounds what a call of {shorten(variant.id)} can cost)"
        )
    return probe.usd is not None


def _check_judges(
    plan: Plan, judges: Sequence[JudgeCheck], allow_unpriced: bool, file: str
) -> dict[str, Pricer]:
    """Each judge's pricer, once its calls are known to be bounded; a judge priced per token
    reads the answers, which only the graded models' max_tokens bound."""
    pricers: dict[str, Pricer] = {}
    for check in judges:
        if check.where in pricers:
            continue
        pricers[check.where] = Pricer(check.judge.entry)
        if not _check_bounded(check.judge, pricers[check.where], check.where, allow_unpriced, file):
            continue
        for variant in plan.variants:
            if variant.entry.max_tokens is None:
                raise ConfigError(
                    f"{file}: {variant.where}.max_tokens: is required under max_cost_usd when "
                    f"a judge ({check.where}) grades the answers of {shorten(variant.id)} (they "
                    "are the judge's input)"
                )
    return pricers


def plan_worst_case_usd(plan: Plan, pricers: dict[str, Pricer]) -> float:
    """Every call's worst case, warmup calls included: one price per variant and case, as
    repeats of a call cost the same."""
    total = 0.0
    for variant in plan.variants:
        pricer = pricers[variant.id]
        # a batched variant's calls cost the batch price (batch/pricing.py)
        repeats = plan.repeats * (discount_of(pricer) if variant.entry.batch else 1.0)
        for case in plan.cases:
            total += worst_case_usd(Call(variant, case, 0), pricer) * repeats
        if plan.warmup:
            total += worst_case_usd(Call(variant, plan.cases[0], -1), pricer) * plan.warmup
    return total


def judges_worst_case_usd(
    plan: Plan, judges: Sequence[JudgeCheck], pricers: dict[str, Pricer]
) -> float:
    """One judge call per measured call (warmups are not graded) per judge check of its case,
    each reading an answer of its graded model's max_tokens; `pricers` by JudgeCheck.where."""
    total = 0.0
    for check in judges:
        call = Call(check.judge, check.case, 0)
        pricer = pricers[check.where]
        # a batched judge's calls cost the batch price (batch/pricing.py)
        repeats = plan.repeats * (discount_of(pricer) if check.judge.entry.batch else 1.0)
        for variant in plan.variants:
            answer = ANSWER_TOKEN_RATIO * (variant.entry.max_tokens or 0)
            total += worst_case_usd(call, pricer, answer) * repeats
    return total


def check_limit(max_cost_usd: float) -> None:
    """ConfigError for a limit no spending can be compared with (`--max-cost nan`)."""
    if not math.isfinite(max_cost_usd) or max_cost_usd < 0:
        raise ConfigError(
            f"max_cost_usd: must be a finite number of USD, at least 0 (got {max_cost_usd})"
        )


@dataclass
class Reservation:
    usd: float


class Budget:
    """Spend so far plus what calls in flight could still cost never exceeds the limit."""

    def __init__(self, limit_usd: float) -> None:
        check_limit(limit_usd)  # NaN would refuse nothing: every comparison with it is false
        self.limit_usd = limit_usd
        self.spent_usd = 0.0
        self._reserved = 0.0
        self._lock = threading.Lock()

    @classmethod
    def after(cls, limit_usd: float, records: Iterable[CallRecord]) -> Budget:
        """A budget that has already paid for these calls (a resumed run's, or the models'
        before their judges)."""
        budget = cls(limit_usd)
        budget.spent_usd = sum(r.cost.usd for r in records if r.cost and r.cost.usd)
        return budget

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
