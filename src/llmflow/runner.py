"""Executes a plan: asyncio, a global and a per-variant concurrency limit, one retry layer.

The runner knows no provider's wire format and nothing of MLflow. Every call ends as a
CallRecord, succeeded or not, handed to `on_record` as soon as it is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .errors import ProviderError, ProviderTimeout, RateLimited
from .plan import Call, Variant
from .pricing import Pricer
from .providers import Provider, collect
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
    ) -> None:
        self._providers = providers
        self._pricers = pricers
        self._concurrency = concurrency
        self._on_record = on_record
        self._retry = retry or RetryPolicy()
        self._exclusive: dict[str, asyncio.Lock] = {}

    async def run(self, calls: Iterable[Call]) -> None:
        """Run every call. Each variant gets its own workers (at most its max_concurrency),
        all sharing the global limit, so one slow model cannot hold every slot."""
        queues: dict[str, asyncio.Queue[Call]] = {}
        variants: dict[str, Variant] = {}
        for call in calls:
            queues.setdefault(call.variant.id, asyncio.Queue()).put_nowait(call)
            variants[call.variant.id] = call.variant
        slots = asyncio.Semaphore(self._concurrency)
        workers = []
        for variant_id, queue in queues.items():
            limit = variants[variant_id].entry.max_concurrency or self._concurrency
            for _ in range(min(limit, self._concurrency, queue.qsize())):
                workers.append(asyncio.create_task(self._work(queue, slots)))
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()

    async def _work(self, queue: asyncio.Queue[Call], slots: asyncio.Semaphore) -> None:
        while not queue.empty():
            call = queue.get_nowait()
            async with slots:
                record = await self.execute(call)
            self._on_record(record)

    async def execute(self, call: Call) -> CallRecord:
        """One call with retries; never raises for a provider failure."""
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
                return _failed(call, e, attempt)
            cost = self._pricers[variant.id].price(completion.usage, timing.latency_s)
            return CallRecord(
                variant_id=variant.id,
                case_id=call.case.id,
                repeat=call.repeat,
                messages=call.case.messages,
                settings=variant.settings,
                completion=completion,
                timing=timing,
                cost=cost,
                attempts=attempt,
            )
        raise AssertionError("unreachable")

    def _exclusive_lock(self, provider: Provider) -> contextlib.AbstractAsyncContextManager:
        key = getattr(provider, "exclusive_key", None)
        if key is None:
            return contextlib.nullcontext()
        return self._exclusive.setdefault(key, asyncio.Lock())


def _failed(call: Call, error: BaseException, attempts: int) -> CallRecord:
    return CallRecord(
        variant_id=call.variant.id,
        case_id=call.case.id,
        repeat=call.repeat,
        messages=call.case.messages,
        settings=call.variant.settings,
        completion=None,
        timing=None,
        cost=None,
        error_type=type(error).__name__,
        error_message=str(error)[:500],
        attempts=attempts,
    )
