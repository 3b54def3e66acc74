"""What an experiment file reads from MLflow before its run: an evaluation dataset's rows as
its prompts (datasets.py) and a system prompt from the Prompt Registry. Used by `llmflow run`,
which imports MLflow in the calls' process only when its file names one of them."""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..user_files import shorten
from .datasets import read_dataset
from .uri import sqlite_file

if TYPE_CHECKING:
    from ..config import DatasetPrompts, PromptCase


class StoreSources:
    """config.MlflowSources for one tracking store."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri

    def dataset_prompts(
        self, ref: DatasetPrompts, field: str
    ) -> tuple[tuple[PromptCase, ...], str]:
        self._require_store(field)
        return read_dataset(self.tracking_uri, ref, field)

    def registry_prompt(self, uri: str, field: str) -> tuple[str, str]:
        self._require_store(field)
        return read_registry_prompt(self.tracking_uri, uri, field)

    def _require_store(self, field: str) -> None:
        """MLflow would make a sqlite store to look in: `llmflow plan` would leave one behind."""
        if (path := sqlite_file(self.tracking_uri)) is not None and not path.exists():
            raise ConfigError(
                f"{field}: no MLflow store at {path} to read it from: run this where the "
                "store is, or give it with --tracking-uri"
            )


def read_registry_prompt(tracking_uri: str, uri: str, field: str) -> tuple[str, str]:
    """(the system prompt, the version read as `prompts:/name/N`) of a registry URI such as
    `prompts:/support@production` or `prompts:/support/3`. A chat prompt gives its system
    message; a text prompt its whole text. ConfigError naming `field` otherwise."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            found = MlflowClient(tracking_uri).load_prompt(uri, cache_ttl_seconds=0)
    except MlflowException as e:
        first = (str(e.message).strip().splitlines() or [""])[0]
        raise ConfigError(f"{field}: cannot read {shorten(uri)}: {shorten(first, 300)}") from e
    if found is None:
        raise ConfigError(f"{field}: no prompt {shorten(uri)} in the Prompt Registry")
    read_as = f"prompts:/{found.name}/{found.version}"
    if isinstance(found.template, str):
        return found.template, read_as
    systems = [m.get("content") for m in found.template if m.get("role") == "system"]
    if len(systems) != 1 or not isinstance(systems[0], str) or not systems[0]:
        raise ConfigError(f"{field}: {read_as} holds no single system message to use")
    return systems[0], read_as
