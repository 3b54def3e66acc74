"""One MLflow trace per call: the span built from a CallRecord, and the batched write.

Each trace is a single CHAT_MODEL span carrying the request as inputs and the answer as outputs,
with the attributes the MLflow UI reads for tokens, model, provider and cost. The cost is
llmflow's own (genai-prices or the local cost model); MLflow's catalog is never asked.

Why not `mlflow.start_span` per call: measured here on sqlite, that path costs ~22 ms of MLflow
CPU per trace and its async queue drops traces when full. Building the spans ourselves and
writing them with the store's `log_spans` (many traces in one session) plus
`link_traces_to_run` costs ~2 ms per trace. `trace_child` runs these writes in a child process.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..plan import Variant
from ..types import CallRecord

if TYPE_CHECKING:
    from ..scoring import Score

BATCH = 100  # link_traces_to_run takes at most 100 trace ids
# a model call's trace is named "<case id>#<repeat>" (MLflow's mlflow.traceName): the trace list
# shows which prompt each answers, resume and re-scoring find the calls by it, and the store keeps
# it in the trace's own row, where a tag costs a row per trace (about 10% of a trace's writing)
CALL_NAME = "mlflow.traceName"
CALL_TAG = "llmflow.call"  # the tag that named the call in traces written before: still read
UNPRICED_USAGE = "llmflow.token_usage"  # an unpriced call's token counts
ROLE_TAG = "llmflow.role"  # "judge" on a judge call's trace: not a model call of the run
OTLP_PATH = "/v1/traces"  # MLflow's batched span ingestion (3.4 and later)


@dataclass(frozen=True)
class TraceJob:
    """One call to record as a trace, with the variant run it belongs to."""

    record: CallRecord
    variant: Variant
    run_id: str
    scores: tuple[Score, ...] = ()  # written as assessments on the trace
    tags: tuple[tuple[str, str], ...] = ()  # trace tags instead of the call's name (a judge's)


def write_traces(client: Any, experiment_id: str, jobs: list[TraceJob]) -> None:
    """Write the traces of up to BATCH calls in one store session (one request per trace to a
    server without batched ingestion), then their scores as assessments and their links to
    their runs (trace_child._Batch does the same, with retries)."""
    server = trace_server(client)
    spans = [build_span(experiment_id, job) for job in jobs]
    infos_sent = 0
    if not log_spans(client, experiment_id, spans, server.one_trace_per_request):
        for job, span in zip(jobs, spans, strict=True):
            upload_trace(client, experiment_id, job, span)
        infos_sent = len(jobs)  # each trace's info carried its name and scores
    if server.sends_every_info:  # the infos before the links: see TraceServer
        log_job_scores(client, experiment_id, jobs, spans, infos_sent, server=server)
        link_runs(client, jobs, spans)
    else:
        link_runs(client, jobs, spans)
        log_job_scores(client, experiment_id, jobs, spans, infos_sent)


def link_runs(client: Any, jobs: list[TraceJob], spans: list[Any]) -> None:
    for run_id, trace_ids in trace_ids_by_run(jobs, spans).items():
        client.link_traces_to_run(trace_ids, run_id)


def trace_ids_by_run(jobs: list[TraceJob], spans: list[Any]) -> dict[str, list[str]]:
    """The ids of the jobs' traces (their spans, in the same order), by the run of each."""
    by_run: dict[str, list[str]] = {}
    for job, span in zip(jobs, spans, strict=True):
        by_run.setdefault(job.run_id, []).append(span.trace_id)
    return by_run


