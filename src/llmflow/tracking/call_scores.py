"""A variant run's scores on the traces of its calls, each name once, and the judge calls that
gave some of them as traces of their own (not linked to the run: its trace list is the
evaluation table of the variant's own calls, tracking/eval_view.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .assessment_sync import current_assessments, sync_scores
from .eval_view import JUDGED_RUN_TAG
from .schema import JUDGED_CALL_TAG, JUDGED_TRACE_TAG, ROLE_TAG, SCORER_TAG, TAG_VARIANT
from .trace_batch import write_traces
from .traces import BATCH, CALL_NAME, TraceJob, call_tag, judge_name

if TYPE_CHECKING:
    from ..scoring import Score
    from ..scoring.judge import JudgeCall


def log_call_scores(
    client: Any,
    experiment_id: str,
    run_id: str,
    variant_id: str,
    scores: dict[tuple[str, int], list[Score]],
    judge_calls: Sequence[JudgeCall] = (),
) -> int:
    """Log a variant run's scores, by (case_id, repeat), on the traces of those calls, each name
    once (assessment_sync); then the judge calls that gave some of them, each as a trace of its
    own (write_judge_traces). The number of scored calls that have no trace."""
    current = current_assessments(client, experiment_id, run_id, variant_id)
    _, untraced = sync_scores(client, current, scores)
    by_tag = {call_tag(*key): trace_id for key, (trace_id, _) in current.items()}
    write_judge_traces(client, experiment_id, run_id, judge_calls, by_tag, variant_id)
    return untraced


JUDGE_ROLE = "judge"


def write_judge_traces(
    client: Any,
    experiment_id: str,
    run_id: str,
    calls: Sequence[JudgeCall],
    by_tag: dict[str, str],
    variant_id: str | None = None,
) -> None:
    """Each judge call as a trace in the experiment, built as a model call's is (its request,
    answer, tokens and cost), tagged llmflow.role=judge so that nothing counting the run's model
    calls counts it, and naming the graded run, call, its trace (`by_tag`: trace id by call tag)
    and the check. It is not linked to the graded run, whose trace list MLflow shows as an
    evaluation table of the variant's calls (eval_view.judge_traces finds it). Its name says
    so, `judge:<check> | <variant> | <call>` (the graded variant: `variant_id`, else the
    run's), and reads as no call: resume and re-scoring never take it for one."""
    if calls and variant_id is None:
        variant_id = client.get_run(run_id).data.tags.get(TAG_VARIANT, "")
    jobs = []
    for call in calls:
        tag = call_tag(*call.key)
        tags = {
            CALL_NAME: judge_name(call.scorer, variant_id or "", *call.key),
            ROLE_TAG: JUDGE_ROLE,
            JUDGED_CALL_TAG: tag,
            SCORER_TAG: call.scorer,
            JUDGED_RUN_TAG: run_id,
        }
        if tag in by_tag:
            tags[JUDGED_TRACE_TAG] = by_tag[tag]
        record = replace(call.record, case_id=call.key[0])  # not the judge's internal case id
        job = TraceJob(
            record, call.judge, run_id, tags=tuple(tags.items()), seed=call.entry_id, linked=False
        )
        jobs.append(job)
    for start in range(0, len(jobs), BATCH):
        write_traces(client, experiment_id, jobs[start : start + BATCH])
