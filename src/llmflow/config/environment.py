"""What an experiment file leaves to the environment: where each provider is reached, with
which key, and where the response cache lives. The one place that reads those variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingCredentials
from ..providers.spec import provider_spec
from .models import ModelEntry


@dataclass(frozen=True)
class Connection:
    """Where and how to reach a provider. `api_key` is a secret: never log it."""

    base_url: str | None
    api_key: str | None

    def __repr__(self) -> str:
        return f"Connection(base_url={self.base_url!r}, api_key={'***' if self.api_key else None})"


@dataclass(frozen=True)
class Endpoint:
    """Where an entry's calls go: the provider, its base URL and the NAME of its key variable
    (never the key). Variants at one endpoint share its max_concurrency and its client."""

    provider: str
    base_url: str | None
    key_env: tuple[str, ...]


def endpoint_of(entry: ModelEntry) -> Endpoint:
    spec = provider_spec(entry.provider)
    key_env = (entry.api_key_env,) if entry.api_key_env else spec.key_env
    return Endpoint(entry.provider, _base_url(entry), key_env)


def _base_url(entry: ModelEntry) -> str | None:
    spec = provider_spec(entry.provider)
    if not spec.remote:
        return None
    base_url = entry.base_url
    if base_url is None and spec.base_url_env is not None:
        base_url = os.environ.get(spec.base_url_env) or None
    return base_url or spec.default_base_url


def resolve_connection(entry: ModelEntry, config_name: str = "the experiment file") -> Connection:
    """Base URL and API key for an entry, from the entry, the environment and its provider spec."""
    spec = provider_spec(entry.provider)
    if not spec.remote:
        return Connection(None, None)
    base_url = _base_url(entry)
    names = [entry.api_key_env] if entry.api_key_env else list(spec.key_env)
    key = _first_env(names)
    if key is not None or not spec.key_required:
        return Connection(base_url, key)
    if spec.self_hosted_key is not None and entry.base_url is not None and not entry.api_key_env:
        # a self-hosted server usually needs no key
        return Connection(base_url, spec.self_hosted_key)
    raise MissingCredentials(
        f"{' or '.join(names)} is not set: export it, "
        f"or remove the {spec.name} model {entry.model_name} from {config_name}"
    )


def _first_env(names: list[str]) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def resolve_cache_path(
    setting: bool | str, experiment_dir: Path, force: bool = False
) -> Path | None:
    """The response cache to use, or None for none.

    `cache: path` -> that file (relative to the experiment file); `cache: true`, or `force`
    (`llmflow run --cache`) with no path -> responses.sqlite in the user cache dir
    ($LLMFLOW_CACHE_DIR, else $XDG_CACHE_HOME/llmflow, else ~/.cache/llmflow);
    `cache: false` or no `cache:` -> None.
    """
    if isinstance(setting, str):
        return experiment_dir / setting
    if setting or force:
        return resolve_cache_dir() / "responses.sqlite"
    return None


def resolve_cache_dir() -> Path:
    """$LLMFLOW_CACHE_DIR, else $XDG_CACHE_HOME/llmflow, else ~/.cache/llmflow."""
    base = os.environ.get("LLMFLOW_CACHE_DIR")
    if base is None:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = str(Path(xdg) / "llmflow")
    return Path(base)