@dataclass(frozen=True)
class TraceServer:
    """What the tracking store takes of a batch of traces, by its MLflow release (a SQL store
    in this process takes everything this MLflow writes):

    - one_trace_per_request: the OTLP route of MLflow 3.4 and 3.5 stores the spans of one
      trace per request, and answers a batch of several with a 422;
    - sends_every_info: before 3.13 a server keeps the `mlflow.traceTag.*` attributes of a root
      span on the span, so a trace's name (its call) reaches it only in the trace's info, which
      start_trace sends (one request per trace, as for a scored trace anyway). The info then
      goes before the link to the run: a trace linked is a trace named, so `--resume` never
      links one twice, which servers before 3.6 refuse."""

    one_trace_per_request: bool = False
    sends_every_info: bool = False


def trace_server(client: Any) -> TraceServer:
    """The TraceServer of the client's store; one request (GET /version, which MLflow's own
    log_spans makes and caches) for a server."""
    from packaging.version import Version

    store = client._tracking_client.store
    server_version = getattr(store, "_get_server_version", None)
    if server_version is None:
        return TraceServer()
    version = server_version(store.get_host_creds())
    if version is None:  # log_spans refuses it: each trace goes with its info (upload_trace)
        return TraceServer()
    return TraceServer(
        one_trace_per_request=version < Version("3.6"), sends_every_info=version < Version("3.13")
    )


def log_job_scores(
    client: Any,
    experiment_id: str,
    jobs: list[TraceJob],
    spans: list[Any],
    done: int = 0,
    on_logged: Callable[[int], None] | None = None,
    server: TraceServer | None = None,
) -> None:
    """The jobs' scores as assessments on their (written) traces, less the writes `done`
    already; `on_logged(n)` after each write (n of them). A write is one score on a SQL store,
    one job (its trace's info sent, or not needed) on a server.

    A SQL store takes them in one statement (assessments.log_scores). MLflow's server has no
    batch endpoint for assessments, but its start_trace takes a trace's info with its
    assessments and, for a trace log_spans already wrote, adds them (MLflow's own exporter sends
    a trace's spans, then its info with the assessments logged while it ran, the same way): one
    request per scored trace instead of one per score (measured here, a server on PostgreSQL:
    113 ms for a trace's 5 scores, 78 ms for each score alone). A server that takes no trace
    name from the spans (TraceServer.sends_every_info) gets every trace's info."""
    from .assessments import batchable, log_scores

    store = client._tracking_client.store
    if batchable(store):
        pairs = [
            (span.trace_id, s) for job, span in zip(jobs, spans, strict=True) for s in job.scores
        ]
        log_scores(client, pairs[done:], on_logged=on_logged)
        return
    every_info = server is not None and server.sends_every_info
    for job, span in list(zip(jobs, spans, strict=True))[done:]:
        if job.scores or every_info:
            store.start_trace(_trace_of(experiment_id, job, span).info)
        if on_logged is not None:
            on_logged(1)


def log_spans(
    client: Any, experiment_id: str, spans: list[Any], one_trace_per_request: bool = False
) -> bool:
    """The spans in one request (each in a request of its own to a server that takes one trace
    per request); False, with nothing written, when the server has no batched span ingestion
    (MLflow before 3.4): it takes them one trace at a time (`upload_trace`)."""
    store = client._tracking_client.store  # the store's batch API: MlflowClient has no public twin
    try:
        for batch in [[span] for span in spans] if one_trace_per_request else [spans]:
            store.log_spans(experiment_id, batch)
    except Exception as e:  # noqa: BLE001 - re-raised unless it is the missing endpoint
        if not no_batch_endpoint(e):
            raise
        return False
    return True


def no_batch_endpoint(error: BaseException) -> bool:
    """The server cannot take a batch of spans: too old (MLflow's own check of its version), no
    OTLP route (404/405), or a store behind it that logs no spans (501)."""
    text = str(error)
    if isinstance(error, NotImplementedError):
        return "less than 3.4" in text
    return OTLP_PATH in text and any(f"error code {code}" in text for code in (404, 405, 501))


