"""One MLflow trace per call: the span built from a CallRecord, and the batched write.

Each trace is a single CHAT_MODEL span carrying the request as inputs and the answer as outputs,
with the attributes the MLflow UI reads for tokens, model, provider and cost. The cost is
llmflow's own (genai-prices or the local cost model); MLflow's catalog is never asked.

Why not `mlflow.start_span` per call: measured here on sqlite, that path costs ~22 ms of MLflow
CPU per trace and its async queue drops traces when full. Building the spans ourselves and
writing them with the store's `log_spans` (many traces in one session) plus
`link_traces_to_run` costs ~2 ms per trace. The worker (worker/tracing.py) runs these writes in
its own process.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..plan import Variant
from ..types import CallRecord
from . import mlflow_compat, schema
from .assessments import feedback
from .schema import CALL_TAG, ROLE_TAG, UNPRICED_USAGE

if TYPE_CHECKING:
    from ..scoring import Score

BATCH = 100  # link_traces_to_run takes at most 100 trace ids
# a model call's trace is named "<variant id> | <case id>#<repeat>" (MLflow's mlflow.traceName):
# the trace list shows which variant answered which prompt, resume and re-scoring find the calls
# by it (names without the variant, written before, still count), and the store keeps it in the
# trace's own row, where a tag costs a row per trace (about 10% of a trace's writing)
CALL_NAME = "mlflow.traceName"
NAME_SEPARATOR = " | "


@dataclass(frozen=True)
class TraceJob:
    """One call to record as a trace, with the variant run it belongs to."""

    record: CallRecord
    variant: Variant
    run_id: str
    scores: tuple[Score, ...] = ()  # written as assessments on the trace
    tags: tuple[tuple[str, str], ...] = ()  # trace tags instead of the call's name (a judge's)
    seed: str = ""  # a judge call's ledger id: its trace's id is derived from it
    linked: bool = True  # False: not in the run's trace list (a judge's call: eval_view.py)
    # a call whose trace says it failed, sent again (`--resume`): MLflow's log_spans keeps a
    # trace's first state, so its info is written again (trace_batch.py)
    restate: bool = False


def trace_of(experiment_id: str, job: TraceJob, span: Any, scores: bool = True) -> Any:
    """The Trace of one call's span, with the info that log_spans would have derived: its run
    and its tags (the call's name, which `--resume` looks for, or a judge's); and its scores
    (unless `scores` is False: they are written already)."""
    from mlflow.entities import (
        SpanStatusCode,
        Trace,
        TraceData,
        TraceInfo,
        TraceLocation,
        TraceState,
    )

    ok = span.status.status_code == SpanStatusCode.OK
    info = TraceInfo(
        trace_id=span.trace_id,
        trace_location=TraceLocation.from_experiment_id(experiment_id),
        request_time=span.start_time_ns // 1_000_000,
        execution_duration=(span.end_time_ns - span.start_time_ns) // 1_000_000,
        state=TraceState.OK if ok else TraceState.ERROR,
        trace_metadata={mlflow_compat.source_run_key(): job.run_id} if job.linked else {},
        tags=dict(_trace_tags(job)),
        assessments=[feedback(span.trace_id, score) for score in job.scores] if scores else [],
    )
    return Trace(info, TraceData(spans=[span]))


def _trace_tags(job: TraceJob) -> tuple[tuple[str, str], ...]:
    record = job.record
    return job.tags or ((CALL_NAME, call_name(job.variant.id, record.case_id, record.repeat)),)


def call_tag(case_id: str, repeat: int) -> str:
    return f"{case_id}#{repeat}"


def call_name(variant_id: str, case_id: str, repeat: int) -> str:
    """The name of a model call's trace: `gpt-4o-mini | capital-fr#0`."""
    return f"{variant_id}{NAME_SEPARATOR}{call_tag(case_id, repeat)}"


