"""What a `scorers:` entry or a prompt's `assert:` entry may say: one pydantic model for every
type, checked per type, so that a mistake gets one line naming the field.

Adding a check type: its name in DETERMINISTIC, the fields it reads in _FIELDS (a check of them
in _CHECKS; in TAKES_REFERENCE if its value may hold `{expected}`), then its function in
scoring/checks.py's CHECKS."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .json_schemas import SchemaProblem, check
from .models import Batch, ModelEntry
from .validation_errors import describe_validation_error

DETERMINISTIC = (
    "equals",
    "contains",
    "icontains",
    "contains-any",
    "contains-all",
    "regex",
    "not-empty",
    "is-json",
    "length",
    "latency",
    "cost",
    "rouge-l",
    "chrf",
    "label",  # task classify: the answer, mapped to one of `value` (the labels), is `expected`
)
SIMILARITY = ("rouge-l", "chrf")  # scores in [0, 1] against the prompt's `expected`
TYPES = (*DETERMINISTIC, "judge", "mlflow")
# `type: mlflow`: MLflow's built-in judges that read only the call's inputs, its answer and the
# prompt's `expected` (tracking/mlflow_judges.py calls them); the first two need `expected`
MLFLOW_JUDGES = (
    "Correctness",
    "Equivalence",
    "Guidelines",
    "RelevanceToQuery",
    "Safety",
    "Completeness",
    "Fluency",
)
MLFLOW_NEEDS_EXPECTED = ("Correctness", "Equivalence")
MLFLOW_JUDGE_PROVIDERS = ("openai", "ollama")  # MLflow calls them through its OpenAI adapter
# the fields each type reads; any other field set on it is a mistake worth one line
_FIELDS: dict[str, tuple[str, ...]] = {
    "equals": ("value", "case_sensitive"),
    "contains": ("value",),
    "icontains": ("value",),
    "contains-any": ("value", "case_sensitive"),
    "contains-all": ("value", "case_sensitive"),
    "regex": ("value",),
    "not-empty": (),
    "is-json": ("json_schema",),
    "length": ("min", "max"),
    "latency": ("threshold",),
    "cost": ("threshold",),
    "rouge-l": ("threshold",),
    "chrf": ("threshold",),
    "label": ("value",),
    "mlflow": ("judge", "model", "guidelines"),
}
# the types whose value may hold `{expected}`, the prompt's reference (scoring/specs.py)
TAKES_REFERENCE = ("equals", "contains", "icontains", "contains-any", "contains-all", "regex")
_COMMON = ("type", "name", "negate")
_JUDGE_MODEL_FIELDS = (
    "provider",
    "model",
    "base_url",
    "api_key_env",
    "temperature",
    "max_tokens",
    "timeout_s",
    "max_retries",
    "price_per_mtok",
    "price_as",
    "batch",
)
# in a check's value, the prompt's `expected`: `{type: icontains, value: "{expected}"}`
REFERENCE = "{expected}"
_NAME = re.compile(r"^[\w.-]{1,100}$")
DEFAULT_SIMILARITY_THRESHOLD = 0.5
DEFAULT_JUDGE_THRESHOLD = 0.5


class ScorerSpec(BaseModel):
    """One check. `not: true` negates it; `name` defaults to its type (made unique)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True
    )

    type: str
    name: str | None = None
    negate: bool = Field(default=False, alias="not")
    value: str | list[str] | None = None
    case_sensitive: bool = False
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    threshold: float | None = None
    # judge only: the rubric and a model entry like any other
    rubric: str | None = None
    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    timeout_s: float | None = None
    max_retries: int | None = None
    price_per_mtok: dict[str, float] | None = None
    price_as: str | None = None
    batch: Batch = None
    # mlflow only: the built-in judge's class name and, for Guidelines, its rules
    judge: str | None = None
    guidelines: str | list[str] | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, kind: str) -> str:
        if kind not in TYPES:
            raise ValueError(f"must be one of {', '.join(TYPES)} (got {kind[:40]!r})")
        return kind

    @field_validator("name")
    @classmethod
    def _metric_name(cls, name: str | None) -> str | None:
        if name is not None and not _NAME.match(name):
            raise ValueError("use letters, digits, '_', '.' or '-' (it becomes a metric name)")
        return name

    @model_validator(mode="after")
    def _check_type_fields(self) -> ScorerSpec:
        allowed = set(_COMMON) | set(
            _FIELDS.get(self.type, (*_JUDGE_MODEL_FIELDS, "rubric", "threshold"))
        )
        for field in self.model_fields_set - allowed:
            shown = type(self).model_fields[field].alias or field
            raise ValueError(f"{shown}: does not apply to type {self.type}")
        _CHECKS.get(self.type, _no_check)(self)
        return self

    @property
    def label(self) -> str:
        if self.name is None and self.type == "mlflow" and self.judge:
            return re.sub(r"(?<!^)(?=[A-Z])", "_", self.judge).lower()  # MLflow's own name
        return self.name or self.type

    def judge_entry(self) -> ModelEntry:
        """The judge's model entry (streaming off), validated as any `models:` entry."""
        fields = {k: getattr(self, k) for k in _JUDGE_MODEL_FIELDS if k in self.model_fields_set}
        return ModelEntry.model_validate({**fields, "stream": False})


