"""`task: classify`: the label instruction LLMs get, answer -> label, the file checks, and the
per-variant classification metrics.

Accuracy is a score like any other: the `label` check (an exact label match, after the answer
is mapped to a label) gives each call passed/failed, and accuracy is that check's pass rate
with the same 95% Wilson interval as `pass_rate`.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .types import CallRecord
from .user_files import clip, shorten

if TYPE_CHECKING:
    from .config import Experiment, PromptCase
    from .scoring import CaseChecks
    from .scoring.specs import ScorerSpec

TASK = "classify"
UNPARSED = "unparsed"
LABEL_CHECK = "label"
ARTIFACT = "classification.json"  # per-label table and confusion matrix, on each variant run
PER_LABEL_TABLE = "per_label.json"  # the same per-label rows as an MLflow table
PER_LABEL_COLUMNS = ("label", "precision", "recall", "f1", "support", "predicted")
_EDGES = " \t\r\n\"'`*_.:;,!?()[]{}<>"


def instruction(labels: Sequence[str]) -> str:
    """The system message of a classify task's prompts that have none of their own."""
    return (
        "Classify the customer support ticket into exactly one of these labels: "
        f"{', '.join(labels)}. Answer with the label only."
    )


def labels_problem(labels: Sequence[str]) -> str | None:
    """What is wrong with a `labels:` list; None when it is fine."""
    if len(labels) < 2:
        return "task classify needs a list of two or more labels"
    seen: set[str] = set()
    for label in labels:
        folded = normalise(label)
        if not folded or folded == UNPARSED:
            return f"{shorten(label)} cannot be a label"
        if folded in seen:
            return f"{shorten(label)} appears twice"
        seen.add(folded)
    return None


def normalise(text: str) -> str:
    """Caseless, canonically composed (an NFD "café" is the NFC one), trimmed of quotes and
    markup, single-spaced."""
    caseless = unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())
    return " ".join(caseless.strip(_EDGES).split())


def to_label(answer: str, labels: Sequence[str]) -> str:
    """The label an answer means: an exact match after normalising, else the label named
    earliest in the answer (as a whole word), else `unparsed`. Two labels named at the same
    place ("billing" and "billing dispute" in "a billing dispute"): the longer, which the answer
    names in full. The order of `labels` never decides."""
    folded = normalise(answer)
    for label in labels:
        if normalise(label) == folded:
            return label
    first: tuple[int, int, str] | None = None  # (where, -length, label): the least wins
    for label in labels:
        wanted = normalise(label)
        found = _named(wanted).search(folded)
        if found and (first is None or (found.start(), -len(wanted)) < first[:2]):
            first = (found.start(), -len(wanted), label)
    return first[2] if first else UNPARSED


# scripts written without spaces between words: a label in them is found inside a sentence
_UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
_SPACED_LETTER = rf"[\w--[{_UNSPACED}]]"


@functools.lru_cache(maxsize=256)
def _named(label: str) -> Any:
    """A normalised label as a whole word: not glued to a letter of a script that spaces its
    words ("accounts" is not "account"), but found within Chinese, Japanese or Thai text."""
    import regex

    def spaced(character: str) -> bool:
        return regex.fullmatch(_SPACED_LETTER, character, flags=regex.V1) is not None

    before = f"(?<!{_SPACED_LETTER})" if spaced(label[0]) else ""
    after = f"(?!{_SPACED_LETTER})" if spaced(label[-1]) else ""
    return regex.compile(before + regex.escape(label) + after, flags=regex.V1)


def label_check(
    spec: ScorerSpec, text: str, record: CallRecord, expected: str | None
) -> tuple[bool, bool, str] | None:
    """The `label` check: the answer's label equals the expected one."""
    if expected is None:
        return None
    predicted = to_label(text, list(spec.value or ()))
    ok = predicted == expected
    return ok, ok, f"predicted {predicted!r}, expected {expected!r}"