def judge_name(scorer: str, variant_id: str, case_id: str, repeat: int) -> str:
    """The name of a judge call's trace, `judge:correct | gpt-4o-mini | capital-fr#0`: in the
    trace list it is no model call of the run (and call_key reads no call in it)."""
    return f"judge:{scorer}{NAME_SEPARATOR}{call_name(variant_id, case_id, repeat)}"


def call_key(tag: str) -> tuple[str, int] | None:
    """(case_id, repeat) of a call_tag(); None for anything else (a warmup's repeat is negative)."""
    case_id, _, repeat = tag.rpartition("#")
    if case_id and repeat.lstrip("-").isdigit():
        return case_id, int(repeat)
    return None


def call_of(info: Any) -> str:
    """The call a trace records, "<case id>#<repeat>"; "" for a trace that names none. A name
    is read as `<variant id> | <call>` when it has the separator (a variant id with one in it
    is read exactly by call_traces, which knows the variant)."""
    if tag := info.tags.get(CALL_TAG):
        return tag
    name = info.tags.get(CALL_NAME) or ""
    return name.partition(NAME_SEPARATOR)[2] or name


def _call_in_name(name: str, variant_id: str) -> str:
    """The "<case id>#<repeat>" a call trace's name gives for its variant: after the variant's
    prefix, or the whole name (traces named before the variant was in the name)."""
    return name.removeprefix(f"{variant_id}{NAME_SEPARATOR}")


def _call_of_run(info: Any, run_id: str, variant_id: str) -> str:
    """call_of() a trace linked to this variant run, when llmflow wrote it. A name is anyone's to
    give (MLflow's fluent tracing names a trace after its root span), so a trace named like a
    call counts only with the id llmflow derives for that call in this run (_call_ids); the
    llmflow.call tag of traces written before names came in is llmflow's own."""
    if tag := info.tags.get(CALL_TAG):
        return tag
    name = _call_in_name(info.tags.get(CALL_NAME, ""), variant_id)
    key = call_key(name)
    if key is None or info.trace_id != _call_trace_id(run_id, variant_id, *key):
        return ""
    return name


def traces_by_call(client: Any, experiment_id: str, run_id: str, variant_id: str) -> dict[str, str]:
    """The trace id of each call already traced in a variant run, by its call_tag()."""
    traces = call_traces(client, experiment_id, run_id, variant_id)
    return {tag: info.trace_id for tag, info in traces.items()}


def call_traces(client: Any, experiment_id: str, run_id: str, variant_id: str) -> dict[str, Any]:
    """The TraceInfo of each model call traced in a variant run, by its call_tag(); the traces
    of its judges' calls (ROLE_TAG), and any other code's, are left out."""
    found: dict[str, Any] = {}
    page_token = None
    while True:
        page = client.search_traces(
            locations=[experiment_id],
            run_id=run_id,
            max_results=500,
            page_token=page_token,
            include_spans=False,
        )
        for trace in page:
            if ROLE_TAG not in trace.info.tags and (
                call := _call_of_run(trace.info, run_id, variant_id)
            ):
                found[call] = trace.info
        page_token = page.token
        if not page_token:
            return found


def existing_trace_keys(
    client: Any, experiment_id: str, run_id: str, variant_id: str
) -> set[tuple[str, int]]:
    """(case_id, repeat) of the traces already linked to a variant run (for --resume)."""
    keys = (call_key(tag) for tag in call_traces(client, experiment_id, run_id, variant_id))
    return {key for key in keys if key is not None}


@dataclass
class ResumeTraces:
    """What `--resume` finds of a run's traces: the calls whose trace a kill prevented, and
    (variant id, case id, repeat) of those traced as failed (a call sent again restates its
    trace)."""

    untraced: list[tuple[CallRecord, str]]  # (record, variant run id)
    failed: set[tuple[str, str, int]]


