"""Experiment -> variants x cases x repeats. Pure: no I/O, no providers, no MLflow."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .config import LoadedExperiment, ModelEntry, PromptCase
from .errors import ConfigError
from .providers.spec import provider_spec
from .types import GenerationSettings, Message
from .user_files import shorten


@dataclass(frozen=True)
class Variant:
    """One configuration under test: a model entry with its settings. One MLflow child run."""

    id: str
    entry: ModelEntry
    settings: GenerationSettings
    swept: dict[str, Any] = field(default_factory=dict)  # this variant's values of the sweep
    entry_index: int | None = None  # its entry in the file's `models:`, before the sweep

    @property
    def where(self) -> str:
        """Where the file sets this variant, for an error: `models[1]`, whatever the sweep made
        of it; a variant made elsewhere (a judge) by its id."""
        return self.id if self.entry_index is None else f"models[{self.entry_index}]"

    @property
    def provider(self) -> str:
        return self.entry.provider

    @property
    def model(self) -> str:
        return self.entry.model_name


@dataclass(frozen=True, slots=True)  # slots: one per prompt, one per call, held all run
class Case:
    id: str
    messages: tuple[Message, ...]
    prompt_size: int | None = None  # the target size in tokens, with prompt_sizes


@dataclass(frozen=True, slots=True)
class Call:
    variant: Variant
    case: Case
    repeat: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.variant.id, self.case.id, self.repeat)

    @property
    def is_warmup(self) -> bool:
        return self.repeat < 0


@dataclass(frozen=True)
class Plan:
    variants: tuple[Variant, ...]
    cases: tuple[Case, ...]
    repeats: int
    warmup: int = 0

    def warmup_calls(self, variants: tuple[Variant, ...] | None = None) -> Iterator[Call]:
        """`warmup` calls per variant on the first case, numbered -1, -2, ...: they run before
        the measured calls and are left out of the statistics (cold starts reported apart)."""
        for variant in variants if variants is not None else self.variants:
            for k in range(self.warmup):
                yield Call(variant, self.cases[0], -(k + 1))

    def calls(self, variants: tuple[Variant, ...] | None = None) -> Iterator[Call]:
        """Every call, repeats outermost so that early results cover every case and variant."""
        for repeat in range(self.repeats):
            for case in self.cases:
                for variant in variants if variants is not None else self.variants:
                    yield Call(variant, case, repeat)

    @property
    def n_calls(self) -> int:
        return len(self.variants) * len(self.cases) * self.repeats


def build_plan(experiment: LoadedExperiment) -> Plan:
    config = experiment.config
    ids = _variant_ids(config.models)
    axes = config.sweep.axes() if config.sweep else {}
    variants = []
    for index, (base_id, entry) in enumerate(zip(ids, config.models, strict=True)):
        for values in itertools.product(*axes.values()):
            swept = dict(zip(axes, values, strict=True))
            swept_entry = entry.model_copy(update=swept)
            label = ",".join(f"{k}={format_value(v)}" for k, v in swept.items())
            variants.append(
                Variant(
                    id=f"{base_id}[{label}]" if label else base_id,
                    entry=swept_entry,
                    settings=settings_of(swept_entry),
                    swept=swept,
                    entry_index=index,
                )
            )
    _check_unique([v.id for v in variants], experiment.path.name)
    cases = tuple(
        case for prompt in experiment.prompts for case in sized_cases(prompt, config.prompt_sizes)
    )
    return Plan(variants=tuple(variants), cases=cases, repeats=config.repeats, warmup=config.warmup)


def _check_unique(ids: list[str], file: str) -> None:
    # two variants under one id would share one MLflow run, which would never be finished
    counts = Counter(ids)
    for variant_id, count in counts.items():
        if count > 1:
            raise ConfigError(
                f"{file}: models: two variants would both be called {shorten(variant_id)}: "
                "give them distinct name: fields"
            )


def format_value(value: Any) -> str:
    """A setting as a variant id shows it: short (0.7, not 0.7000000000000001 or 1.0), yet
    never the same text for two different values (0.5 and 0.5000001 stay apart)."""
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def settings_of(entry: ModelEntry) -> GenerationSettings:
    return GenerationSettings(
        temperature=entry.temperature,
        max_tokens=entry.max_tokens,
        top_p=entry.top_p,
        seed=entry.seed,
        stop=tuple(entry.stop or ()),
        stream=entry.stream and provider_spec(entry.provider).streams,
    )


def case_of(prompt: PromptCase) -> Case:
    messages = []
    if prompt.system:
        messages.append(Message("system", prompt.system))
    messages.append(Message("user", prompt.user))
    return Case(id=prompt.id, messages=tuple(messages))


FILLER = (
    "The following background is included only to make this prompt longer; it does not change "
    "the question. Experiment tracking records parameters, metrics and artifacts of each run. "
)


def sized_cases(prompt: PromptCase, sizes: list[int] | None) -> list[Case]:
    """One case per prompt, or with prompt_sizes one per size: the user message padded with
    neutral background to about that many tokens (4 characters a token)."""
    if not sizes:
        return [case_of(prompt)]
    cases = []
    for size in sizes:
        padding = max(0, size * 4 - len(prompt.user))
        filler = (FILLER * (padding // len(FILLER) + 1))[:padding]
        padded = prompt.with_(user=f"{filler}\n\n{prompt.user}" if filler else prompt.user)
        base = case_of(padded)
        cases.append(Case(id=f"{prompt.id}@{size}t", messages=base.messages, prompt_size=size))
    return cases


def _variant_ids(entries: list[ModelEntry]) -> list[str]:
    """Readable unique ids: the entry's name, else its model; settings only to disambiguate."""
    base = [e.name or e.model_name for e in entries]
    counts = Counter(base)
    ids = []
    for label, entry in zip(base, entries, strict=True):
        if counts[label] > 1 and entry.name is None:
            label = f"{entry.provider}:{label}"
            if entry.temperature is not None:
                label += f"@t{format_value(entry.temperature)}"
        ids.append(label)
    counts = Counter(ids)
    seen: Counter[str] = Counter()
    unique = []
    for label in ids:
        seen[label] += 1
        unique.append(label if counts[label] == 1 else f"{label}#{seen[label]}")
    return unique
