"""The experiment file: its schema (scorer specs included), the loading of experiment, prompt
and training files, the wording of validation errors, and what it leaves to the environment.

The lowest layer above the plain types: it imports no scorer code, engine, tracking or report.
Its modules, bottom up: fields -> models -> (json_schemas, validation_errors) -> scorers ->
labels -> schema -> prompts_file -> training -> loading; environment beside models.
"""

from .fields import MAX_CALLS, MAX_CONCURRENCY, MAX_REPEATS, MAX_TIMEOUT_S
from .loading import LoadedExperiment, MlflowSources, check_plan_size, load_experiment, prepare
from .models import DEFAULT_LOCAL_MODEL, SWEEPABLE, ModelEntry, TokenPrice
from .schema import DatasetPrompts, Experiment, PromotePolicy, PromptCase, Sweep

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "MAX_CALLS",
    "MAX_CONCURRENCY",
    "MAX_REPEATS",
    "MAX_TIMEOUT_S",
    "SWEEPABLE",
    "DatasetPrompts",
    "Experiment",
    "LoadedExperiment",
    "MlflowSources",
    "ModelEntry",
    "PromotePolicy",
    "PromptCase",
    "Sweep",
    "TokenPrice",
    "check_plan_size",
    "load_experiment",
    "prepare",
]
