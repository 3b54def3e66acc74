"""Every metric and table a variant's checks feed, made together by the run's finishing and by
`llmflow score` alike: the pass rate with its interval, the scores' means, and for task classify
accuracy, macro F1, n_unparsed and the per-label tables. A metric of a check that no longer
scores anything becomes NaN (MLflow cannot delete a metric), which readers skip.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .config.labels import TASK
from .scoring import classification as labelled
from .tracking.schema import CLASSIFICATION, PER_LABEL_TABLE

if TYPE_CHECKING:
    from .config import LoadedExperiment
    from .scoring import CaseChecks
    from .tracking.runs import RunStore
    from .types import CallRecord

# the metrics checks feed (quality_metrics, labelled.metrics), besides each score.<name>
CHECK_METRICS = frozenset(
    {
        *("pass_rate", "pass_rate_ci_low", "pass_rate_ci_high"),
        *("n_scored", "n_passed", "n_score_errors"),
        *("accuracy", "accuracy_ci_low", "accuracy_ci_high", "macro_f1", "n_unparsed"),
    }
)


def fed_by_checks(name: str) -> bool:
    return name in CHECK_METRICS or name.startswith("score.")


def stale(old: dict[str, float], new: dict[str, float]) -> dict[str, float]:
    """NaN for each metric checks fed before and no longer do (not NaN already)."""
    return {
        k: math.nan
        for k, v in old.items()
        if fed_by_checks(k) and k not in new and not math.isnan(v)
    }


def classification(
    store: RunStore,
    run_id: str,
    loaded: LoadedExperiment,
    records: Iterable[CallRecord],
    checks: dict[str, CaseChecks] | None,
) -> dict[str, float]:
    """Task classify: accuracy, macro F1 and n_unparsed; the per-label table and the confusion
    matrix go on the variant run as classification.json (and per_label.json). Empty for any
    other task, or when no call was classified."""
    labels = loaded.config.labels
    if loaded.config.task != TASK or not labels or checks is None:
        return {}
    found = labelled.classified(records, checks, labels)
    if not found.expected:  # skipped, or every call failed: no table of zeros
        return {}
    store.client.log_dict(run_id, labelled.artifact(found), CLASSIFICATION)
    rows = labelled.per_label(found)  # also as a table, which the MLflow UI shows
    columns: dict[str, list[Any]] = {
        name: [row[name] for row in rows] for name in labelled.PER_LABEL_COLUMNS
    }
    store.log_table(run_id, columns, PER_LABEL_TABLE)
    return {k: v for k, v in labelled.metrics(found).items() if v is not None}
