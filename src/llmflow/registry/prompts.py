"""The MLflow Prompt Registry beside the Model Registry: a registered variant's prompt (its
system prompt and the user message's template) with a `model_config` holding exactly the
variant's settings, whose aliases follow the model's. (A run reads a system prompt from the
registry in tracking/mlflow_sources.py.)

A prompt cannot share its registered model's name (MLflow keeps prompts as registered models),
so the prompt of model `llm_local_qa` is `llm_local_qa.prompt`. Each model version records the
prompt version it was registered with (tag `llmflow.prompt`), which promotion reads.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from typing import Any

from ..redact import one_line
from ..tracking.schema import MODEL_VERSION_TAG, PROMPT_ERROR_TAG, PROMPT_TAG
from .lookups import alias_holder

PROMPT_SUFFIX = ".prompt"
USER_TEMPLATE = "{{user}}"  # each prompt's own user message goes here
# model entry fields with a place of their own in MLflow's PromptModelConfig (same names)
_CONFIG_FIELDS = ("temperature", "max_tokens", "top_p")
_EXTRA_FIELDS = ("seed", "stream", "base_url")


def prompt_name(model_name: str) -> str:
    return model_name + PROMPT_SUFFIX


def model_config(entry: dict[str, Any], model: str) -> dict[str, Any]:
    """The variant's settings as MLflow's PromptModelConfig: provider, model, temperature,
    max_tokens, top_p and stop; seed, stream and base_url (credentials removed) as extras."""
    config: dict[str, Any] = {"provider": entry["provider"], "model_name": model}
    config |= {key: entry[key] for key in _CONFIG_FIELDS if entry.get(key) is not None}
    if entry.get("stop"):
        config["stop_sequences"] = list(entry["stop"])
    if extras := {k: entry[k] for k in _EXTRA_FIELDS if entry.get(k) is not None}:
        config["extra_params"] = extras
    return config


def template(system: str | None) -> list[dict[str, str]]:
    """A chat prompt: the system message, if any, and the user message's placeholder."""
    system_message = [{"role": "system", "content": system}] if system else []
    return [*system_message, {"role": "user", "content": USER_TEMPLATE}]


def register_version_prompt(
    client: Any, name: str, version: str, served: dict[str, Any], model: str
) -> str | None:
    """Register the prompt that model version `name`/`version` serves (`served`: its entry
    without credentials, and its system prompt); returns the prompt version's URI, also kept on
    the model version as a tag. A registry that refuses it (a Unity Catalog name with no room
    for `.prompt`, a server without prompts) leaves the model version as registered, with the
    reason in its PROMPT_ERROR_TAG; None then."""
    prompt = prompt_name(name)
    try:
        with _quiet():
            registered = client.register_prompt(
                prompt,
                template(served.get("system")),
                commit_message=f"{name} version {version}",
                tags={MODEL_VERSION_TAG: f"{name}/{version}"},
                model_config=model_config(served["entry"], model),
            )
    except Exception as e:  # noqa: BLE001 - the model version stands; the reason is kept on it
        client.set_model_version_tag(name, version, PROMPT_ERROR_TAG, one_line(e))
        return None
    uri = f"prompts:/{prompt}/{registered.version}"
    client.set_model_version_tag(name, version, PROMPT_TAG, uri)
    return uri


def follow_model_alias(client: Any, name: str, alias: str) -> None:
    """Point the prompt's `alias` at the prompt of the model version that holds the model's
    alias now (read again, so that of two promotions at once the last one written wins for
    both). Where no version holds it, or one registered without a prompt does, the prompt
    loses the alias: it never names a prompt that the model's alias does not serve."""
    prompt = prompt_name(name)
    target = None
    if (holder := alias_holder(client, name, alias)) is not None:
        tagged = client.get_model_version(name, holder).tags.get(PROMPT_TAG, "")
        target = tagged.rpartition("/")[2] if tagged.startswith(f"prompts:/{prompt}/") else None
    with _quiet():
        if target is not None:
            client.set_prompt_alias(prompt, alias, int(target))
        elif _has_prompt(client, prompt):
            with contextlib.suppress(Exception):  # an alias it never had
                client.delete_prompt_alias(prompt, alias)


def _has_prompt(client: Any, prompt: str) -> bool:
    try:
        return client.get_prompt(prompt) is not None
    except Exception:  # noqa: BLE001 - a store without prompts has none to move
        return False


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # MLflow prints a link to the prompt's page and experimental-API warnings on stderr
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield
