"""How a batch of spans reaches the tracking store, by what the store takes: a SQL store in
this process, or an MLflow server, whose release decides (its /version):

- 3.13 and later: the spans of many traces in one OTLP request (`/v1/traces`), the call's name
  carried by a root-span attribute;
- 3.6 to 3.12: the same, but the name reaches the trace only in its info (start_trace);
- 3.4 and 3.5: one trace per OTLP request;
- before 3.4, or without the OTLP route: each trace as MLflow's own exporter writes it, its
  info, then its spans as an artifact (`upload_trace`).

Checked against real 3.4.0 and 3.10.1 servers; tests/server/test_old_server.py plays 3.3, 3.5.1
and 3.10.1 in front of a current server.

The oldest server llmflow writes to is MINIMUM_SERVER, MLflow 3.0: its traces (the v3 trace
info, assessments) are MLflow 3's. Each branch above for an older 3.x is a few lines, tested,
and kept: 3.6 to 3.12 are common on team servers still, and the one-by-one path before 3.4
also serves a proxy that forwards MLflow's REST API but not its OTLP route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import TrackingError
from . import mlflow_compat

MINIMUM_SERVER = "3.0"


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

    version = mlflow_compat.server_version(mlflow_compat.tracking_store(client))
    if version is None:
        return TraceServer()
    if version < Version(MINIMUM_SERVER):
        raise TrackingError(
            f"the tracking server runs MLflow {version}: llmflow writes traces to MLflow "
            f"{MINIMUM_SERVER} or later"
        )
    return TraceServer(
        one_trace_per_request=version < Version("3.6"), sends_every_info=version < Version("3.13")
    )


def log_spans(
    client: Any,
    experiment_id: str,
    spans: list[Any],
    one_trace_per_request: bool = False,
    on_sent: Callable[[int], None] | None = None,
) -> bool:
    """The spans in one request (each in a request of its own to a server that takes one trace
    per request, `on_sent(1)` after each); False, with nothing written, when the server has no
    batched span ingestion (MLflow before 3.4): it takes them one trace at a time
    (`mlflow_compat.upload_trace`)."""
    store = mlflow_compat.tracking_store(client)
    try:
        for batch in [[span] for span in spans] if one_trace_per_request else [spans]:
            store.log_spans(experiment_id, batch)
            if on_sent is not None:
                on_sent(len(batch))
    except Exception as e:  # noqa: BLE001 - re-raised unless it is the missing endpoint
        if not mlflow_compat.no_batch_endpoint(e):
            raise
        return False
    return True
