"""Older servers. One without batched span ingestion (MLflow before 3.4, or a proxy without the
OTLP route): the trace writer finds out on the first batch, says so once in a debug line, and
writes every trace the way MLflow's own exporter does for such a server, one request per trace.
MLflow 3.4 and 3.5 take the spans of one trace per OTLP request; before 3.13 a server takes no
trace name from the spans, so every trace's info goes too, before its link to the run.

The "old server" is the real `mlflow server` behind a small proxy that answers as an older one
would: its /version says 3.3.0, 3.5.1 or 3.10.1, or its /v1/traces route is missing (404); as
3.5.1 it refuses the spans of several traces in one request, with that release's 422. Everything
else goes through to the real server, so each path is checked end to end.
"""

from __future__ import annotations

import http.server
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from llmflow.scoring import Score
from llmflow.tracking.fluent import fluent_store
from llmflow.tracking.traces import TraceJob, call_of
from llmflow.worker.tracing import RunState
from tests.server.servers import MlflowServer
from tests.worker.test_client import open_variant_run, records

pytestmark = pytest.mark.server

_HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}


class OldServer(http.server.ThreadingHTTPServer):
    """A proxy to `upstream` that plays an older MLflow: `mode` "version" (3.3.0), "no-route",
    or the release it says it is ("3.5.1", "3.10.1")."""

    def __init__(self, upstream: str, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream, self.mode = upstream, mode
        self.seen: list[str] = []  # "METHOD path" of every request
        self.unavailable: dict[
            str, set[int]
        ] = {}  # path -> which of its requests (1, 2, ...) get a 503

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(http.server.BaseHTTPRequestHandler):
    server: OldServer

    def _handle(self) -> None:
        self.server.seen.append(f"{self.command} {self.path}")
        path = self.path.split("?")[0]
        nth = sum(1 for line in self.server.seen if line.split(" ")[1].split("?")[0] == path)
        if nth in self.server.unavailable.get(path, ()):
            return self._answer(503, b"Service Unavailable")
        if self.server.mode == "version" and path == "/version":
            return self._answer(200, b"3.3.0")
        if self.server.mode[0].isdigit() and path == "/version":
            return self._answer(200, self.server.mode.encode())
        if self.server.mode == "no-route" and path == "/v1/traces":
            return self._answer(404, b"Not Found")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.server.mode == "3.5.1" and path == "/v1/traces" and _traces_in(body) > 1:
            detail = b"Cannot store OpenTelemetry spans: All spans must belong to the same trace."
            return self._answer(422, b'{"detail": "' + detail + b'"}')
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        request = urllib.request.Request(
            self.server.upstream + self.path, body, headers, method=self.command
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                self._answer(response.status, response.read(), response.headers)
        except urllib.error.HTTPError as e:
            self._answer(e.code, e.read(), e.headers)

    def _answer(self, status: int, body: bytes, headers=None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            if key.lower() not in _HOP_HEADERS:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, *args: object) -> None:
        pass


def _traces_in(body: bytes | None) -> int:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest.FromString(body or b"")
    return len(
        {
            span.trace_id
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        }
    )


def _serving(upstream: str, mode: str) -> Iterator[OldServer]:
    server = OldServer(upstream, mode)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=["version", "no-route"])
def old_server(request, pg_mlflow: MlflowServer) -> Iterator[OldServer]:
    yield from _serving(pg_mlflow.url, request.param)


SCORES = (Score("a", True, True, "found"), Score("b", 0.5, False, "half"))


def test_an_old_server_gets_every_trace_one_by_one_after_one_try(
    tmp_path: Path, old_server: OldServer, pg_mlflow: MlflowServer, caplog
):
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, old_server.url)
    state = RunState()
    state.tracking_uri, state.experiment_id = old_server.url, experiment_id
    with caplog.at_level(logging.DEBUG, logger="llmflow.worker.tracing"):
        state.write([TraceJob(r, variant, run_id, SCORES) for r in records(variant, 0, 3)])
        state.write([TraceJob(r, variant, run_id, SCORES) for r in records(variant, 3, 2)])
    assert (state.written, state.failure_reason) == (5, "")
    batches = [line for line in old_server.seen if line.startswith("POST /v1/traces")]
    assert len(batches) == (1 if old_server.mode == "no-route" else 0)
    fallbacks = [r for r in caplog.records if "no batched span ingestion" in r.getMessage()]
    assert len(fallbacks) == 1
    client = MlflowClient(pg_mlflow.url)  # read from the real server, not through the proxy
    # MLflow resolves the spans' mlflow-artifacts: location against the global tracking URI
    with fluent_store(pg_mlflow.url):
        traces = client.search_traces(locations=[experiment_id], run_id=run_id)
    assert sorted(call_of(t.info) for t in traces) == [f"case-{i}#0" for i in range(5)]
    (span,) = traces[0].data.spans
    assert span.name == f"{variant.provider}.chat" and span.outputs
    # each trace's info carried its scores: no request per assessment
    assert all(sorted(a.name for a in t.info.assessments) == ["a", "b"] for t in traces)
    assert not [line for line in old_server.seen if "/assessments" in line]


