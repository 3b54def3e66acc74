"""Experiment files: YAML -> validated pydantic models. The one place that reads env vars."""

from __future__ import annotations

import difflib
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
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

from .errors import ConfigError, MissingCredentials
from .providers.spec import (
    LOCAL_DEFAULT_MODEL,
    option_owners,
    provider_names,
    provider_options,
    provider_spec,
)
from .scoring.specs import ScorerSpec
from .user_files import clip, load_yaml, read_text, shorten

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

    @model_validator(mode="after")
    def _check_provider_fields(self) -> ModelEntry:
        spec = provider_spec(self.provider)
        if self.model is None and spec.default_model is None:
            raise ValueError(f"model: is required for provider {self.provider}")
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
        from .registry.gates import Gate

        for rule in rules:
            try:
                Gate.parse(rule)
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

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def common_system_prompt(self) -> str | None:
        """The system prompt every case shares, which a registered model keeps; else None."""
        systems = {p.system for p in self.prompts}
        return systems.pop() if len(systems) == 1 else None


def load_experiment(path: str | Path) -> LoadedExperiment:
    """Read and validate an experiment file. Raises ConfigError naming the file and field."""
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
    if isinstance(config.prompts, str):
        from .prompts_file import load_prompts_file

        prompts = load_prompts_file(path.parent / config.prompts, shown_as=config.prompts)
    else:
        prompts = tuple(config.prompts)
    from .classify import prepare

    config, prompts = prepare(config, prompts, path)
    check_plan_size(config, len(prompts), str(path))
    return LoadedExperiment(config=config, prompts=prompts, path=path, text=text)


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


def describe_validation_error(error: ValidationError, leading_dot: bool = False) -> str:
    """One line: the field's path and what is wrong with it (a value echoed is cut short)."""
    detail = error.errors()[0]
    loc = _format_loc(detail["loc"])
    message = _friendly_message(detail)
    # a model-level check names its field first ("model: is required"); fold it into the path
    field, sep, rest = message.partition(": ")
    if sep and field.isidentifier() and field in _known_fields(detail["loc"]):
        loc, message = (f"{loc}.{field}" if loc else field), rest
    message = clip(message)
    if not loc:
        return (" " if leading_dot else "") + message
    return f"{'.' if leading_dot else ''}{loc}: {message}"


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        # pydantic adds the union member's type name to the location; it means nothing to users
        if isinstance(part, str) and ("[" in part or part in ("str", "list", "function-after")):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = clip(str(part), 40)  # an unknown key is the user's text, of any length
            out += f".{part}" if out else part
    return out


def _friendly_message(detail: dict[str, Any]) -> str:
    kind = detail["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        field = str(detail["loc"][-1])[:100]
        known = _known_fields(detail["loc"])
        close = difflib.get_close_matches(field, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"unknown field{hint}"
    if kind == "finite_number":
        return f"must be a finite number (got {detail['input']})"
    message = str(detail["msg"])
    return message.removeprefix("Value error, ")


def _known_fields(loc: tuple[Any, ...]) -> list[str]:
    if loc[:1] == ("scorers",) or "assert" in loc[:-1]:
        return [f.alias or name for name, f in ScorerSpec.model_fields.items()]
    if loc and loc[0] == "models":
        return list(ModelEntry.model_fields)
    if loc and loc[0] == "prompts":
        return [f.alias or name for name, f in PromptCase.model_fields.items()]
    if loc and loc[0] == "sweep":
        return list(Sweep.model_fields)
    return list(Experiment.model_fields)


# --- environment -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """Where and how to reach a provider. `api_key` is a secret: never log it."""

    base_url: str | None
    api_key: str | None

    def __repr__(self) -> str:
        return f"Connection(base_url={self.base_url!r}, api_key={'***' if self.api_key else None})"


@dataclass(frozen=True)
class Endpoint:
    """Where an entry's calls go: the provider, its base URL and the NAME of its key variable
    (never the key). Variants at one endpoint share its max_concurrency and its client."""

    provider: str
    base_url: str | None
    key_env: tuple[str, ...]


def endpoint_of(entry: ModelEntry) -> Endpoint:
    spec = provider_spec(entry.provider)
    key_env = (entry.api_key_env,) if entry.api_key_env else spec.key_env
    return Endpoint(entry.provider, _base_url(entry), key_env)


def _base_url(entry: ModelEntry) -> str | None:
    spec = provider_spec(entry.provider)
    if not spec.remote:
        return None
    base_url = entry.base_url
    if base_url is None and spec.base_url_env is not None:
        base_url = os.environ.get(spec.base_url_env) or None
    return base_url or spec.default_base_url


def resolve_connection(entry: ModelEntry, config_name: str = "the experiment file") -> Connection:
    """Base URL and API key for an entry, from the entry, the environment and its provider spec."""
    spec = provider_spec(entry.provider)
    if not spec.remote:
        return Connection(None, None)
    base_url = _base_url(entry)
    names = [entry.api_key_env] if entry.api_key_env else list(spec.key_env)
    key = _first_env(names)
    if key is not None or not spec.key_required:
        return Connection(base_url, key)
    if spec.self_hosted_key is not None and entry.base_url is not None and not entry.api_key_env:
        # a self-hosted server usually needs no key
        return Connection(base_url, spec.self_hosted_key)
    raise MissingCredentials(
        f"{' or '.join(names)} is not set: export it, "
        f"or remove the {spec.name} model {entry.model_name} from {config_name}"
    )


def _first_env(names: list[str]) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def resolve_cache_path(
    setting: bool | str, experiment_dir: Path, force: bool = False
) -> Path | None:
    """The response cache to use, or None for none.

    `cache: path` -> that file (relative to the experiment file); `cache: true`, or `force`
    (`llmflow run --cache`) with no path -> responses.sqlite in the user cache dir
    ($LLMFLOW_CACHE_DIR, else $XDG_CACHE_HOME/llmflow, else ~/.cache/llmflow);
    `cache: false` or no `cache:` -> None.
    """
    if isinstance(setting, str):
        return experiment_dir / setting
    if setting or force:
        return resolve_cache_dir() / "responses.sqlite"
    return None


def resolve_cache_dir() -> Path:
    """$LLMFLOW_CACHE_DIR, else $XDG_CACHE_HOME/llmflow, else ~/.cache/llmflow."""
    base = os.environ.get("LLMFLOW_CACHE_DIR")
    if base is None:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = str(Path(xdg) / "llmflow")
    return Path(base)