def _no_check(spec: ScorerSpec) -> None:
    return None


def _needs_text(spec: ScorerSpec) -> None:
    if not isinstance(spec.value, str) or not spec.value:
        raise ValueError(f"value: type {spec.type} needs a non-empty string")


def _needs_list(spec: ScorerSpec) -> None:
    if not isinstance(spec.value, list) or not spec.value or not all(spec.value):
        raise ValueError(f"value: type {spec.type} needs a non-empty list of strings")


def _valid_regex(spec: ScorerSpec) -> None:
    import regex  # the engine the check matches with (scoring/checks.py); slow to import

    _needs_text(spec)
    try:  # `{expected}` stands for an escaped literal, any text will do for the check
        regex.compile(str(spec.value).replace(REFERENCE, "x"))
    except regex.error as e:
        raise ValueError(f"value: not a valid regular expression: {e}") from None


def _valid_schema(spec: ScorerSpec) -> None:
    if spec.json_schema is None:
        return
    try:
        check(spec.json_schema)
    except SchemaProblem as e:
        raise ValueError(f"schema: {e}") from None


def _min_or_max(spec: ScorerSpec) -> None:
    if spec.min is None and spec.max is None:
        raise ValueError("min: type length needs min, max or both (characters)")
    if spec.min is not None and spec.max is not None and spec.min > spec.max:
        raise ValueError("min: must not be more than max")


def _limit(spec: ScorerSpec) -> None:
    if spec.threshold is None or spec.threshold < 0:
        unit = "seconds" if spec.type == "latency" else "USD"
        raise ValueError(f"threshold: type {spec.type} needs a limit per call, in {unit}, >= 0")


def _unit_threshold(spec: ScorerSpec) -> None:
    if spec.threshold is not None and not 0 <= spec.threshold <= 1:
        raise ValueError("threshold: must be between 0 and 1")


def _judge(spec: ScorerSpec) -> None:
    _unit_threshold(spec)
    if not spec.rubric or not spec.rubric.strip():
        raise ValueError("rubric: a judge needs a rubric (what a good answer is)")
    if spec.provider is None or spec.model is None:
        raise ValueError("model: a judge needs its own provider and model (there is no default)")
    try:
        spec.judge_entry()
    except ValidationError as e:
        raise ValueError(describe_validation_error(e)) from None


def _mlflow_judge(spec: ScorerSpec) -> None:
    if spec.judge not in MLFLOW_JUDGES:
        got = f" (got {str(spec.judge)[:40]!r})" if spec.judge is not None else ""
        raise ValueError(f"judge: must be one of {', '.join(MLFLOW_JUDGES)}{got}")
    if not spec.model:
        raise ValueError("model: the judge's model, a models: entry's name or model")
    if (spec.judge == "Guidelines") != bool(spec.guidelines):
        if spec.guidelines:
            raise ValueError(f"guidelines: does not apply to judge {spec.judge}")
        raise ValueError("guidelines: the Guidelines judge needs the rules to judge by")


def mlflow_judge_entry(spec: ScorerSpec, models: list[ModelEntry]) -> ModelEntry:
    """The `models:` entry a `type: mlflow` check names by its `name`, `model` or
    `provider/model`; ValueError when none or several do."""
    found = [
        e for e in models if spec.model in (e.name, e.model_name, f"{e.provider}/{e.model_name}")
    ]
    if len(found) != 1:
        how = "no" if not found else "more than one"
        known = ", ".join(dict.fromkeys(e.name or e.model_name for e in models))
        raise ValueError(f"model: {how} models: entry named {spec.model!r} (the entries: {known})")
    if found[0].provider not in MLFLOW_JUDGE_PROVIDERS:
        raise ValueError(
            f"model: {spec.model!r} is {found[0].provider}: MLflow's judges are called here "
            "through an OpenAI-compatible endpoint, name an openai or ollama entry"
        )
    return found[0]


def mlflow_judges_problem(scorers: list[ScorerSpec] | None, prompts: Sequence[Any]) -> str | None:
    """What stops the file's MLflow judges from judging its prompts, in one line, or None."""
    for prompt in prompts:
        for k, spec in enumerate(prompt.checks):
            if spec.type == "mlflow":
                return f"prompts[{prompt.id}].assert[{k}]: type mlflow belongs in scorers:"
    for index, spec in enumerate(scorers or ()):
        if spec.type == "mlflow" and spec.judge in MLFLOW_NEEDS_EXPECTED:
            missing = [p.id for p in prompts if p.expected is None]
            if missing:
                return (
                    f"scorers[{index}].judge: {spec.judge} needs each prompt's expected answer, "
                    f"{len(missing)} have none: {', '.join(missing[:3])}"
                )
    return None


_CHECKS = {
    "equals": _needs_text,
    "contains": _needs_text,
    "icontains": _needs_text,
    "contains-any": _needs_list,
    "contains-all": _needs_list,
    "regex": _valid_regex,
    "is-json": _valid_schema,
    "length": _min_or_max,
    "latency": _limit,
    "cost": _limit,
    "rouge-l": _unit_threshold,
    "chrf": _unit_threshold,
    "label": _needs_list,
    "judge": _judge,
    "mlflow": _mlflow_judge,
}