@pytest.fixture(params=["3.5.1", "3.10.1"])
def older_server(request, pg_mlflow: MlflowServer) -> Iterator[OldServer]:
    yield from _serving(pg_mlflow.url, request.param)


def test_a_server_before_3_13_gets_every_trace_named_in_its_info_before_its_link(
    tmp_path: Path, older_server: OldServer, pg_mlflow: MlflowServer
):
    """3.5.1: one OTLP request per trace (a batch of several is its 422); 3.10.1: one batch.
    Both: every trace's info, with its name (and scores, when it has some), before the link."""
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, older_server.url)
    state = RunState()
    state.tracking_uri, state.experiment_id = older_server.url, experiment_id
    first, second, third = records(variant, 0, 3)
    jobs = [TraceJob(first, variant, run_id, SCORES), TraceJob(second, variant, run_id)]
    state.write(jobs)
    state.write([TraceJob(third, variant, run_id)])
    assert (state.written, state.failure_reason) == (3, "")
    seen = older_server.seen
    batches = [line for line in seen if line.startswith("POST /v1/traces")]
    assert len(batches) == (3 if older_server.mode == "3.5.1" else 2)
    infos = [i for i, line in enumerate(seen) if line == "POST /api/3.0/mlflow/traces"]
    links = [i for i, line in enumerate(seen) if "link-to-run" in line]
    assert len(infos) == 3 and len(links) == 2
    assert infos[1] < links[0] < infos[2] < links[1]  # each batch's infos, then its link
    client = MlflowClient(pg_mlflow.url)
    traces = client.search_traces(locations=[experiment_id], run_id=run_id)
    assert sorted(call_of(t.info) for t in traces) == [f"case-{i}#0" for i in range(3)]
    assessed = {call_of(t.info): len(t.info.assessments) for t in traces}
    assert assessed == {"case-0#0": 2, "case-1#0": 0, "case-2#0": 0}


@pytest.fixture
def server_3_5(pg_mlflow: MlflowServer) -> Iterator[OldServer]:
    yield from _serving(pg_mlflow.url, "3.5.1")


def test_a_server_that_answers_late_is_still_asked_what_it_takes(
    tmp_path: Path, server_3_5: OldServer, pg_mlflow: MlflowServer
):
    """/version unanswered at the first write (a server restarting) is not taken for a current
    release: the writer waits, asks again, and writes as 3.5.1 takes it. A batch cut short after
    its first span goes on from the second, not from the start."""
    server = server_3_5
    server.unavailable = {"/version": {1}, "/v1/traces": {2}}
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, server.url)
    state = RunState()
    state.tracking_uri, state.experiment_id = server.url, experiment_id
    state.write([TraceJob(r, variant, run_id) for r in records(variant, 0, 3)])
    assert (state.written, state.failure_reason) == (3, "")
    batches = [line for line in server.seen if line.startswith("POST /v1/traces")]
    assert len(batches) == 4  # the three traces, and the second one again after its 503
    assert len([line for line in server.seen if line == "POST /api/3.0/mlflow/traces"]) == 3
    traces = MlflowClient(pg_mlflow.url).search_traces(locations=[experiment_id], run_id=run_id)
    assert sorted(call_of(t.info) for t in traces) == [f"case-{i}#0" for i in range(3)]


@pytest.fixture
def server_3_10(pg_mlflow: MlflowServer) -> Iterator[OldServer]:
    yield from _serving(pg_mlflow.url, "3.10.1")


def test_a_batch_cut_short_among_its_infos_sends_each_once_then_links(
    tmp_path: Path, server_3_10: OldServer, pg_mlflow: MlflowServer
):
    """3.10.1 refuses the second trace's info once (a 503): the retry sends the infos not sent
    yet, neither the spans again nor the first info, and links the traces after the last."""
    server = server_3_10
    server.unavailable = {"/api/3.0/mlflow/traces": {2}}
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, server.url)
    state = RunState()
    state.tracking_uri, state.experiment_id = server.url, experiment_id
    state.write([TraceJob(r, variant, run_id, SCORES) for r in records(variant, 0, 3)])
    assert (state.written, state.failure_reason) == (3, "")
    seen = server.seen
    assert len([line for line in seen if line.startswith("POST /v1/traces")]) == 1
    infos = [i for i, line in enumerate(seen) if line == "POST /api/3.0/mlflow/traces"]
    (link,) = [i for i, line in enumerate(seen) if "link-to-run" in line]
    assert len(infos) == 4 and infos[-1] < link  # the three, and the refused one again
    traces = MlflowClient(pg_mlflow.url).search_traces(locations=[experiment_id], run_id=run_id)
    assert sorted(len(t.info.assessments) for t in traces) == [2, 2, 2]
