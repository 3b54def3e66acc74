"""Experiment -> variants x cases x repeats. Pure: no I/O, no providers, no MLflow."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from .config import LoadedExperiment, ModelEntry, PromptCase
from .types import GenerationSettings, Message


@dataclass(frozen=True)
class Variant:
    """One configuration under test: a model entry with its settings. One MLflow child run."""

    id: str
    entry: ModelEntry
    settings: GenerationSettings

    @property
    def provider(self) -> str:
        return self.entry.provider

    @property
    def model(self) -> str:
        return self.entry.model_name


@dataclass(frozen=True)
class Case:
    id: str
    messages: tuple[Message, ...]


@dataclass(frozen=True)
class Call:
    variant: Variant
    case: Case
    repeat: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.variant.id, self.case.id, self.repeat)


@dataclass(frozen=True)
class Plan:
    variants: tuple[Variant, ...]
    cases: tuple[Case, ...]
    repeats: int

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
    entries = experiment.config.models
    ids = _variant_ids(entries)
    variants = tuple(
        Variant(id=vid, entry=entry, settings=settings_of(entry))
        for vid, entry in zip(ids, entries, strict=True)
    )
    cases = tuple(case_of(p) for p in experiment.prompts)
    return Plan(variants=variants, cases=cases, repeats=experiment.config.repeats)


def settings_of(entry: ModelEntry) -> GenerationSettings:
    return GenerationSettings(
        temperature=entry.temperature,
        max_tokens=entry.max_tokens,
        top_p=entry.top_p,
        seed=entry.seed,
        stop=tuple(entry.stop or ()),
        stream=entry.stream,
    )


def case_of(prompt: PromptCase) -> Case:
    messages = []
    if prompt.system:
        messages.append(Message("system", prompt.system))
    messages.append(Message("user", prompt.user))
    return Case(id=prompt.id, messages=tuple(messages))


def _variant_ids(entries: list[ModelEntry]) -> list[str]:
    """Readable unique ids: the entry's name, else its model; settings only to disambiguate."""
    base = [e.name or e.model_name for e in entries]
    counts = Counter(base)
    ids = []
    for label, entry in zip(base, entries, strict=True):
        if counts[label] > 1 and entry.name is None:
            label = f"{entry.provider}:{label}"
            if entry.temperature is not None:
                label += f"@t{entry.temperature:g}"
        ids.append(label)
    seen: Counter[str] = Counter()
    unique = []
    for label in ids:
        seen[label] += 1
        unique.append(label if ids.count(label) == 1 else f"{label}#{seen[label]}")
    return unique
