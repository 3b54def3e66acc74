"""Reads of the Model Registry and the runs behind it, where "no such thing" is an answer: None,
or one line naming what is missing, instead of MLflow's exception."""

from __future__ import annotations

import re
from typing import Any

from ..errors import LlmflowError
from ..redact import redact_url

# how MLflow says "no such run / model / version / alias" (sqlite and REST stores alike)
NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def or_none(lookup: Any, *args: str) -> Any:
    """What an MLflow lookup returns, or None where MLflow says that thing does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return lookup(*args)
    except MlflowException as e:
        if e.error_code not in NOT_FOUND:
            raise
    return None


def alias_holder(client: Any, name: str, alias: str) -> str | None:
    mv = or_none(client.get_model_version_by_alias, name, alias)
    return str(mv.version) if mv is not None else None  # None: the alias is unset


def run_of(client: Any, run_id: str) -> Any:
    run = or_none(client.get_run, run_id)
    if run is None:
        raise LlmflowError(f"no run {run_id!r} in {redact_url(client.tracking_uri)}")
    return run


def model_of(client: Any, name: str) -> Any:
    model = or_none(client.get_registered_model, name)
    if model is None:
        raise LlmflowError(f"no registered model named {name!r}")
    return model


def version_of(client: Any, name: str, version: str) -> Any:
    mv = or_none(client.get_model_version, name, version)
    if mv is not None:
        return mv
    model_of(client, name)
    known = ", ".join(sorted((str(v.version) for v in versions_of(client, name)), key=int))
    raise LlmflowError(f"{name!r} has no version {version!r}; its versions: {known or 'none'}")


def versions_of(client: Any, name: str) -> list[Any]:
    """Every version of the model `name`, whatever characters the name holds."""
    found = every_page(client.search_model_versions, name_filter(name))
    return [mv for mv in found if mv.name == name]


def registered_models(client: Any) -> list[Any]:
    """Every registered model (MLflow's search returns the first 100 unless paged)."""
    return every_page(client.search_registered_models)


def every_page(search: Any, *args: Any) -> list[Any]:
    """What an MLflow search finds, page after page."""
    page = search(*args)
    found, tokens = list(page), set()
    while page.token and page.token not in tokens:  # a token seen again would loop for ever
        tokens.add(page.token)
        page = search(*args, page_token=page.token)
        found += page
    return found


def name_filter(name: str) -> str:
    """An MLflow filter that finds `name`. Its parser has no escape for a quote inside a
    string, so quote with the kind the name lacks; a name with both kinds gets a LIKE on the
    part before the first quote, and `versions_of` keeps the exact matches."""
    for quote in ("'", '"'):
        if quote not in name:
            return f"name = {quote}{name}{quote}"
    prefix = re.split("['\"]", name, maxsplit=1)[0]  # a % or _ in it only widens the match
    return f"name LIKE '{prefix}%'"
