"""Executes a plan: asyncio, a global and a per-endpoint concurrency limit, one retry layer,
the response cache and the budget.

Concurrency: `concurrency` bounds the calls in flight in all; `max_concurrency` bounds those
in flight at one provider endpoint (provider + base URL + key variable), shared by every
variant that calls it, so a sweep of one model sends no more than one model would (the
smallest max_concurrency among the endpoint's entries applies). A rate limit is per endpoint.

The runner knows no provider's wire format and nothing of MLflow. Every call ends as a
CallRecord, succeeded or not, handed to `on_record` as soon as it is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from .budget import Budget, worst_case_usd
from .cache import ResponseCache
from .config.environment import Endpoint, endpoint_of
from .errors import BudgetExhausted, ProviderError, ProviderTimeout, RateLimited
from .plan import Call, Variant
from .pricing import Pricer
from .providers import Provider, collect
from .providers.spec import provider_spec
from .redact import redact_text
from .types import CallRecord


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server's Retry-After wins when it is longer."""

    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def delay(self, attempt: int, error: ProviderError) -> float:
        backoff = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        delay = random.uniform(backoff / 2, backoff)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, min(error.retry_after, self.max_delay_s * 4))
        return delay


class Runner:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        pricers: Mapping[str, Pricer],
        *,
        concurrency: int,
        on_record: Callable[[CallRecord], None],
        retry: RetryPolicy | None = None,
        cache: ResponseCache | None = None,
        budget: Budget | None = None,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._providers = providers
        self._pace = pace  # awaited before each call: the caller may hold the calls back
        self._pricers = pricers
        self._concurrency = concurrency
        self._on_record = on_record
        self._retry = retry or RetryPolicy()
        self._cache = cache
        self._budget = budget
        self._exclusive: dict[str, asyncio.Lock] = {}
        self._calls: dict[str, int] = {}  # calls finished, by variant id
        # errors raised by neither the provider nor a timeout (llmflow's or an SDK's bug), by
        # variant id: the first, with its traceback, and how many
        self._unexpected: dict[str, tuple[BaseException, int]] = {}

    @property
    def budget(self) -> Budget | None:
        return self._budget

    @property
    def pace(self) -> Callable[[], Awaitable[None]] | None:
        return self._pace

    def broken_variants(self) -> dict[str, BaseException]:
        """The variants whose every call failed with an unexpected error: the first error of
        each. A bug, not the provider: the run must not read as N failed calls."""
        return {
            variant_id: first
            for variant_id, (first, count) in self._unexpected.items()
            if count == self._calls.get(variant_id)
        }

    async def run(self, calls: Iterable[Call]) -> None:
        """Run every call. Each endpoint gets its own workers (at most its max_concurrency),
        all sharing the global limit, so one slow server cannot hold every slot. An endpoint's
        queue keeps the plan's order, which interleaves its variants."""
        queues: dict[Endpoint, asyncio.Queue[Call]] = {}
        variants: dict[Endpoint, dict[str, Variant]] = {}
        endpoints: dict[str, Endpoint] = {}
        for call in calls:
            endpoint = endpoints.get(call.variant.id)
            if endpoint is None:
                endpoint = endpoints[call.variant.id] = endpoint_of(call.variant.entry)
            queues.setdefault(endpoint, asyncio.Queue()).put_nowait(call)
            variants.setdefault(endpoint, {})[call.variant.id] = call.variant
        slots = asyncio.Semaphore(self._concurrency)
        workers = []
        for endpoint, queue in queues.items():
            limit = _endpoint_limit(variants[endpoint].values(), self._concurrency)
            for _ in range(min(limit, queue.qsize())):
                workers.append(asyncio.create_task(self._work(queue, slots)))
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _work(self, queue: asyncio.Queue[Call], slots: asyncio.Semaphore) -> None:
        while not queue.empty():
            if self._pace is not None:
                await self._pace()
                if queue.empty():  # another worker took the last call meanwhile
                    break
            call = queue.get_nowait()
            async with slots:
                record = await self.execute(call)
            self._calls[record.variant_id] = self._calls.get(record.variant_id, 0) + 1
            self._on_record(record)

    async def execute(self, call: Call) -> CallRecord:
        """One call: from the cache, else within the budget, with retries.

        Never raises for a provider failure: the error is recorded instead.
        """
        # a cached warmup warms nothing
        use_cache = self._cache is not None and not call.is_warmup and _cacheable(call)
        if use_cache and (hit := self._cache.get(call)) is not None:
            return _record(call, completion=hit, cached=True)
        reservation = None
        if self._budget is not None:
            worst = worst_case_usd(call, self._pricers[call.variant.id])
            reservation = self._budget.reserve(worst)
            if reservation is None:
                spent = f"${self._budget.spent_usd:.4f} of ${self._budget.limit_usd:g} spent"
                return _failed(call, BudgetExhausted(f"not sent: {spent}"), attempts=0)
        record: CallRecord | None = None
        try:
            record = await self._call_with_retries(call)
        finally:
            if reservation is not None:  # no known cost (failed, cancelled) counts as the worst
                actual = record.cost.usd if record is not None and record.cost else None
                self._budget.settle(reservation, actual)
        if use_cache and record.ok and record.completion is not None:
            self._cache.put(call, record.completion)
        return record

    async def _call_with_retries(self, call: Call) -> CallRecord:
        variant = call.variant
        provider = self._providers[variant.id]
        attempts_allowed = variant.entry.max_retries + 1
        for attempt in range(1, attempts_allowed + 1):
            try:
                async with self._exclusive_lock(provider):
                    completion, timing = await asyncio.wait_for(
                        collect(
                            provider.stream(call.case.messages, variant.settings),
                            variant.settings.stream,
                        ),
                        timeout=variant.entry.timeout_s,
                    )
            except (ProviderError, asyncio.TimeoutError) as e:
                error = (
                    e
                    if isinstance(e, ProviderError)
                    else ProviderTimeout(
                        f"no complete answer within timeout_s={variant.entry.timeout_s:g}"
                    )
                )
                if not error.retryable or attempt == attempts_allowed:
                    return _failed(call, error, attempt)
                await asyncio.sleep(self._retry.delay(attempt, error))
                continue
            except Exception as e:  # an SDK bug or an unforeseen answer must not stop the run
                first, count = self._unexpected.get(variant.id, (e, 0))
                self._unexpected[variant.id] = (first, count + 1)
                return _failed(call, e, attempt)
            cost = self._pricers[variant.id].price(completion.usage, timing.latency_s)
            return _record(call, completion=completion, timing=timing, cost=cost, attempts=attempt)
        raise AssertionError("unreachable")

    def _exclusive_lock(self, provider: Provider) -> contextlib.AbstractAsyncContextManager:
        key = getattr(provider, "exclusive_key", None)
        if key is None:
            return contextlib.nullcontext()
        return self._exclusive.setdefault(key, asyncio.Lock())


def _endpoint_limit(variants: Iterable[Variant], concurrency: int) -> int:
    """The smallest max_concurrency declared by the endpoint's entries, within `concurrency`."""
    declared = [v.entry.max_concurrency for v in variants if v.entry.max_concurrency]
    return min([concurrency, *declared])


def _record(call: Call, **fields: object) -> CallRecord:
    values: dict[str, object] = {"completion": None, "timing": None, "cost": None, **fields}
    return CallRecord(
        variant_id=call.variant.id,
        case_id=call.case.id,
        repeat=call.repeat,
        messages=call.case.messages,
        settings=call.variant.settings,
        **values,  # type: ignore[arg-type]
    )


def _failed(call: Call, error: BaseException, attempts: int) -> CallRecord:
    return _record(
        call,
        error_type=type(error).__name__,
        error_message=redact_text(str(error))[:500],
        attempts=attempts,
    )


def _cacheable(call: Call) -> bool:
    return not provider_spec(call.variant.provider).trained_in_run
