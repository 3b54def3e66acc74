"""Opening the providers of a plan: one per endpoint and model, each checked before any call."""

from __future__ import annotations

import asyncio

from .config import LoadedExperiment
from .config.environment import resolve_connection
from .errors import LlmflowError, MissingCredentials, ProviderError
from .plan import Plan
from .providers import Provider, create_provider, provider_spec
from .redact import redact_text
from .run_types import Skipped
from .scoring.judge_plan import judge_checks
from .sklearn_training import train


async def open_providers(
    plan: Plan, loaded: LoadedExperiment
) -> tuple[dict[str, Provider], list[Skipped]]:
    """Each variant's provider, checked; a variant whose key is missing or whose provider does
    not answer is skipped with the reason and the fix.

    Variants whose provider options agree (a sweep of one model) share one provider: one client
    per endpoint and model, as the runner shares the endpoint's max_concurrency."""
    providers: dict[str, Provider] = {}
    opened: dict[tuple, Provider] = {}
    skipped: list[Skipped] = []
    for variant in plan.variants:
        try:
            connection = resolve_connection(variant.entry, loaded.path.name)
        except MissingCredentials as e:
            skipped.append(Skipped(variant, str(e)))
            continue
        options = variant.entry.provider_options(connection)
        if provider_spec(variant.provider).trained_in_run and loaded.config.labels:
            # it learns the task's labels as the file spells them, as the test cases have them
            options["labels"] = tuple(loaded.config.labels)
        key = (variant.provider, *sorted(options.items()))
        if key not in opened:
            opened[key] = create_provider(variant.provider, **options)
        providers[variant.id] = opened[key]

    shared = distinct(providers)
    reasons = await asyncio.gather(*(_check(p) for p in shared))
    failed = {id(p): reason for p, reason in zip(shared, reasons, strict=True) if reason}
    by_id = {v.id: v for v in plan.variants}
    for variant_id, provider in list(providers.items()):
        if id(provider) in failed:
            skipped.append(Skipped(by_id[variant_id], failed[id(provider)]))
            del providers[variant_id]
    await close_all([p for p in shared if id(p) in failed])
    return providers, skipped


def distinct(providers: dict[str, Provider]) -> list[Provider]:
    """Each provider once, though several variants share it."""
    return list({id(p): p for p in providers.values()}.values())


async def close_all(providers: list[Provider]) -> None:
    """Close each one; a provider that fails to close does not keep the others open."""
    await asyncio.gather(*(p.aclose() for p in providers), return_exceptions=True)


async def _check(provider: Provider) -> str | None:
    try:
        await provider.check()
        if provider_spec(provider.name).trained_in_run:  # it learns before its first call
            await train(provider)  # type: ignore[arg-type] - the sklearn provider
    except ProviderError as e:
        return redact_text(f"{type(e).__name__}: {e}")
    return None


async def check_judges(loaded: LoadedExperiment) -> None:
    """Each judge of the file opened and checked as the models are, before any call is paid:
    one whose key is missing or whose endpoint does not answer stops the run here, in one line
    (LlmflowError), since every answer would be paid for and then not graded."""
    judges = {}
    for check in judge_checks(loaded):
        judges.setdefault(check.judge.entry.model_dump_json(), check)
    for check in judges.values():
        judge = check.judge
        try:
            connection = resolve_connection(judge.entry, loaded.path.name)
        except MissingCredentials as e:
            reason = str(e)
        else:
            provider = create_provider(judge.provider, **judge.entry.provider_options(connection))
            try:
                reason = await _check(provider)
            finally:
                await close_all([provider])
        if reason:
            raise LlmflowError(
                f"{loaded.path.name}: {check.where}: the judge {judge.provider} {judge.model} "
                f"cannot be used: {reason}; no call was made"
            )
