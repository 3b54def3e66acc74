"""Experiment files: YAML -> validated pydantic models (environment.py reads what the file leaves
to the environment; validation_errors.py words what is wrong with it)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .providers.spec import (
    LOCAL_DEFAULT_MODEL,
    option_owners,
    provider_names,
    provider_options,
    provider_spec,
)
from .scoring.specs import ScorerSpec
from .user_files import load_yaml, read_text, shorten
from .validation_errors import describe_validation_error

if TYPE_CHECKING:
    from .environment import Connection

DEFAULT_LOCAL_MODEL = LOCAL_DEFAULT_MODEL
MAX_CALLS = 1_000_000  # a bigger plan is a typo, and its calls would not fit in memory
MAX_EXPERIMENT_NAME = 500  # MLflow's limit on an experiment name
MAX_REPEATS = MAX_CALLS
MAX_CONCURRENCY = 1024  # calls in flight; far past any provider's rate limit
MAX_PROMPT_SIZE = 2_000_000  # tokens: the largest context window on offer
MAX_TIMEOUT_S = 86_400  # a day: past any call's answer, and within asyncio's timer range


def _between(low: float, high: float):
    def check(value: float | None) -> float | None:
        if value is not None and not low <= value <= high:
            raise ValueError(f"must be between {_number(low)} and {_number(high)}")
        return value

    return AfterValidator(check)


def _at_least(low: float):
    def check(value: float | None) -> float | None:
        if value is not None and value < low:
            raise ValueError(f"must be at least {_number(low)}")
        return value

    return AfterValidator(check)


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _registered_provider(name: Any) -> str:
    # read at validation time, not import time: a provider registered later is accepted
    if not isinstance(name, str) or name not in provider_names():
        raise ValueError(f"must be one of {', '.join(provider_names())} (got {shorten(name)})")
    return name


ProviderName = Annotated[str, BeforeValidator(_registered_provider)]


class _Strict(BaseModel):
    # NaN passes every range check (all comparisons are false) and inf disables a limit
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PromptCase(_Strict):
    model_config = ConfigDict(**_Strict.model_config, populate_by_name=True)

    # a call's trace is named "<id>#<repeat>", and MLflow takes trace names of up to 4,096
    id: str = Field(min_length=1, max_length=1000)
    user: str = Field(min_length=1)
    system: str | None = None
    expected: str | None = None  # the reference answer similarity scorers compare with
    checks: list[ScorerSpec] = Field(default_factory=list, alias="assert")  # this prompt's own


class TokenPrice(_Strict):
    """A user's own price, in USD per million tokens; overrides the genai-prices table."""

    input: Annotated[float, _at_least(0)]
    output: Annotated[float, _at_least(0)]


class ModelEntry(_Strict):
    """One `models:` entry: a provider, a model and the settings it is called with."""

    provider: ProviderName
    model: str | None = None
    name: str | None = None
    temperature: Annotated[float | None, _between(0, 2)] = None
    max_tokens: Annotated[int | None, _at_least(1)] = None
    top_p: Annotated[float | None, _between(0, 1)] = None
    seed: int | None = None
    stop: list[str] | None = None
    stream: bool = True
    base_url: str | None = None
    api_key_env: str | None = None
    register_as: str | None = None
    timeout_s: Annotated[float, _between(0.001, MAX_TIMEOUT_S)] = 120.0
    max_retries: Annotated[int, _between(0, 20)] = 2
    # per endpoint (provider + base URL + key variable), not per entry: see runner.py
    max_concurrency: Annotated[int | None, _between(1, MAX_CONCURRENCY)] = None
    cost_per_hour_usd: Annotated[float | None, _at_least(0)] = None
    price_per_mtok: TokenPrice | None = None
    price_as: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.:/-]+$")
    # local provider only
    prompt_template: str | None = None
    n_threads: Annotated[int | None, _at_least(1)] = None
    n_ctx: Annotated[int | None, _at_least(64)] = None
    # sklearn provider only: the training file (user, expected), relative to the experiment file
    train: str | None = None

    @field_validator("base_url")
    @classmethod
    def _valid_url(cls, url: str | None) -> str | None:
        # the URL may hold a credential: the message does not echo it
        if url is not None and not _is_http_url(url):
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


