"""Loading an experiment file: YAML -> the validated schema, its prompts (inline or from a
file) and, for task classify, the labels checked and each training file read."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from ..errors import ConfigError
from ..providers.spec import provider_spec
from ..user_files import clip, load_yaml, read_text
from .fields import MAX_CALLS
from .labels import TASK, canonical, instruction
from .models import ModelEntry
from .prompts_file import load_prompts_file
from .schema import DatasetPrompts, Experiment, PromptCase, known_fields
from .scorers import mlflow_judges_problem
from .training import load_training
from .validation_errors import describe_validation_error


@dataclass(frozen=True)
class LoadedExperiment:
    """A validated experiment with its prompts resolved, and the file it came from."""

    config: Experiment
    prompts: tuple[PromptCase, ...]
    path: Path
    text: str
    # each sklearn entry's training file (its resolved path) -> the sha256 of its bytes
    training_sha256: dict[str, str] = field(default_factory=dict)
    # what was read from MLflow: "prompts" -> the dataset's id, "system" -> "prompts:/support/3"
    # (the version its alias named then)
    mlflow_sources: dict[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def common_system_prompt(self) -> str | None:
        """The system prompt every case shares, which a registered model keeps; else None."""
        systems = {p.system for p in self.prompts}
        return systems.pop() if len(systems) == 1 else None


REGISTRY_PREFIX = "prompts:/"  # a system prompt kept in the MLflow Prompt Registry


class MlflowSources(Protocol):
    """What an experiment file may read from MLflow (tracking/mlflow_sources.py implements it
    for a tracking URI)."""

    def dataset_prompts(
        self, ref: DatasetPrompts, field: str
    ) -> tuple[tuple[PromptCase, ...], str]:
        """(the rows as prompts, the dataset's id)."""
        ...

    def registry_prompt(self, uri: str, field: str) -> tuple[str, str]:
        """(the text, the URI of the version read: `prompts:/support/3`)."""
        ...


def load_experiment(
    path: str | Path,
    stored_prompts: tuple[PromptCase, ...] | None = None,
    sources: MlflowSources | None = None,
) -> LoadedExperiment:
    """Read and validate an experiment file. Raises ConfigError naming the file and field.

    `stored_prompts`: the prompt set as a run stored it (its copy of the file, scored again from
    the run alone), used instead of reading the file's `prompts:`; no training file is read then
    either, since that run trained its model already (its digest is on the variant run).
    `sources`: where `prompts: {mlflow_dataset: ...}` and `system: prompts:/...` are read."""
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
        problem = describe_validation_error(e, known_fields=known_fields)
        raise ConfigError(f"{path}: {problem}") from e
    read_from: dict[str, str] = {}
    if stored_prompts is not None:
        prompts = stored_prompts  # the system prompt read then is in them
    else:
        prompts, read_from = _read_prompts(config, path, sources)
        config, system_from = _registry_system(config, path, sources)
        read_from.update(system_from)
        if config.system is not None:
            prompts = tuple(
                p if p.system is not None else p.with_(system=config.system) for p in prompts
            )
    config, prompts = prepare(config, prompts, path, train=stored_prompts is None)
    if (problem := mlflow_judges_problem(config.scorers, prompts)) is not None:
        raise ConfigError(f"{path}: {problem}")
    check_plan_size(config, len(prompts), str(path))
    digests = {} if stored_prompts is not None else _training_digests(config)
    return LoadedExperiment(config, prompts, path, text, digests, read_from)


def _read_prompts(
    config: Experiment, path: Path, sources: MlflowSources | None
) -> tuple[tuple[PromptCase, ...], dict[str, str]]:
    """The prompts, and {"prompts": the dataset's id} for an MLflow dataset."""
    if isinstance(config.prompts, DatasetPrompts):
        reader = _mlflow(sources, path, "prompts")
        cases, dataset_id = reader.dataset_prompts(config.prompts, f"{path}: prompts")
        return cases, {"prompts": dataset_id}
    if isinstance(config.prompts, str):
        shown, field = config.prompts, f"{path}: prompts"
        return load_prompts_file(path.parent / config.prompts, shown_as=shown, field=field), {}
    return tuple(config.prompts), {}


def _registry_system(
    config: Experiment, path: Path, sources: MlflowSources | None
) -> tuple[Experiment, dict[str, str]]:
    if config.system is None or not config.system.startswith(REGISTRY_PREFIX):
        return config, {}
    reader = _mlflow(sources, path, "system")
    text, version_uri = reader.registry_prompt(config.system, f"{path}: system")
    return config.model_copy(update={"system": text}), {"system": version_uri}


def _mlflow(sources: MlflowSources | None, path: Path, field: str) -> MlflowSources:
    if sources is None:
        raise ConfigError(f"{path}: {field}: reads MLflow, which this command does not open")
    return sources


def _training_digests(config: Experiment) -> dict[str, str]:
    """The sha256 of each training file (read and checked a moment ago by prepare)."""
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


def prepare(
    config: Experiment, prompts: tuple[PromptCase, ...], path: Path, train: bool = True
) -> tuple[Experiment, tuple[PromptCase, ...]]:
    """For task classify: every prompt's `expected` is one of `labels` (spelt as there), prompts
    without a `system` get the label instruction (or the file's `system:`), each sklearn
    entry's training file is read and checked now (unless `train` is False: a run's stored
    copy, whose model is trained already), its path made absolute. ConfigError (one line
    naming the file and field) otherwise."""
    if config.task != TASK:
        return config, prompts
    labels = list(config.labels or ())
    shown = config.prompts if isinstance(config.prompts, str) else path.name
    system = config.system or instruction(labels)
    checked = []
    for index, prompt in enumerate(prompts):
        where = f"{clip(shown)}: [{index}].expected"
        update = {"expected": canonical(prompt.expected, labels, where)}
        if prompt.system is None:
            update["system"] = system
        checked.append(prompt.with_(**update))
    if not train:
        return config, tuple(checked)
    models = [_with_training(entry, i, labels, path) for i, entry in enumerate(config.models)]
    return config.model_copy(update={"models": models}), tuple(checked)


def _with_training(entry: ModelEntry, index: int, labels: list[str], path: Path) -> ModelEntry:
    spec = provider_spec(entry.provider)
    options: dict[str, Any] = {name: getattr(entry, name) for name in spec.own_options}
    if (problem := spec.entry_problem(entry.model, options)) is not None:
        raise ConfigError(f"{path.name}: models[{index}].{problem}")
    if entry.train is None:
        return entry
    train = path.parent / entry.train
    load_training(train, entry.train, labels, f"{path.name}: models[{index}].train")
    return entry.model_copy(update={"train": str(train.resolve())})
