"""The per-variant classification metrics of `task: classify`: accuracy with its interval,
macro F1, the per-label table and the confusion matrix, from the calls' labels."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..config.labels import UNPARSED
from ..stats import clustered_rate_interval
from ..types import CallRecord
from .labels import to_label
from .scores import CaseChecks

PER_LABEL_COLUMNS = ("label", "precision", "recall", "f1", "support", "predicted")


@dataclass(frozen=True)
class Classified:
    """What a variant predicted for its scored calls, against the true labels."""

    labels: tuple[str, ...]
    expected: tuple[str, ...]
    predicted: tuple[str, ...]
    cases: tuple[str, ...] = ()  # each answer's prompt: repeats of one prompt are one cluster


def classified(
    records: Iterable[CallRecord], table: dict[str, CaseChecks], labels: Sequence[str]
) -> Classified:
    """The successful measured calls' labels (failed calls are counted in error_rate)."""
    expected, predicted, cases = [], [], []
    for r in records:
        checks = table.get(r.case_id)
        if not r.ok or r.warmup or r.completion is None or checks is None or not checks.expected:
            continue
        expected.append(checks.expected)
        predicted.append(to_label(r.completion.text, labels))
        cases.append(r.case_id)
    return Classified(tuple(labels), tuple(expected), tuple(predicted), tuple(cases))


def per_label(result: Classified) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per label. Precision of a label never predicted and
    recall of a label with no support are unknown (None); their F1 is 0, as scikit-learn's
    zero_division=0 counts it in the macro F1. An `unparsed` answer is a miss of its true
    label."""
    rows = []
    for label in result.labels:
        pairs = list(zip(result.expected, result.predicted, strict=True))
        tp = sum(e == label and p == label for e, p in pairs)
        predicted = sum(p == label for _, p in pairs)
        support = sum(e == label for e, _ in pairs)
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        f1 = 2 * tp / (predicted + support) if tp else 0.0  # 2PR/(P+R), defined or not
        rows.append(
            {
                "label": label,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "support": support,
                "predicted": predicted,
            }
        )
    return rows


def confusion(result: Classified) -> list[list[int]]:
    """Rows: the true labels; columns: the predicted labels, then `unparsed`."""
    columns = [*result.labels, UNPARSED]
    matrix = [[0] * len(columns) for _ in result.labels]
    for e, p in zip(result.expected, result.predicted, strict=True):
        matrix[result.labels.index(e)][columns.index(p)] += 1
    return matrix


def metrics(result: Classified) -> dict[str, float]:
    """accuracy (the label check's pass rate) with its 95% interval (Wilson's, clustered by
    prompt), macro_f1 (over the labels that occur, true or predicted), n_unparsed. Empty when
    nothing was scored."""
    n = len(result.expected)
    if n == 0:
        return {}
    correct = sum(e == p for e, p in zip(result.expected, result.predicted, strict=True))
    occurring = [row for row in per_label(result) if row["support"] or row["predicted"]]
    outcomes: dict[str, list[bool]] = {}
    pairs = zip(result.cases or range(n), result.expected, result.predicted, strict=True)
    for case, e, p in pairs:
        outcomes.setdefault(str(case), []).append(e == p)
    low, high = clustered_rate_interval(outcomes.values()) or (None, None)
    return {
        "accuracy": correct / n,
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
        "macro_f1": sum(row["f1"] for row in occurring) / len(occurring),
        "n_unparsed": float(sum(p == UNPARSED for p in result.predicted)),
    }


def artifact(result: Classified) -> dict[str, Any]:
    """The per-label table and the confusion matrix, as stored on the variant run."""
    return {
        "labels": list(result.labels),
        "columns": [*result.labels, UNPARSED],
        "per_label": per_label(result),
        "confusion": confusion(result),
    }
