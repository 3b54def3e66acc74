import asyncio
from pathlib import Path

from llmflow.config import load_experiment
from llmflow.plan import build_plan
from llmflow.pricing import Pricer
from llmflow.providers.openai_compat import OpenAICompatProvider
from llmflow.runner import RetryPolicy, Runner
from llmflow.types import CallRecord
from tests.helpers import write_experiment

FAST = RetryPolicy(base_delay_s=0.001, max_delay_s=0.01)


def run_plan(tmp_path: Path, fake, *, retry=FAST, exclusive_key=None, **entry) -> list[CallRecord]:
    model = {"provider": "openai", "model": "gpt-4o-mini", "base_url": f"{fake.url}/v1", **entry}
    plan = build_plan(load_experiment(write_experiment(tmp_path, [model])))
    records: list[CallRecord] = []

    async def go():
        providers = {
            v.id: OpenAICompatProvider(
                v.model, api_key="test-openai-key", base_url=v.entry.base_url
            )
            for v in plan.variants
        }
        for provider in providers.values():
            provider.exclusive_key = exclusive_key
        pricers = {v.id: Pricer(v.entry) for v in plan.variants}
        runner = Runner(providers, pricers, concurrency=4, on_record=records.append, retry=retry)
        await runner.run(plan.calls())

    asyncio.run(go())
    return records


def test_retryable_fault_is_retried_once(tmp_path, fake_openai):
    fake_openai.inject("429")
    records = run_plan(tmp_path, fake_openai, max_retries=2)
    assert all(r.ok for r in records)
    assert sorted(r.attempts for r in records) == [1, 2]
    assert len(fake_openai.generation_requests()) == 3


def test_exhausted_retries_record_the_error_class(tmp_path, fake_openai):
    fake_openai.inject("500", "500", "500", "500")
    records = run_plan(tmp_path, fake_openai, max_retries=1)
    failed = [r for r in records if not r.ok]
    assert [r.error_type for r in failed] == ["ServerError", "ServerError"]
    assert all(r.attempts == 2 and r.completion is None for r in failed)


def test_timeout_applies_to_the_whole_call(tmp_path, fake_openai):
    fake_openai.hang_s = 1.0
    fake_openai.inject("timeout", "timeout")
    records = run_plan(tmp_path, fake_openai, max_retries=0, timeout_s=0.2)
    assert sorted(r.error_type or "ok" for r in records) == ["ProviderTimeout", "ProviderTimeout"]


def test_retry_after_is_honoured():
    from llmflow.errors import RateLimited, ServerError

    policy = RetryPolicy(base_delay_s=0.01, max_delay_s=1.0)
    assert policy.delay(1, RateLimited("slow down", retry_after=2.5)) == 2.5
    assert 0.005 <= policy.delay(1, ServerError("boom")) <= 0.01
    assert policy.delay(10, ServerError("boom")) <= 1.0


def test_global_concurrency_bounds_calls_in_flight(tmp_path, fake_openai):
    fake_openai.delay_s = 0.05
    seen = []
    original = fake_openai._next_fault

    def track():
        seen.append(len(fake_openai.requests) - len(fake_openai.completed))
        return original()

    fake_openai._next_fault = track
    try:
        records = run_plan(tmp_path, fake_openai, max_concurrency=1)
    finally:
        fake_openai._next_fault = original
    assert len(records) == 2
    assert max(seen) == 1, "max_concurrency=1 must keep one call in flight"


def test_a_provider_with_an_exclusive_key_is_called_one_call_at_a_time(tmp_path, fake_openai):
    # the local model's provider has one; the lock guarding it must exist (it once did not,
    # and every local call failed with an AttributeError)
    fake_openai.delay_s = 0.05
    records = run_plan(tmp_path, fake_openai, exclusive_key="local:shared")
    assert [r.error_type for r in records] == [None, None]
    starts_ends = sorted((r.timing.started_ns, r.timing.ended_ns) for r in records)
    assert starts_ends[0][1] <= starts_ends[1][0], "calls sharing the key overlapped"


def test_the_pace_holds_the_calls_back_while_too_many_wait(tmp_path, fake_openai):
    """The session's pace (the worker's backlog of traces) is awaited before every call: while
    it waits, no request is sent, and the calls go on when it lets them."""
    model = {"provider": "openai", "model": "gpt-4o-mini", "base_url": f"{fake_openai.url}/v1"}
    plan = build_plan(load_experiment(write_experiment(tmp_path, [model], repeats=3)))
    records: list[CallRecord] = []
    sent_while_held: list[int] = []

    async def go():
        released = asyncio.Event()

        async def pace() -> None:
            if len(records) >= 2:  # two answers unconfirmed: hold the rest back
                await released.wait()

        providers = {
            v.id: OpenAICompatProvider(
                v.model, api_key="test-openai-key", base_url=v.entry.base_url
            )
            for v in plan.variants
        }
        pricers = {v.id: Pricer(v.entry) for v in plan.variants}
        runner = Runner(
            providers, pricers, concurrency=1, on_record=records.append, retry=FAST, pace=pace
        )
        running = asyncio.ensure_future(runner.run(plan.calls()))
        while len(records) < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        sent_while_held.append(len(fake_openai.generation_requests()))
        released.set()
        await running

    asyncio.run(go())
    assert sent_while_held == [2]
    assert len(records) == len(fake_openai.generation_requests()) == 6
