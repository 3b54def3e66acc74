"""llmflow's checks as MLflow scorers, for `mlflow.genai.evaluate` and MLflow's own tooling.

    scorers = as_mlflow_scorers("experiment.yaml")
    traces = mlflow.search_traces(locations=[experiment_id], run_id=variant_run_id)
    mlflow.genai.evaluate(data=traces, scorers=scorers)

Each named check of the experiment (its `scorers:` and its prompts' `assert:`, named as
`llmflow run` names them) is one Scorer that reads a call's trace as llmflow wrote it (the
answer, its case and repeat, latency, cost, cache flag) and gives the Feedback llmflow writes
for that call: the same value, rationale, source and `passed` metadata. A check that does not
apply to the call (another prompt's `assert:`, rouge-l without `expected`) gives no value: MLflow
records it as "not applicable" rather than a verdict.

A `type: judge` check is not converted: it asks a model, and a scorer that asked again could
answer otherwise than the run did (`llmflow score` reuses the judge's journaled answer).
MLflow's own judges take its place in `mlflow.genai.evaluate` (`Correctness(model=...)`).

Lives in tracking, not scoring: it reads MLflow traces and returns MLflow Feedback, which the
scoring layer never sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import LoadedExperiment, load_experiment
from ..errors import ConfigError
from ..scoring import CaseChecks, case_table, score_record
from ..types import CallRecord, Completion, Cost, GenerationSettings, Message, Timing, Usage
from . import schema
from .assessments import feedback

__all__ = ["as_mlflow_scorers", "record_of_trace"]


def as_mlflow_scorers(experiment: str | Path | LoadedExperiment) -> list[Any]:
    """One MLflow Scorer per named check of the experiment (a file or a loaded one), judges
    left out (see the module docstring). ConfigError when the file checks nothing."""
    loaded = experiment if isinstance(experiment, LoadedExperiment) else load_experiment(experiment)
    table = case_table(loaded)
    if table is None:
        raise ConfigError(f"{loaded.path.name}: no scorers: or assert: to turn into scorers")
    names: dict[str, None] = {}
    for checks in table.values():
        names.update(
            (name, None) for name, spec in checks.checks if spec.type not in ("judge", "mlflow")
        )
    check_class = _check_class()
    return [check_class(name=name, table=table) for name in names]


def _check_class() -> type:
    """The Scorer subclass, defined on first use: `mlflow.genai` is imported only then."""
    global _CHECK_CLASS
    if _CHECK_CLASS is None:
        _CHECK_CLASS = _define_check_class()
    return _CHECK_CLASS


_CHECK_CLASS: type | None = None


def _define_check_class() -> type:
    from mlflow.genai.scorers import Scorer
    from pydantic import PrivateAttr

    class LlmflowCheck(Scorer):
        """One llmflow check, scored on a call's trace."""

        _table: dict[str, CaseChecks] = PrivateAttr(default_factory=dict)

        def __init__(self, *, name: str, table: dict[str, CaseChecks]) -> None:
            super().__init__(name=name, description=f"llmflow check {name!r}")
            self._table = table

        def __call__(self, *, trace: Any) -> Any:
            return check_feedback(self.name, self._table, trace)

    return LlmflowCheck


def check_feedback(name: str, table: dict[str, CaseChecks], trace: Any) -> Any:
    """The Feedback the check `name` gives the call that `trace` records; None when the check
    does not apply to it (or the trace is no call of llmflow's)."""
    record = record_of_trace(trace)
    checks = table.get(record.case_id) if record is not None else None
    if record is None or checks is None:
        return None
    only = CaseChecks(checks.expected, tuple(c for c in checks.checks if c[0] == name))
    found = score_record(record, only) if only.checks else []
    if not found:
        return None
    (score,) = found
    return feedback(trace.info.trace_id, score)


def record_of_trace(trace: Any) -> CallRecord | None:
    """The call as far as checks read it, from the root span llmflow wrote for it (traces.py);
    None for a trace that is not a model call of llmflow's (a judge's, or anyone else's)."""
    span = next((s for s in trace.data.spans if s.parent_id is None), None)
    attributes = span.attributes if span is not None else {}
    if schema.SPAN_CASE not in attributes or schema.ROLE_TAG in trace.info.tags:
        return None
    error = attributes.get(schema.SPAN_ERROR)
    latency = attributes.get(schema.SPAN_LATENCY)
    cost = (attributes.get("mlflow.llm.cost") or {}).get("total_cost")
    error_type, _, message = (error or "").partition(": ")
    inputs = span.inputs if isinstance(span.inputs, dict) else {}
    return CallRecord(
        variant_id=str(attributes.get(schema.TAG_VARIANT, "")),
        case_id=str(attributes[schema.SPAN_CASE]),
        repeat=int(attributes.get(schema.SPAN_REPEAT, 0)),
        messages=tuple(
            Message(m["role"], m["content"]) for m in inputs.get("messages", ()) if "role" in m
        ),
        settings=GenerationSettings(),
        completion=None if error else Completion(_answer(span.outputs), Usage()),
        timing=Timing(latency, None, 0, 0) if latency is not None else None,
        cost=Cost("unpriced", None) if cost is None else Cost("priced", cost),
        error_type=error_type or None,
        error_message=message or None,
        cached=bool(attributes.get(schema.SPAN_CACHED)),
    )


def _answer(outputs: Any) -> str:
    """The answer's text from the span's outputs (traces._outputs: a chat completion, or "")."""
    if isinstance(outputs, dict):
        choices = outputs.get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")
    return outputs if isinstance(outputs, str) else ""