class PromotePolicy(_Strict):
    """`promote:` rules: gates for every promotion of models registered from this file and,
    with best_by, which registered variant of a run goes to staging (the best value wins: the
    highest pass_rate, the lowest latency or cost)."""

    require: list[str] = Field(default_factory=list)
    best_by: str | None = None

    @field_validator("require")
    @classmethod
    def _parse_gates(cls, rules: list[str]) -> list[str]:
        from .registry.gates import parse

        for rule in rules:
            try:
                parse(rule)
            except ConfigError as e:
                raise ValueError(str(e)) from None
        return rules


SWEEPABLE = ("temperature", "max_tokens", "top_p", "seed")


class Sweep(_Strict):
    """Lists of settings; every model entry runs once per combination (one variant each)."""

    temperature: list[Annotated[float, _between(0, 2)]] | None = Field(default=None, min_length=1)
    max_tokens: list[Annotated[int, _at_least(1)]] | None = Field(default=None, min_length=1)
    top_p: list[Annotated[float, _between(0, 1)]] | None = Field(default=None, min_length=1)
    seed: list[int] | None = Field(default=None, min_length=1)

    @field_validator("temperature", "max_tokens", "top_p", "seed")
    @classmethod
    def _no_duplicates(cls, values: list[Any] | None) -> list[Any] | None:
        # two equal values would be one variant run twice under one id
        seen: set[Any] = set()
        for value in values or ():
            if value in seen:
                raise ValueError(f"{value!r} appears twice")
            seen.add(value)
        return values

    def axes(self) -> dict[str, list[Any]]:
        return {name: values for name in SWEEPABLE if (values := getattr(self, name))}


