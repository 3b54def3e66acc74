"""llmflow: run the same prompts against several LLM providers, track every call in MLflow,
compare them side by side, and ship the winner through the MLflow Model Registry.

The names below are imported on first use (PEP 562), so `import llmflow` and `llmflow --help`
do not pay for pydantic and the config models.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "CallRecord": "types",
    "Completion": "types",
    "ConfigError": "errors",
    "Experiment": "config",
    "GenerationSettings": "types",
    "LlmflowError": "errors",
    "Message": "types",
    "ModelEntry": "config",
    "PromptCase": "config",
    "ProviderError": "errors",
    "RunRequest": "experiment",
    "RunResult": "experiment",
    "Usage": "types",
    "load_experiment": "config",
    "run_experiment": "experiment",
}

__all__ = [  # a literal, for linters and editors; a test keeps it equal to _EXPORTS
    "CallRecord",
    "Completion",
    "ConfigError",
    "Experiment",
    "GenerationSettings",
    "LlmflowError",
    "Message",
    "ModelEntry",
    "PromptCase",
    "ProviderError",
    "RunRequest",
    "RunResult",
    "Usage",
    "__version__",
    "load_experiment",
    "run_experiment",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    else:
        raise AttributeError(f"module 'llmflow' has no attribute {name!r}")
    globals()[name] = value
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llmflow")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0+unknown"


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and editors; at run time, __getattr__ imports them
    from .config import Experiment, ModelEntry, PromptCase, load_experiment
    from .errors import ConfigError, LlmflowError, ProviderError
    from .experiment import RunRequest, RunResult, run_experiment
    from .types import CallRecord, Completion, GenerationSettings, Message, Usage
