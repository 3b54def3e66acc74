"""Scores as MLflow assessments: a Feedback (name, value, rationale, source) on the call's trace,
which the MLflow UI shows beside the answer.

Why a batch path: the store's `create_assessment` opens a session and locks the trace per
assessment, about 20 ms each on sqlite; five checks on 1,000 calls would add 100 s to a run. On
a SQL store (without MLflow's opt-in rollups, which need its own locking path) the assessments
of a batch of traces are inserted in one session instead, as `create_assessment` builds them.
Any other store (a remote `mlflow server`) gets them one by one through the public client.
Measured here (a busy 2-core machine): 5,000 assessments in 1.2 s as one executemany, 2.6 s as
ORM objects added to one session, about 100 s one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..scoring import Score
    from ..scoring.judge import JudgeCall

SOURCE_ID = "llmflow"


def feedback(trace_id: str, score: Score, overrides: str | None = None) -> Any:
    """The MLflow Feedback of one score: its value (None with an error when the check could
    not be made), its rationale, and a CODE or LLM_JUDGE source."""
    from mlflow.entities import AssessmentError, AssessmentSource, Feedback

    error = (
        AssessmentError(error_code="SCORER_ERROR", error_message=score.error)
        if score.error
        else None
    )
    return Feedback(
        trace_id=trace_id,
        name=score.name,
        value=None if score.error else score.value,
        error=error,
        rationale=score.rationale,
        source=AssessmentSource(source_type=score.source, source_id=SOURCE_ID),
        metadata={"passed": str(score.passed).lower(), **_judge_metadata(score)},
        overrides=overrides,
    )


JUDGE_KEY = "llmflow.judge"


def _judge_metadata(score: Score) -> dict[str, str]:
    return {JUDGE_KEY: score.judge} if score.judge else {}


def score_of(assessment: Any) -> Score:
    """The Score an assessment llmflow wrote records (to reuse a judge's verdict)."""
    from ..scoring import Score

    metadata = assessment.metadata or {}
    error = assessment.error.error_message if assessment.error else None
    return Score(
        name=assessment.name,
        value=assessment.value,
        passed=metadata.get("passed") == "true",
        rationale=assessment.rationale or "",
        source=assessment.source.source_type,
        error=error,
        judge=metadata.get(JUDGE_KEY),
    )


def log_scores(
    client: Any,
    scores: Sequence[tuple[str, Score]],
    overrides: Sequence[str | None] | None = None,
    on_logged: Callable[[int], None] | None = None,
) -> None:
    """Log (trace_id, score) pairs as assessments, in one session where the store allows.
    `overrides`, one per pair: the id of an earlier assessment each replaces (marked invalid);
    `on_logged(n)` after each write of n of them (a retry then sends only the rest)."""
    if not scores:
        return
    replaced = list(overrides) if overrides is not None else [None] * len(scores)
    feedbacks = [
        feedback(trace_id, score, old)
        for (trace_id, score), old in zip(scores, replaced, strict=True)
    ]
    store = client._tracking_client.store  # the batch needs the store; no public twin
    logged = on_logged or (lambda n: None)
    if _batchable(store):
        _insert_all(store, feedbacks)
        logged(len(feedbacks))
    else:
        for item in feedbacks:
            client.log_assessment(item.trace_id, item)
            logged(1)


def _batchable(store: Any) -> bool:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.store.tracking.utils.sql_trace_rollups import rollups_enabled

    return isinstance(store, SqlAlchemyStore) and not rollups_enabled()


def _insert_all(store: Any, feedbacks: list[Any]) -> None:
    """One executemany INSERT of the rows `create_assessment` would add one by one (building
    them through the ORM instead costs more than the insert itself)."""
    from mlflow.store.tracking.dbmodels.models import SqlAssessments, SqlTraceInfo
    from sqlalchemy import insert

    with store.ManagedSessionMaker(read_only=False) as session:
        ids = sorted({f.trace_id for f in feedbacks})
        traces = {
            t.request_id: (t.experiment_id, t.timestamp_ms)
            for t in session.query(SqlTraceInfo).filter(SqlTraceInfo.request_id.in_(ids))
        }
        rows = []
        for item in feedbacks:
            experiment_id, timestamp_ms = traces[item.trace_id]  # KeyError: a trace is gone
            built = SqlAssessments.from_mlflow_entity(item)
            values = {k: v for k, v in vars(built).items() if not k.startswith("_sa_")}
            values.update(experiment_id=experiment_id, trace_timestamp_ms=timestamp_ms)
            rows.append(values)
            if item.overrides:
                session.query(SqlAssessments).filter(
                    SqlAssessments.trace_id == item.trace_id,
                    SqlAssessments.assessment_id == item.overrides,
                ).update({"valid": False})
        session.execute(insert(SqlAssessments), rows)


def log_call_scores(
    client: Any,
    experiment_id: str,
    run_id: str,
    scores: dict[tuple[str, int], list[Score]],
    judge_calls: Sequence[JudgeCall] = (),
) -> None:
    """Log a variant run's scores, by (case_id, repeat), on the traces of those calls; then
    the judge calls that gave some of them, each as a trace of its own (write_judge_traces)."""
    from .traces import call_tag, traces_by_call

    by_tag = traces_by_call(client, experiment_id, run_id)
    pairs = [
        (by_tag[tag], score)
        for (case_id, repeat), found in scores.items()
        if (tag := call_tag(case_id, repeat)) in by_tag
        for score in found
    ]
    log_scores(client, pairs)
    write_judge_traces(client, experiment_id, run_id, judge_calls, by_tag)


JUDGE_ROLE = "judge"
JUDGED_CALL_TAG = "llmflow.judged_call"  # the graded call's "<case id>#<repeat>"
JUDGED_TRACE_TAG = "llmflow.judged_trace"  # the graded call's trace id
SCORER_TAG = "llmflow.scorer"  # the judge check's name


def write_judge_traces(
    client: Any,
    experiment_id: str,
    run_id: str,
    calls: Sequence[JudgeCall],
    by_tag: dict[str, str],
) -> None:
    """Each judge call as a trace in the graded variant's run, built as a model call's is (its
    request, answer, tokens and cost), tagged llmflow.role=judge so that nothing counting the
    run's model calls counts it, and naming the graded call, its trace (`by_tag`: trace id by
    call tag) and the check. It has no call tag: resume and re-scoring never take it for one."""
    from .traces import BATCH, ROLE_TAG, TraceJob, call_tag, write_traces

    jobs = []
    for call in calls:
        tag = call_tag(*call.key)
        tags = {ROLE_TAG: JUDGE_ROLE, JUDGED_CALL_TAG: tag, SCORER_TAG: call.scorer}
        if tag in by_tag:
            tags[JUDGED_TRACE_TAG] = by_tag[tag]
        record = replace(call.record, case_id=call.key[0])  # not the judge's internal case id
        jobs.append(TraceJob(record, call.judge, run_id, tags=tuple(tags.items())))
    for start in range(0, len(jobs), BATCH):
        write_traces(client, experiment_id, jobs[start : start + BATCH])