class Experiment(_Strict):
    experiment: str
    task: str = Field(default="chat", min_length=1)
    prompts: list[PromptCase] | str
    repeats: Annotated[int, _between(1, MAX_REPEATS)] = 1
    concurrency: Annotated[int, _between(1, MAX_CONCURRENCY)] = 4
    models: list[ModelEntry] = Field(min_length=1)
    promote: PromotePolicy | None = None
    # off unless asked for: a cached answer silently stands in for a fresh call.
    # false, true (the user cache dir) or a path to a sqlite file
    cache: bool | str = False
    max_cost_usd: Annotated[float | None, _at_least(0)] = None
    allow_unpriced: bool = False  # run models with no known price under max_cost_usd
    sweep: Sweep | None = None
    warmup: Annotated[int, _between(0, 100)] = 0  # calls per variant left out of statistics
    # pad prompts to ~N tokens
    prompt_sizes: list[Annotated[int, _between(1, MAX_PROMPT_SIZE)]] | None = None
    report: bool = True  # write report.md/html, plots and results into the parent run
    scorers: list[ScorerSpec] | None = None  # checks applied to every prompt's answers
    # task classify: the labels, and the system message of prompts without one (default: an
    # instruction listing the labels)
    labels: list[Annotated[str, Field(min_length=1)]] | None = None
    system: str | None = Field(default=None, min_length=1)

    @field_validator("cache")
    @classmethod
    def _cache_path(cls, setting: bool | str) -> bool | str:
        if isinstance(setting, str) and not setting.strip():
            raise ValueError("write true, false or the path of a sqlite file")
        return setting

    @field_validator("experiment")
    @classmethod
    def _mlflow_name(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("must not be empty")
        if len(name) > MAX_EXPERIMENT_NAME:
            raise ValueError(
                f"must be at most {MAX_EXPERIMENT_NAME} characters, MLflow's limit "
                f"(got {len(name):,})"
            )
        return name

    @field_validator("prompts")
    @classmethod
    def _unique_ids(cls, prompts: list[PromptCase] | str) -> list[PromptCase] | str:
        if isinstance(prompts, list):
            if not prompts:
                raise ValueError("must list at least one prompt")
            seen: set[str] = set()
            for case in prompts:
                if case.id in seen:
                    raise ValueError(f"duplicate prompt id {shorten(case.id)}")
                seen.add(case.id)
        return prompts

    @model_validator(mode="after")
    def _check_sweep_fits_providers(self) -> Experiment:
        axes = self.sweep.axes() if self.sweep else {}
        for index, entry in enumerate(self.models):
            spec = provider_spec(entry.provider)
            for name, values in axes.items():
                for value in values:
                    if problem := spec.refuses(name, value):
                        raise ValueError(f"sweep: {name} {value} for models[{index}]: {problem}")
        return self

    @model_validator(mode="after")
    def _check_classify(self) -> Experiment:
        from .classify import TASK, labels_problem

        if self.task == TASK and (problem := labels_problem(self.labels or [])) is not None:
            raise ValueError(f"labels: {problem}")
        for name in ("labels", "system"):
            if self.task != TASK and getattr(self, name) is not None:
                raise ValueError(f"{name}: only applies to task classify")
        for index, entry in enumerate(self.models):
            if entry.provider == "sklearn" and self.task != TASK:
                raise ValueError(f"models[{index}].provider: sklearn needs task: classify")
        return self


@dataclass(frozen=True)
class LoadedExperiment:
    """A validated experiment with its prompts resolved, and the file it came from."""

    config: Experiment
    prompts: tuple[PromptCase, ...]
    path: Path
    text: str
    # each sklearn entry's training file (its resolved path) -> the sha256 of its bytes
    training_sha256: dict[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def common_system_prompt(self) -> str | None:
        """The system prompt every case shares, which a registered model keeps; else None."""
        systems = {p.system for p in self.prompts}
        return systems.pop() if len(systems) == 1 else None


def load_experiment(
    path: str | Path, stored_prompts: tuple[PromptCase, ...] | None = None
) -> LoadedExperiment:
    """Read and validate an experiment file. Raises ConfigError naming the file and field.

    `stored_prompts`: the prompt set as a run stored it (its copy of the file, scored again from
    the run alone), used instead of reading the file's `prompts:`; no training file is read then
    either, since that run trained its model already (its digest is on the variant run)."""
    path = Path(path)
    try:
        text = read_text(path, str(path))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from e
    raw = load_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a YAML mapping with experiment, prompts and models")
    try:
        config = Experiment.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{path}: {describe_validation_error(e)}") from e
    if stored_prompts is not None:
        prompts = stored_prompts
    elif isinstance(config.prompts, str):
        from .prompts_file import load_prompts_file

        prompts = load_prompts_file(
            path.parent / config.prompts, shown_as=config.prompts, field=f"{path}: prompts"
        )
    else:
        prompts = tuple(config.prompts)
    from .classify import prepare

    config, prompts = prepare(config, prompts, path, train=stored_prompts is None)
    check_plan_size(config, len(prompts), str(path))
    digests = {} if stored_prompts is not None else _training_digests(config)
    return LoadedExperiment(config, prompts, path, text, digests)


def _training_digests(config: Experiment) -> dict[str, str]:
    """The sha256 of each training file (read and checked a moment ago by classify.prepare)."""
    return {
        entry.train: hashlib.sha256(Path(entry.train).read_bytes()).hexdigest()
        for entry in config.models
        if entry.train is not None
    }


def check_plan_size(config: Experiment, n_prompts: int, shown: str) -> None:
    """Refuse a plan of more than MAX_CALLS calls, before anything is built for it."""
    n_sizes = len(config.prompt_sizes or ()) or 1
    n_variants = len(config.models) * math.prod(
        len(values) for values in (config.sweep.axes() if config.sweep else {}).values()
    )
    total = n_variants * (n_prompts * n_sizes * config.repeats + config.warmup)
    if total <= MAX_CALLS:
        return
    parts = [_count(n_prompts, "prompt")]
    if config.prompt_sizes:
        parts.append(_count(n_sizes, "prompt size"))
    parts.append(_count(config.repeats, "repeat"))
    factors = " x ".join(parts)
    if config.warmup:
        factors = f"{factors} + {config.warmup} warmup"
    raise ConfigError(
        f"{shown}: the plan has {total:,} calls ({factors} x {_count(n_variants, 'variant')}); "
        f"the limit is {MAX_CALLS:,}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
