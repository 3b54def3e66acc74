"""A `models:` entry: a provider, a model and the settings it is called with. Each provider's
own rules come from its ProviderSpec (providers/spec.py), never from its adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from ..providers.spec import (
    LOCAL_DEFAULT_MODEL,
    option_owners,
    provider_names,
    provider_options,
    provider_spec,
)
from ..user_files import shorten
from .fields import MAX_CONCURRENCY, MAX_TIMEOUT_S, Strict, at_least, between, is_http_url

if TYPE_CHECKING:
    from .environment import Connection

DEFAULT_LOCAL_MODEL = LOCAL_DEFAULT_MODEL
SWEEPABLE = ("temperature", "max_tokens", "top_p", "seed")


def _registered_provider(name: Any) -> str:
    # read at validation time, not import time: a provider registered later is accepted
    if not isinstance(name, str) or name not in provider_names():
        raise ValueError(f"must be one of {', '.join(provider_names())} (got {shorten(name)})")
    return name


ProviderName = Annotated[str, BeforeValidator(_registered_provider)]


class TokenPrice(Strict):
    """A user's own price, in USD per million tokens; overrides the genai-prices table."""

    input: Annotated[float, at_least(0)]
    output: Annotated[float, at_least(0)]


class BatchSettings(Strict):
    """`batch:` on a model: its calls go through the provider's batch API (see llmflow.batch)."""

    max_requests: Annotated[int | None, between(1, 50_000)] = None  # per job
    poll_s: Annotated[float, between(0.01, 3600)] = 60.0


BATCH_PROVIDERS = ("openai", "gemini")


def batch_flag(value: Any) -> Any:
    """`batch: true` is the default settings; `false` none (a model's or a judge's)."""
    if value is None or isinstance(value, dict | BatchSettings):
        return value
    if isinstance(value, bool):
        return {} if value else None
    raise ValueError("write true, false or {max_requests: N, poll_s: SECONDS}")


Batch = Annotated[BatchSettings | None, BeforeValidator(batch_flag)]


class ModelEntry(Strict):
    """One `models:` entry: a provider, a model and the settings it is called with."""

    provider: ProviderName
    model: str | None = None
    name: str | None = None
    temperature: Annotated[float | None, between(0, 2)] = None
    max_tokens: Annotated[int | None, at_least(1)] = None
    top_p: Annotated[float | None, between(0, 1)] = None
    seed: int | None = None
    stop: list[str] | None = None
    stream: bool = True
    base_url: str | None = None
    api_key_env: str | None = None
    register_as: str | None = None
    timeout_s: Annotated[float, between(0.001, MAX_TIMEOUT_S)] = 120.0
    max_retries: Annotated[int, between(0, 20)] = 2
    # per endpoint (provider + base URL + key variable), not per entry: see runner.py
    max_concurrency: Annotated[int | None, between(1, MAX_CONCURRENCY)] = None
    cost_per_hour_usd: Annotated[float | None, at_least(0)] = None
    price_per_mtok: TokenPrice | None = None
    price_as: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.:/-]+$")
    # local provider only
    prompt_template: str | None = None
    n_threads: Annotated[int | None, at_least(1)] = None
    n_ctx: Annotated[int | None, at_least(64)] = None
    batch: Batch = None  # `true` or {max_requests, poll_s}
    # sklearn provider only: the training file (user, expected), relative to the experiment file
    train: str | None = None

    @field_validator("base_url")
    @classmethod
    def _valid_url(cls, url: str | None) -> str | None:
        # the URL may hold a credential: the message does not echo it
        if url is not None and not is_http_url(url):
            raise ValueError("not a valid URL (write http://host:port or https://host/path)")
        return url

    @model_validator(mode="before")
    @classmethod
    def _provider_defaults(cls, data: Any) -> Any:
        # the max_tokens an API requires is filled in here, where every reader of it looks
        if not isinstance(data, dict) or data.get("max_tokens") is not None:
            return data
        name = data.get("provider")
        spec = provider_spec(name) if isinstance(name, str) and name in provider_names() else None
        if spec is None or spec.default_max_tokens is None:
            return data
        return {**data, "max_tokens": spec.default_max_tokens}

    @model_validator(mode="after")
    def _check_provider_fields(self) -> ModelEntry:
        spec = provider_spec(self.provider)
        if self.model is None and spec.default_model is None:
            raise ValueError(f"model: is required for provider {self.provider}")
        for name in SWEEPABLE:
            if problem := spec.refuses(name, getattr(self, name)):
                raise ValueError(f"{name}: {problem}")
        for name in provider_options():
            if name not in spec.own_options and getattr(self, name) is not None:
                raise ValueError(
                    f"{name}: only applies to provider {' or '.join(option_owners(name))}"
                )
        if self.batch is not None and self.provider not in BATCH_PROVIDERS:
            raise ValueError(f"batch: only applies to provider {' or '.join(BATCH_PROVIDERS)}")
        if self.prompt_template is not None and "{prompt}" not in self.prompt_template:
            raise ValueError("prompt_template: must contain {prompt}")
        return self

    @property
    def model_name(self) -> str:
        return self.model or provider_spec(self.provider).default_model or ""

    def provider_options(self, connection: Connection) -> dict[str, Any]:
        """Keyword arguments for `providers.create_provider`."""
        options: dict[str, Any] = {
            "model": self.model_name,
            "base_url": connection.base_url,
            "api_key": connection.api_key,
            "timeout_s": self.timeout_s,
        }
        for name in provider_spec(self.provider).own_options:
            if (value := getattr(self, name)) is not None:
                options[name] = value
        return options

    @property
    def is_local_compute(self) -> bool:
        """Runs on the user's own hardware, so it is costed per hour, not per token."""
        return provider_spec(self.provider).local_compute or self.cost_per_hour_usd is not None