def label_spec(labels: Sequence[str]) -> ScorerSpec:
    from .scoring.specs import ScorerSpec

    return ScorerSpec(type=LABEL_CHECK, name=LABEL_CHECK, value=list(labels))


# --- the experiment file --------------------------------------------------------------------


def prepare(
    config: Experiment, prompts: tuple[PromptCase, ...], path: Path, train: bool = True
) -> tuple[Experiment, tuple[PromptCase, ...]]:
    """For task classify: every prompt's `expected` is one of `labels` (spelt as there), prompts
    without a `system` get the label instruction (or the file's `system:`), each sklearn
    entry's training file is read and checked now (unless `train` is False: a run's stored
    copy, whose model is trained already), its path made absolute. ConfigError (one line
    naming the file and field) otherwise."""
    if config.task != TASK:
        return config, prompts
    labels = list(config.labels or ())
    shown = config.prompts if isinstance(config.prompts, str) else path.name
    system = config.system or instruction(labels)
    checked = []
    for index, prompt in enumerate(prompts):
        where = f"{clip(shown)}: [{index}].expected"
        update = {"expected": canonical(prompt.expected, labels, where)}
        if prompt.system is None:
            update["system"] = system
        checked.append(prompt.model_copy(update=update))
    if not train:
        return config, tuple(checked)
    models = [_with_training(entry, i, labels, path) for i, entry in enumerate(config.models)]
    return config.model_copy(update={"models": models}), tuple(checked)


def canonical(value: str | None, labels: Sequence[str], where: str) -> str:
    """The label as `labels:` spells it; ConfigError naming `where` when it is not one."""
    if value is None:
        raise ConfigError(f"{where}: is required for task classify (the true label)")
    for label in labels:
        if normalise(label) == normalise(value):
            return label
    raise ConfigError(f"{where}: {shorten(value)} is not one of labels ({', '.join(labels)})")


def _with_training(entry: Any, index: int, labels: list[str], path: Path) -> Any:
    from .providers.sklearn_model import entry_problem

    if (problem := entry_problem(entry.provider, entry.model, entry.train)) is not None:
        raise ConfigError(f"{path.name}: models[{index}].{problem}")
    if entry.train is None:
        return entry
    train = path.parent / entry.train
    load_training(train, entry.train, labels, f"{path.name}: models[{index}].train")
    return entry.model_copy(update={"train": str(train.resolve())})


@dataclass(frozen=True)
class TrainingSet:
    texts: tuple[str, ...]
    labels: tuple[str, ...]


def load_training(path: Path, shown: str, labels: Sequence[str] | None, field: str) -> TrainingSet:
    """Rows with `user` (the text) and `expected` (its label), from .csv/.jsonl/.yaml."""
    from .prompts_file import _parse_rows
    from .user_files import read_text

    try:
        text = read_text(path, shown)
    except OSError as e:
        raise ConfigError(f"{field}: cannot read {clip(shown)}: {e.strerror or e}") from e
    rows = _parse_rows(text, path.suffix.lower(), clip(shown))
    if not isinstance(rows, list) or not rows:
        raise ConfigError(f"{field}: {clip(shown)} has no rows: the model needs training data")
    texts, found = [], []
    for index, row in enumerate(rows):
        where = f"{clip(shown)}: [{index}]"
        if not isinstance(row, dict) or not str(row.get("user") or "").strip():
            raise ConfigError(f"{where}.user: is required (the text to classify)")
        label = row.get("expected")
        found.append(canonical(label, labels, f"{where}.expected") if labels else str(label))
        texts.append(str(row["user"]))
    if len(set(found)) < 2:
        raise ConfigError(f"{field}: {clip(shown)} must hold at least two different labels")
    return TrainingSet(tuple(texts), tuple(found))


# --- metrics ---------------------------------------------------------------------------------


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
    from .stats import clustered_rate_interval

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
