"""llmflow: run the same prompts against several LLM providers, track every call in MLflow,
compare them side by side, and ship the winner through the MLflow Model Registry."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llmflow")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from .config import Experiment, ModelEntry, PromptCase, load_experiment  # noqa: E402
from .errors import ConfigError, LlmflowError, ProviderError  # noqa: E402
from .types import CallRecord, Completion, GenerationSettings, Message, Usage  # noqa: E402

__all__ = [
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
    "Usage",
    "__version__",
    "load_experiment",
]