def upload_trace(client: Any, experiment_id: str, job: TraceJob, span: Any) -> None:
    """One trace as MLflow's exporter writes it to a server before 3.4: its info, then its
    spans as the trace's artifact."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.tracing.client import TracingClient
    from mlflow.tracing.utils import TraceJSONEncoder
    from mlflow.tracing.utils.artifact_utils import get_artifact_uri_for_trace

    trace = _trace_of(experiment_id, job, span)
    info = TracingClient(client.tracking_uri).start_trace(trace.info)
    # what TracingClient's private _upload_trace_data does, with the server's URI given (an
    # mlflow-artifacts: location is otherwise resolved against the global URI)
    repository = get_artifact_repository(
        get_artifact_uri_for_trace(info), tracking_uri=client.tracking_uri
    )
    repository.upload_trace_data(
        json.dumps(trace.data.to_dict(), cls=TraceJSONEncoder, ensure_ascii=False)
    )


def _trace_of(experiment_id: str, job: TraceJob, span: Any) -> Any:
    """The Trace of one call's span, with the info that log_spans would have derived: its run
    and its tags (the call's name, which `--resume` looks for, or a judge's); and its scores."""
    from mlflow.entities import Trace, TraceData, TraceInfo, TraceLocation, TraceState
    from mlflow.entities.span import SpanStatusCode
    from mlflow.tracing.constant import TraceMetadataKey

    from .assessments import feedback

    ok = span.status.status_code == SpanStatusCode.OK
    info = TraceInfo(
        trace_id=span.trace_id,
        trace_location=TraceLocation.from_experiment_id(experiment_id),
        request_time=span.start_time_ns // 1_000_000,
        execution_duration=(span.end_time_ns - span.start_time_ns) // 1_000_000,
        state=TraceState.OK if ok else TraceState.ERROR,
        trace_metadata={TraceMetadataKey.SOURCE_RUN: job.run_id},
        tags=dict(_trace_tags(job)),
        assessments=[feedback(span.trace_id, score) for score in job.scores],
    )
    return Trace(info, TraceData(spans=[span]))


def _trace_tags(job: TraceJob) -> tuple[tuple[str, str], ...]:
    return job.tags or ((CALL_NAME, call_tag(job.record.case_id, job.record.repeat)),)


def call_tag(case_id: str, repeat: int) -> str:
    return f"{case_id}#{repeat}"


def call_key(tag: str) -> tuple[str, int] | None:
    """(case_id, repeat) of a call_tag(); None for anything else (a warmup's repeat is negative)."""
    case_id, _, repeat = tag.rpartition("#")
    if case_id and repeat.lstrip("-").isdigit():
        return case_id, int(repeat)
    return None


def call_of(info: Any) -> str:
    """The call a trace records, "<case id>#<repeat>"; "" for a trace that names none."""
    return info.tags.get(CALL_TAG) or info.tags.get(CALL_NAME) or ""


def _call_of_run(info: Any, run_id: str, variant_id: str) -> str:
    """call_of() a trace linked to this variant run, when llmflow wrote it. A name is anyone's to
    give (MLflow's fluent tracing names a trace after its root span), so a trace named like a
    call counts only with the id llmflow derives for that call in this run (_call_ids); the
    llmflow.call tag of traces written before names came in is llmflow's own."""
    if tag := info.tags.get(CALL_TAG):
        return tag
    name = info.tags.get(CALL_NAME, "")
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


def untraced(
    client: Any,
    experiment_id: str,
    run_ids: dict[str, str],
    records: dict[str, list[CallRecord]],
) -> Iterator[tuple[CallRecord, str]]:
    """(record, variant run id) of each call whose trace a kill prevented (for --resume)."""
    for variant_id, run_id in run_ids.items():
        traced = existing_trace_keys(client, experiment_id, run_id, variant_id)
        for record in records.get(variant_id, []):
            if (record.case_id, record.repeat) not in traced:
                yield record, run_id


def build_span(experiment_id: str, job: TraceJob) -> Any:
    """A finished MLflow Span for one call, as the tracing SDK itself would build it."""
    from mlflow.entities import Span, SpanType
    from mlflow.entities.span import SpanStatus, SpanStatusCode
    from mlflow.tracing.constant import TRACE_REQUEST_ID_PREFIX, SpanAttributeKey
    from mlflow.tracing.utils import build_otel_context, encode_trace_id
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan

    record, variant = job.record, job.variant
    otel_trace_id, otel_span_id = _otel_ids(job)
    trace_id = TRACE_REQUEST_ID_PREFIX + encode_trace_id(otel_trace_id)
    attributes: dict[str, Any] = {
        SpanAttributeKey.REQUEST_ID: trace_id,
        SpanAttributeKey.EXPERIMENT_ID: experiment_id,
        SpanAttributeKey.SPAN_TYPE: SpanType.CHAT_MODEL,
        SpanAttributeKey.INPUTS: _inputs(record, variant),
        SpanAttributeKey.MODEL: variant.model,
        SpanAttributeKey.MODEL_PROVIDER: variant.provider,
        SpanAttributeKey.MESSAGE_FORMAT: "openai",
        "llmflow.variant_id": variant.id,
        "llmflow.case_id": record.case_id,
        "llmflow.repeat": record.repeat,
        "llmflow.cached": record.cached,
        "llmflow.attempts": record.attempts,
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
            # remote server (it refuses the batch): an unpriced call keeps its tokens apart
            usage_key = SpanAttributeKey.CHAT_USAGE if cost is not None else UNPRICED_USAGE
            attributes[usage_key] = usage
        if record.usage.details:
            attributes["llmflow.usage_details"] = record.usage.details
        status = SpanStatus(SpanStatusCode.OK)
    else:
        attributes["llmflow.error"] = f"{record.error_type}: {record.error_message}"
        status = SpanStatus(SpanStatusCode.ERROR, description=record.error_type or "")
    timing = record.timing
    if timing is not None:
        attributes["llmflow.latency_s"] = timing.latency_s
        if timing.ttft_s is not None:
            attributes["llmflow.ttft_s"] = timing.ttft_s
        start, end = timing.started_ns, timing.ended_ns
    else:
        import time

        start = end = time.time_ns()
    otel_span = ReadableSpan(
        name=f"{variant.provider}.chat",
        context=build_otel_context(otel_trace_id, otel_span_id),
        parent=None,
        start_time=start,
        end_time=end,
        attributes=_encoded(attributes),
        status=status.to_otel_status(),
        resource=Resource.get_empty(),
        events=[],
    )
    return Span(otel_span)


def _otel_ids(job: TraceJob) -> tuple[int, int]:
    """The trace's OTel trace id and its span's id. A model call's are derived from its run and
    call: the store upserts spans, so writing the same call again (a batch that reached a server
    just before it went away, then `--resume`) updates its one trace instead of adding another.
    A judge's call, which a rescore may make again, gets new ones."""
    if job.tags:
        return uuid.uuid4().int, uuid.uuid4().int & (2**64 - 1)
    record = job.record
    return _call_ids(job.run_id, record.variant_id, record.case_id, record.repeat)


def _call_ids(run_id: str, variant_id: str, case_id: str, repeat: int) -> tuple[int, int]:
    key = f"{run_id}\0{variant_id}\0{case_id}\0{repeat}"
    digest = hashlib.blake2b(key.encode(), digest_size=24).digest()
    return int.from_bytes(digest[:16], "big"), int.from_bytes(digest[16:], "big") or 1


def _call_trace_id(run_id: str, variant_id: str, case_id: str, repeat: int) -> str:
    """The MLflow trace id of a model call's trace in a variant run."""
    from mlflow.tracing.constant import TRACE_REQUEST_ID_PREFIX
    from mlflow.tracing.utils import encode_trace_id

    return TRACE_REQUEST_ID_PREFIX + encode_trace_id(
        _call_ids(run_id, variant_id, case_id, repeat)[0]
    )


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
