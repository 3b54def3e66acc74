"""Providers: one small module per vendor, all speaking the `Provider` protocol.

A provider only talks to its vendor: no retries, no timing, no caching, no MLflow. It turns
messages and settings into a stream of `Delta`s and translates the SDK's errors into
`llmflow.errors` once, at this boundary. Adding a provider is one adapter module plus its
`ProviderSpec` in spec.py (one declaration, one registry line).
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError
from .base import Provider, collect
from .spec import ProviderSpec, provider_names, provider_spec, provider_specs, register_provider

__all__ = [
    "TRADITIONAL",
    "Provider",
    "ProviderSpec",
    "collect",
    "create_provider",
    "provider_names",
    "provider_spec",
    "provider_specs",
    "register_provider",
]

TRADITIONAL = frozenset({"sklearn"})  # trained models, not LLMs: their calls have no tokens


def create_provider(name: str, **options: Any) -> Provider:
    """Build the provider registered under `name`; its SDK is imported only now."""
    spec = provider_spec(name)
    module_name, _, class_name = spec.adapter.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)(**options)
    except ModuleNotFoundError as e:
        missing = (e.name or "").split(".")[0]
        if spec.extra is None or missing not in spec.sdk_modules:
            raise
        raise ConfigError(
            f"provider {name} needs the package {missing}: pip install 'llmflow[{spec.extra}]'"
        ) from e