def traces_to_resume(
    client: Any,
    experiment_id: str,
    run_ids: dict[str, str],
    records: dict[str, list[CallRecord]],
) -> ResumeTraces:
    """The traces of each variant run of a resumed run, read once (for --resume)."""
    found = ResumeTraces([], set())
    for variant_id, run_id in run_ids.items():
        traced: set[tuple[str, int]] = set()
        for tag, info in call_traces(client, experiment_id, run_id, variant_id).items():
            if (key := call_key(tag)) is not None:
                traced.add(key)
                if _state(info) == "ERROR":
                    found.failed.add((variant_id, *key))
        for record in records.get(variant_id, []):
            if (record.case_id, record.repeat) not in traced:
                found.untraced.append((record, run_id))
    return found


def _state(info: Any) -> str:
    return str(getattr(info.state, "value", info.state))


def build_span(experiment_id: str, job: TraceJob) -> Any:
    """A finished MLflow Span for one call, as the tracing SDK itself would build it."""
    from mlflow.entities import Span, SpanStatus, SpanStatusCode, SpanType
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext

    SpanAttributeKey = mlflow_compat.span_keys()  # noqa: N806 - MLflow's class, by its name
    record, variant = job.record, job.variant
    otel_trace_id, otel_span_id = _otel_ids(job)
    trace_id = _mlflow_trace_id(otel_trace_id)
    attributes: dict[str, Any] = {
        SpanAttributeKey.REQUEST_ID: trace_id,
        SpanAttributeKey.EXPERIMENT_ID: experiment_id,
        SpanAttributeKey.SPAN_TYPE: SpanType.CHAT_MODEL,
        SpanAttributeKey.INPUTS: _inputs(record, variant),
        SpanAttributeKey.MODEL: variant.model,
        SpanAttributeKey.MODEL_PROVIDER: variant.provider,
        SpanAttributeKey.MESSAGE_FORMAT: "openai",
        schema.TAG_VARIANT: variant.id,
        schema.SPAN_CASE: record.case_id,
        schema.SPAN_REPEAT: record.repeat,
        schema.SPAN_CACHED: record.cached,
        schema.SPAN_ATTEMPTS: record.attempts,
    }
    # a root-span attribute with this prefix becomes a trace tag in the store
    for key, value in _trace_tags(job):
        attributes[f"{SpanAttributeKey.TRACE_TAG_PREFIX}{key}"] = value
    cost = _cost(record)
    if cost is not None:
        attributes[SpanAttributeKey.LLM_COST] = cost
    if record.completion is not None:
        attributes[SpanAttributeKey.OUTPUTS] = _outputs(record, variant)
        if (usage := _usage(record)) is not None:
            # MLflow prices a span that has usage but no cost from its own catalog (a
            # self-hosted "gpt-4o-mini" at OpenAI's rate), and no placeholder cost survives a
            # remote server (it refuses the batch): an unpriced call of a model the catalog
            # knows keeps its tokens apart; any other shows them (the trace list's Tokens)
            shown = cost is not None or not mlflow_would_price(variant.model, variant.provider)
            attributes[SpanAttributeKey.CHAT_USAGE if shown else UNPRICED_USAGE] = usage
        if record.usage.details:
            attributes[schema.SPAN_USAGE_DETAILS] = record.usage.details
        status = SpanStatus(SpanStatusCode.OK)
    else:
        attributes[schema.SPAN_ERROR] = f"{record.error_type}: {record.error_message}"
        status = SpanStatus(SpanStatusCode.ERROR, description=record.error_type or "")
    timing = record.timing
    if timing is not None:
        attributes[schema.SPAN_LATENCY] = timing.latency_s
        if timing.ttft_s is not None:
            attributes[schema.SPAN_TTFT] = timing.ttft_s
        start, end = timing.started_ns, timing.ended_ns
    else:
        import time

        start = end = time.time_ns()
    otel_span = ReadableSpan(
        name=f"{variant.provider}.chat",
        context=SpanContext(otel_trace_id, otel_span_id, is_remote=False),
        parent=None,
        start_time=start,
        end_time=end,
        attributes=_encoded(attributes),
        status=status.to_otel_status(),
        resource=Resource.get_empty(),
        events=[],
    )
    return Span(otel_span)


