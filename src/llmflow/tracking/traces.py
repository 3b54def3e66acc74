"""One MLflow trace per call, written by a background thread so that store writes overlap calls.

Each trace is a single CHAT_MODEL span carrying the request as inputs and the answer as outputs,
with the attributes the MLflow UI reads for tokens, model, provider and cost. The cost is
llmflow's own (genai-prices or the local cost model); MLflow's catalog is never asked.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass

from ..plan import Variant
from ..types import CallRecord

logger = logging.getLogger(__name__)

_STOP = object()


@dataclass(frozen=True)
class _Job:
    record: CallRecord
    variant: Variant
    run_id: str


class TraceWriter:
    """Accepts records from any thread; `close()` waits until every trace is written."""

    def __init__(self, experiment_id: str) -> None:
        self._experiment_id = experiment_id
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.written = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._drain, name="llmflow-traces", daemon=True)
        self._thread.start()

    def submit(self, record: CallRecord, variant: Variant, run_id: str) -> None:
        self._queue.put(_Job(record, variant, run_id))

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()
        import mlflow

        mlflow.flush_trace_async_logging(terminate=False)

    def _drain(self) -> None:
        while (job := self._queue.get()) is not _STOP:
            try:
                log_call_trace(self._experiment_id, job.run_id, job.variant, job.record)
                self.written += 1
            except Exception:  # a lost trace must not lose the run; it is counted and reported
                self.failed += 1
                logger.warning("could not write the trace of a call", exc_info=True)


def log_call_trace(experiment_id: str, run_id: str, variant: Variant, record: CallRecord) -> None:
    import mlflow
    from mlflow.entities import SpanStatusCode, SpanType
    from mlflow.tracing.constant import SpanAttributeKey, TraceMetadataKey

    inputs = {
        "messages": [{"role": m.role, "content": m.content} for m in record.messages],
        "model": variant.model,
        **record.settings.sent(),
    }
    attributes = {
        SpanAttributeKey.MODEL: variant.model,
        SpanAttributeKey.MODEL_PROVIDER: variant.provider,
        SpanAttributeKey.MESSAGE_FORMAT: "openai",
        "llmflow.variant_id": variant.id,
        "llmflow.case_id": record.case_id,
        "llmflow.repeat": record.repeat,
        "llmflow.cached": record.cached,
        "llmflow.attempts": record.attempts,
    }
    timing = record.timing
    span = mlflow.start_span_no_context(
        name=f"{variant.provider}.chat",
        span_type=SpanType.CHAT_MODEL,
        inputs=inputs,
        attributes=attributes,
        metadata={TraceMetadataKey.SOURCE_RUN: run_id},
        tags={"llmflow.variant_id": variant.id, "llmflow.case_id": record.case_id},
        experiment_id=experiment_id,
        start_time_ns=timing.started_ns if timing else None,
    )
    if record.completion is None:
        span.set_attribute("llmflow.error", f"{record.error_type}: {record.error_message}")
        span.end(status=SpanStatusCode.ERROR)
        return
    usage = record.completion.usage
    span.set_attribute(SpanAttributeKey.CHAT_USAGE, _usage_attribute(record))
    # an explicit null tells MLflow "no cost known" rather than letting it guess one
    span.set_attribute(SpanAttributeKey.LLM_COST, _cost_attribute(record))
    if timing is not None:
        span.set_attribute("llmflow.latency_s", timing.latency_s)
        if timing.ttft_s is not None:
            span.set_attribute("llmflow.ttft_s", timing.ttft_s)
    if usage.details:
        span.set_attribute("llmflow.usage_details", usage.details)
    outputs = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": record.completion.text},
                "finish_reason": record.completion.finish_reason,
            }
        ],
        "model": record.completion.model_version or variant.model,
    }
    span.end(outputs=outputs, end_time_ns=timing.ended_ns if timing else None)


def _usage_attribute(record: CallRecord) -> dict[str, int]:
    usage = record.usage
    value = {
        "input_tokens": usage.input_tokens or 0,
        "output_tokens": usage.output_tokens or 0,
        "total_tokens": usage.total_tokens or 0,
    }
    if usage.cached_input_tokens:
        value["cache_read_input_tokens"] = usage.cached_input_tokens
    return value


def _cost_attribute(record: CallRecord) -> dict[str, float] | None:
    cost = record.cost
    if cost is None or cost.usd is None:
        return None
    return {
        "input_cost": cost.input_usd if cost.input_usd is not None else 0.0,
        "output_cost": cost.output_usd if cost.output_usd is not None else cost.usd,
        "total_cost": cost.usd,
    }
