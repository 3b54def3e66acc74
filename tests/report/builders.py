"""Report data built by hand: fixed latencies and token counts, no server, no clock, no MLflow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmflow.report.data import ReportData, VariantRun, report_data_from_records
from llmflow.types import Usage
from tests.helpers import call_record

NO_USAGE = Usage()  # what a llama.cpp server that sends no usage in streams leaves


def variant(
    name: str,
    latencies: Sequence[float],
    texts: Sequence[str] = (),
    usages: Sequence[Usage] = (),
    model: str | None = None,
    swept: dict[str, Any] | None = None,
) -> VariantRun:
    """A variant whose call on prompt p<i> took latencies[i] s and answered texts[i] with
    usages[i]: one call per prompt, so that variants built alike answer the same prompts."""
    records = [
        call_record(
            name,
            latency,
            **({"text": texts[i]} if i < len(texts) else {}),
            **({"usage": usages[i]} if i < len(usages) else {}),
            case_id=f"p{i}",
        )
        for i, latency in enumerate(latencies)
    ]
    params = {
        "provider": "openai",
        "model": model or name,
        "task_type": "chat",
        "variant_id": name,
        "cost_model": "",
        "temperature": 0.7,
    }
    return VariantRun(run_id=f"run-{name}", params=params, records=records, swept=swept)


def report_data(*variants: VariantRun) -> ReportData:
    return report_data_from_records("provider-comparison", "parent0123456789", variants)
