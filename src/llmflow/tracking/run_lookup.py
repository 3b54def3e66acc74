"""The run a `--run` / RUN_ID option names, by any unique prefix of its id, found in MLflow (a
sqlite store or a server alike: both take `attributes.run_id LIKE 'prefix%'`)."""

from __future__ import annotations

from typing import Any

from ..errors import LlmflowError
from ..redact import redact_url
from ..run_ids import normalised, pick
from .schema import KIND_PARENT, KIND_VARIANT, PARENT_RUN_TAG, TAG_KIND

_KIND_NAMES = {KIND_PARENT: "llmflow run (a parent run)", KIND_VARIANT: "variant run"}
_ID_LENGTH = 32  # MLflow's run ids: uuid4 hex
_MAX_MATCHES = 1000  # more runs than that starting with one prefix: ambiguous all the same


def resolve_run(client: Any, prefix: str, kind: str, experiment: Any = None) -> str:
    """The full id of the run of `kind` (KIND_PARENT, KIND_VARIANT) whose id starts with
    `prefix`, in `experiment` (an MLflow Experiment; None: in any experiment). LlmflowError,
    in one line, when none does, when several do, or when the run found is of another kind."""
    if experiment is not None:
        where, experiment_ids = f"experiment {experiment.name!r}", [experiment.experiment_id]
    else:
        where, experiment_ids = redact_url(client.tracking_uri), None
    folded = normalised(prefix)
    if folded is None:
        raise LlmflowError(f"no run {prefix!r} in {where}: a run id is hexadecimal")
    runs = _runs_starting(client, folded, experiment_ids)
    if len(runs) >= _MAX_MATCHES:  # the search was cut: the one parent seen may not be the one
        raise LlmflowError(
            f"run id {prefix!r} is ambiguous (at least {_MAX_MATCHES} runs start with it in "
            f"{where}): give more characters"
        )
    wanted = [r.info.run_id for r in runs if r.data.tags.get(TAG_KIND) == kind]
    if wanted or len(runs) != 1:
        return pick(prefix, wanted or [r.info.run_id for r in runs], where)
    raise LlmflowError(_wrong_kind(runs[0], kind))


def _runs_starting(client: Any, folded: str, experiment_ids: list[str] | None) -> list[Any]:
    """The active runs whose id starts with `folded`, in those experiments (None: in any); a
    whole id is looked up directly (no search of every experiment of a big server)."""
    if len(folded) == _ID_LENGTH:
        from mlflow.exceptions import MlflowException

        try:
            run = client.get_run(folded)
        except MlflowException as e:
            if e.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
            return []
        active = run.info.lifecycle_stage == "active"
        inside = experiment_ids is None or run.info.experiment_id in experiment_ids
        return [run] if active and inside else []
    return client.search_runs(
        experiment_ids or _every_experiment(client),
        filter_string=f"attributes.run_id LIKE '{folded}%'",
        max_results=_MAX_MATCHES,
    )


def _wrong_kind(run: Any, kind: str) -> str:
    run_id = run.info.run_id
    found = run.data.tags.get(TAG_KIND)
    parent = run.data.tags.get(PARENT_RUN_TAG)
    if kind == KIND_PARENT and found == KIND_VARIANT and parent:
        return f"run {run_id} is a variant run of run {parent}: pass --run {parent[:8]}"
    return f"run {run_id} is not an {_KIND_NAMES[kind]}"


def _every_experiment(client: Any) -> list[str]:
    page = client.search_experiments()
    found, tokens = list(page), set()
    while page.token and page.token not in tokens:  # a token seen again would loop for ever
        tokens.add(page.token)
        page = client.search_experiments(page_token=page.token)
        found += page
    return [e.experiment_id for e in found]
