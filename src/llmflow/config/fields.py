"""The bounds and field validators every part of the experiment file's schema shares."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict

MAX_CALLS = 1_000_000  # a bigger plan is a typo, and its calls would not fit in memory
MAX_EXPERIMENT_NAME = 500  # MLflow's limit on an experiment name
MAX_REPEATS = MAX_CALLS
MAX_CONCURRENCY = 1024  # calls in flight; far past any provider's rate limit
MAX_PROMPT_SIZE = 2_000_000  # tokens: the largest context window on offer
MAX_TIMEOUT_S = 86_400  # a day: past any call's answer, and within asyncio's timer range


class Strict(BaseModel):
    # NaN passes every range check (all comparisons are false) and inf disables a limit
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def between(low: float, high: float) -> AfterValidator:
    def check(value: float | None) -> float | None:
        if value is not None and not low <= value <= high:
            raise ValueError(f"must be between {_number(low)} and {_number(high)}")
        return value

    return AfterValidator(check)


def at_least(low: float) -> AfterValidator:
    def check(value: float | None) -> float | None:
        if value is not None and value < low:
            raise ValueError(f"must be at least {_number(low)}")
        return value

    return AfterValidator(check)


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
