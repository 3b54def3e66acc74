"""MLflow's built-in judges (Correctness, Guidelines, RelevanceToQuery, Safety, ...) with a judge
model taken from an experiment's models, for `mlflow.genai.evaluate` on llmflow's traces:

    judges = mlflow_judges(["RelevanceToQuery", "Safety"], loaded.config.models[0])
    with judge_endpoint(loaded.config.models[0]):
        mlflow.genai.evaluate(data=traces, scorers=[*judges, *as_mlflow_scorers(loaded)])

Their assessments land on the same traces as llmflow's (evaluate writes them there).

How MLflow 3.17 calls the judge's model: without litellm (not installed here, and not needed),
a model URI `openai:/<model>` goes through MLflow's own gateway adapter, a plain HTTP call to
`$OPENAI_API_BASE` (or `$OPENAI_BASE_URL`, else api.openai.com) with `$OPENAI_API_KEY`, asking
for structured output (`response_format`). So any OpenAI-compatible server serves as the judge,
offline too: an `openai` entry with its `base_url`, or Ollama's `/v1`. `judge_endpoint` sets
those variables for the block and restores them after. Other providers (gemini, anthropic)
would need their own MLflow URI forms and are refused with the reason.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

from ..config.scorers import MLFLOW_JUDGE_PROVIDERS, MLFLOW_JUDGES
from ..errors import ConfigError

BUILTIN = MLFLOW_JUDGES
_KEYLESS = "unused"  # a self-hosted server needs no key, MLflow's adapter insists on one


def judge_uri(entry: Any) -> str:
    """MLflow's model URI for a judge entry of the experiment (`openai:/<model>`)."""
    if entry.provider not in MLFLOW_JUDGE_PROVIDERS:
        raise ConfigError(
            f"{entry.provider}/{entry.model}: MLflow's built-in judges are called here through "
            "an OpenAI-compatible endpoint: pick an openai (or ollama) model as their judge"
        )
    return f"openai:/{entry.model}"


def mlflow_judges(
    names: Sequence[str], entry: Any, guidelines: str | list[str] | None = None
) -> list[Any]:
    """The built-in judges named, each with the entry's model as its judge."""
    from mlflow.genai import scorers

    unknown = [n for n in names if n not in BUILTIN]
    if unknown:
        raise ConfigError(f"unknown MLflow judge {unknown[0]!r}: one of {', '.join(BUILTIN)}")
    if "Guidelines" in names and not guidelines:
        raise ConfigError("the Guidelines judge needs guidelines: the rule to judge by")
    model = judge_uri(entry)
    found = []
    for name in names:
        extra = {"guidelines": guidelines} if name == "Guidelines" else {}
        found.append(getattr(scorers, name)(model=model, **extra))
    return found


@contextlib.contextmanager
def judge_endpoint(entry: Any) -> Iterator[None]:
    """OPENAI_API_BASE and OPENAI_API_KEY set to the entry's server and key for the block, and
    MLflow's timeout per request to the entry's timeout_s."""
    judge_uri(entry)  # refuses what MLflow's adapter could not call
    base = entry.base_url or ("http://127.0.0.1:11434" if entry.provider == "ollama" else None)
    if base and entry.provider == "ollama" and not base.rstrip("/").endswith("/v1"):
        base = f"{base.rstrip('/')}/v1"
    key_env = getattr(entry, "api_key_env", None) or "OPENAI_API_KEY"
    values = {"OPENAI_API_KEY": os.environ.get(key_env) or _KEYLESS}
    # MLflow waits this long for each of its 11 tries (its default: 300 s)
    values["MLFLOW_GATEWAY_ROUTE_TIMEOUT_SECONDS"] = str(math.ceil(entry.timeout_s))
    if base:
        values["OPENAI_API_BASE"] = base
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
