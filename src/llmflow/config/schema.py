"""The experiment file's schema: the top-level fields, prompts, the sweep and promotion rules
(a `models:` entry is in models.py, a check in scorers.py; loading.py reads a file into them)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from ..errors import ConfigError
from ..providers.spec import provider_spec
from ..registry.gates import parse
from ..user_files import shorten
from .fields import (
    MAX_CONCURRENCY,
    MAX_EXPERIMENT_NAME,
    MAX_PROMPT_SIZE,
    MAX_REPEATS,
    Strict,
    at_least,
    between,
)
from .labels import TASK, labels_problem
from .models import SWEEPABLE, ModelEntry
from .scorers import ScorerSpec, mlflow_judge_entry
from .validation_errors import describe_validation_error


@dataclass(
    frozen=True,
    slots=True,
    config=ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False),
)
class PromptCase:
    """One prompt of the set. A slotted dataclass, not a model: every prompt of a file is held
    for the whole run, and a model's instance (with its own __dict__ and fields-set) costs
    three times the memory: 60 MB more for 100,000 prompts."""

    # a call's trace is named "<id>#<repeat>", and MLflow takes trace names of up to 4,096
    id: str = Field(min_length=1, max_length=1000)
    user: str = Field(min_length=1)
    system: str | None = None
    expected: str | None = None  # the reference answer similarity scorers compare with
    checks: tuple[ScorerSpec, ...] = Field(default=(), alias="assert")  # this prompt's own
    # what else a dataset row holds (its record id, keys llmflow does not read): kept, not used
    metadata: dict[str, Any] | None = None

    @classmethod
    def of(cls, row: Any) -> PromptCase:
        """A prompt from a row as written (`assert:` for its checks); ValidationError if not."""
        return _PROMPT.validate_python(row)

    def row(self, exclude: set[str] | None = None) -> dict[str, Any]:
        """The prompt as a file's row would write it: JSON values, defaults left out."""
        return _PROMPT.dump_python(
            self, mode="json", by_alias=True, exclude_defaults=True, exclude=exclude
        )

    def with_(self, **update: Any) -> PromptCase:
        return replace(self, **update)


_PROMPT: TypeAdapter[PromptCase] = TypeAdapter(PromptCase)
PROMPT_FIELDS = [f.alias or name for name, f in PromptCase.__pydantic_fields__.items()]


class DatasetPrompts(Strict):
    """`prompts: {mlflow_dataset: NAME}`: the rows of an MLflow evaluation dataset."""

    mlflow_dataset: str = Field(min_length=1)
    version: Annotated[int | None, at_least(1)] = None  # kept by Databricks only
    digest: str | None = Field(default=None, min_length=1)  # refuse the dataset if it changed


class PromotePolicy(Strict):
    """`promote:` rules: gates for every promotion of models registered from this file and,
    with best_by, which registered variant of a run goes to staging (the best value wins: the
    highest pass_rate, the lowest latency or cost)."""

    require: list[str] = Field(default_factory=list)
    best_by: str | None = None

    @field_validator("require")
    @classmethod
    def _parse_gates(cls, rules: list[str]) -> list[str]:
        for rule in rules:
            try:
                parse(rule)
            except ConfigError as e:
                raise ValueError(str(e)) from None
        return rules


class Sweep(Strict):
    """Lists of settings; every model entry runs once per combination (one variant each)."""

    temperature: list[Annotated[float, between(0, 2)]] | None = Field(default=None, min_length=1)
    max_tokens: list[Annotated[int, at_least(1)]] | None = Field(default=None, min_length=1)
    top_p: list[Annotated[float, between(0, 1)]] | None = Field(default=None, min_length=1)
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


class Experiment(Strict):
    experiment: str
    task: str = Field(default="chat", min_length=1)
    prompts: list[PromptCase] | str | DatasetPrompts
    repeats: Annotated[int, between(1, MAX_REPEATS)] = 1
    concurrency: Annotated[int, between(1, MAX_CONCURRENCY)] = 4
    models: list[ModelEntry] = Field(min_length=1)
    promote: PromotePolicy | None = None
    # off unless asked for: a cached answer silently stands in for a fresh call.
    # false, true (the user cache dir) or a path to a sqlite file
    cache: bool | str = False
    max_cost_usd: Annotated[float | None, at_least(0)] = None
    allow_unpriced: bool = False  # run models with no known price under max_cost_usd
    sweep: Sweep | None = None
    warmup: Annotated[int, between(0, 100)] = 0  # calls per variant left out of statistics
    # pad prompts to ~N tokens
    prompt_sizes: list[Annotated[int, between(1, MAX_PROMPT_SIZE)]] | None = None
    report: bool = True  # write report.md/html, plots and results into the parent run
    scorers: list[ScorerSpec] | None = None  # checks applied to every prompt's answers
    # task classify: the labels (and its default system message: an instruction listing them)
    labels: list[Annotated[str, Field(min_length=1)]] | None = None
    # the system message of prompts without one; `prompts:/name@alias` reads the Prompt Registry
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

    @field_validator("prompts", mode="before")
    @classmethod
    def _dataset(cls, prompts: Any) -> Any:
        """A mapping names an MLflow dataset: said so, rather than "should be a valid list"."""
        if not isinstance(prompts, dict):
            return prompts
        if "mlflow_dataset" not in prompts:
            raise ValueError("a mapping names an MLflow dataset: {mlflow_dataset: NAME}")
        try:
            return DatasetPrompts.model_validate(prompts)
        except ValidationError as e:
            raise ValueError(describe_validation_error(e)) from None

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
        if self.task == TASK and (problem := labels_problem(self.labels or [])) is not None:
            raise ValueError(f"labels: {problem}")
        if self.task != TASK and self.labels is not None:
            raise ValueError("labels: only applies to task classify")
        for index, entry in enumerate(self.models):
            if entry.provider == "sklearn" and self.task != TASK:
                raise ValueError(f"models[{index}].provider: sklearn needs task: classify")
        return self

    @model_validator(mode="after")
    def _check_mlflow_judge_models(self) -> Experiment:
        for index, spec in enumerate(self.scorers or ()):
            if spec.type == "mlflow":
                try:
                    mlflow_judge_entry(spec, self.models)
                except ValueError as e:
                    raise ValueError(f"scorers[{index}].{e}") from None
        return self


def known_fields(loc: tuple[Any, ...]) -> list[str]:
    """The fields the model at `loc` (a pydantic error's location in an experiment file, or in
    a prompts file's row) has, for a typo's "did you mean"."""
    if loc[:1] == ("scorers",) or "assert" in loc[:-1]:
        return [f.alias or name for name, f in ScorerSpec.model_fields.items()]
    if loc and loc[0] == "models":
        return list(ModelEntry.model_fields)
    if loc and loc[0] == "prompts":
        return PROMPT_FIELDS
    if loc and loc[0] == "sweep":
        return list(Sweep.model_fields)
    return list(Experiment.model_fields)