@functools.lru_cache(maxsize=256)
def mlflow_would_price(model: str, provider: str) -> bool:
    """Whether MLflow's own catalog has a price for this model name (it would cost a span that
    has tokens and no cost with it), as MLflow asks it when it stores a span."""
    usage = {"input_tokens": 1000, "output_tokens": 1000}
    return mlflow_compat.catalog_cost(model, usage, provider) is not None


def _otel_ids(job: TraceJob) -> tuple[int, int]:
    """The trace's OTel trace id and its span's id. A model call's are derived from its run and
    call: the store upserts spans, so writing the same call again (a batch that reached a server
    just before it went away, then `--resume`) updates its one trace instead of adding another.
    A judge's call gets ones derived from its ledger line (a finishing done again after a kill
    rewrites its one trace), or new ones without a line."""
    if job.tags:
        if job.seed:
            return _call_ids(job.run_id, "judge", job.seed, 0)
        return uuid.uuid4().int, uuid.uuid4().int & (2**64 - 1)
    record = job.record
    return _call_ids(job.run_id, record.variant_id, record.case_id, record.repeat)


def _call_ids(run_id: str, variant_id: str, case_id: str, repeat: int) -> tuple[int, int]:
    key = f"{run_id}\0{variant_id}\0{case_id}\0{repeat}"
    digest = hashlib.blake2b(key.encode(), digest_size=24).digest()
    return int.from_bytes(digest[:16], "big"), int.from_bytes(digest[16:], "big") or 1


def _call_trace_id(run_id: str, variant_id: str, case_id: str, repeat: int) -> str:
    """The MLflow trace id of a model call's trace in a variant run."""
    return _mlflow_trace_id(_call_ids(run_id, variant_id, case_id, repeat)[0])


def _mlflow_trace_id(otel_trace_id: int) -> str:
    return mlflow_compat.mlflow_trace_id(otel_trace_id)


def _encoded(attributes: dict[str, Any]) -> dict[str, str]:
    """JSON-encode attribute values, as MLflow stores them."""
    return {key: json.dumps(value) for key, value in attributes.items()}


def _inputs(record: CallRecord, variant: Variant) -> dict[str, Any]:
    return {
        "messages": [{"role": m.role, "content": m.content} for m in record.messages],
        "model": variant.model,
        **record.settings.sent(),
    }


def _outputs(record: CallRecord, variant: Variant) -> dict[str, Any] | str:
    """The answer in the chat format the UI reads; an empty answer is the empty string, which
    the trace list shows as empty (a chat dict with empty content shows as raw JSON there)."""
    completion = record.completion
    assert completion is not None
    if not completion.text:
        return ""
    return {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.text},
                "finish_reason": completion.finish_reason,
            }
        ],
        "model": completion.model_version or variant.model,
    }


def _usage(record: CallRecord) -> dict[str, int] | None:
    """The token usage the UI shows; None (no attribute) when the provider did not report it."""
    usage = record.usage
    if usage.input_tokens is None or usage.output_tokens is None:
        return None
    value = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }
    if usage.cached_input_tokens:
        value["cache_read_input_tokens"] = usage.cached_input_tokens
    if usage.cache_write_input_tokens:
        value["cache_creation_input_tokens"] = usage.cache_write_input_tokens
    if usage.cache_write_1h_input_tokens:  # MLflow's name for the part written for an hour
        value["cache_creation_input_tokens_above_1hr"] = usage.cache_write_1h_input_tokens
    return value


def _cost(record: CallRecord) -> dict[str, float] | None:
    """llmflow's price of the call: nothing for a cached answer, None when unpriced."""
    if record.cached:
        return {"input_cost": 0.0, "output_cost": 0.0, "total_cost": 0.0}
    cost = record.cost
    if cost is None or cost.usd is None:
        return None
    return {
        "input_cost": cost.input_usd if cost.input_usd is not None else 0.0,
        "output_cost": cost.output_usd if cost.output_usd is not None else cost.usd,
        "total_cost": cost.usd,
    }
