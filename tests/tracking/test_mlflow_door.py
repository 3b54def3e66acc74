"""Only the MLflow door (tracking/mlflow_compat.py) reaches MLflow's private names: an import of
an underscore name or of an internal module, an attribute path through a private name, or an
internal module imported by its name as a string."""

from __future__ import annotations

import ast
import contextlib
import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

import llmflow
from llmflow.errors import TrackingError
from llmflow.tracking import mlflow_compat
from llmflow.tracking.span_ingestion import log_spans, trace_server

PACKAGE = Path(llmflow.__file__).parent
DOOR = PACKAGE / "tracking" / "mlflow_compat.py"

# MLflow's modules that its documentation does not offer as API (checked against 3.17.2)
INTERNAL_MODULES = (
    "mlflow.store",
    "mlflow.utils",
    "mlflow.protos",
    "mlflow.server",
    "mlflow.tracing.utils",
    "mlflow.tracing.client",
    "mlflow.tracing.constant",
    "mlflow.tracing.trace_manager",
    "mlflow.tracing.provider",
)
# private members of MLflow's objects that llmflow has reached (on a client, a store)
PRIVATE_MEMBERS = {"_tracking_client", "_get_server_version", "_upload_trace_data"}


def _private_module(module: str) -> bool:
    parts = module.split(".")
    if parts[0] != "mlflow":
        return False
    if any(part.startswith("_") and not part.endswith("__") for part in parts):  # not __version__
        return True
    return any(module == m or module.startswith(f"{m}.") for m in INTERNAL_MODULES)


def _dotted(node: ast.expr) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _import_offence(node: ast.Import | ast.ImportFrom) -> str | None:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names if _private_module(a.name)]
        return f"import {names[0]}" if names else None
    module = node.module or ""
    if module.split(".")[0] != "mlflow":
        return None
    if _private_module(module) or any(a.name.startswith("_") for a in node.names):
        return f"from {module} import {', '.join(a.name for a in node.names)}"
    return None


def _attribute_offence(node: ast.Attribute) -> str | None:
    if node.attr in PRIVATE_MEMBERS:
        return f"MLflow's private member .{node.attr}"
    path = _dotted(node)
    if path and path[0] == "mlflow" and _private_module(".".join(path)):
        return ".".join(path)
    return None


def _offence(node: ast.AST) -> str | None:
    if isinstance(node, ast.Import | ast.ImportFrom):
        return _import_offence(node)
    if isinstance(node, ast.Attribute):
        return _attribute_offence(node)
    if isinstance(node, ast.Call):  # import_without("mlflow.store..."), import_module(...)
        for arg in node.args:
            if isinstance(arg, ast.Constant) and _private_module(str(arg.value)):
                return f"the module {arg.value!r} by name"
    return None


def offences(path: Path, source: str) -> list[str]:
    """Each reach of a private MLflow name in one module, as "file:line: what"."""
    tree = ast.parse(source, filename=str(path))
    found: dict[int, str] = {}
    for node in ast.walk(tree):  # outer first: a path's longest form names its line
        if (what := _offence(node)) and node.lineno not in found:  # type: ignore[attr-defined]
            found[node.lineno] = what  # type: ignore[attr-defined]
    return [f"{path}:{line}: {what}" for line, what in sorted(found.items())]


def test_no_module_but_the_door_reaches_a_private_mlflow_name():
    found = [
        offence
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != DOOR
        for offence in offences(path.relative_to(PACKAGE.parent), path.read_text())
    ]
    assert not found, "private MLflow names outside tracking/mlflow_compat.py:\n" + "\n".join(found)


def test_the_check_finds_each_kind_of_reach():
    source = "\n".join(
        [
            "from mlflow.tracing.utils import encode_trace_id",
            "from mlflow.tracking._tracking_service.utils import _SERVER_ARTIFACT_ROOT_ENV_VAR",
            "from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS",
            "import mlflow.store.tracking.rest_store",
            "store = client._tracking_client.store",
            "RestStore._get_server_version.cache_clear()",
            "mlflow.tracking._model_registry.utils",
            'import_without("mlflow.store.tracking.sqlalchemy_store", ())',
            "from mlflow.entities import Feedback, SpanStatusCode",
            "from mlflow.exceptions import MlflowException",
            "import mlflow.pyfunc",
            'tags.get("mlflow.parentRunId")',
            "mlflow.__version__",
        ]
    )
    found = offences(Path("m.py"), source)
    assert [line.split(":")[1] for line in found] == [str(n) for n in range(1, 9)], found


def test_the_door_itself_reaches_them():
    """The door is the one place left, so the check above would see its names."""
    assert offences(DOOR, DOOR.read_text())


class _Server(http.server.ThreadingHTTPServer):
    """An MLflow server as far as log_spans sees it: its /version says `versions` in turn (None:
    a 404), its /v1/traces answers `status` with `body`."""

    def __init__(self, status: int, body: bytes, versions: list[str | None]) -> None:
        super().__init__(("127.0.0.1", 0), _Answer)
        self.status, self.body, self.versions = status, body, versions

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Answer(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        versions = self.server.versions  # the last one stays
        version = versions.pop(0) if len(versions) > 1 else versions[0]
        if version is None:
            return self._answer(404, b"Not Found")
        return self._answer(200, version.encode())

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(self.server.status, self.server.body)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(status: int, body: bytes, versions: list[str | None]) -> Iterator[str]:
    server = _Server(status, body, versions)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()


def spans(n: int) -> list:
    from llmflow.tracking.traces import build_span
    from tests.worker.test_tracing import jobs

    return [build_span("0", job) for job in jobs(n)]


NOT_JSON = {404: b"Not Found", 405: b"Method Not Allowed", 501: b"Not Implemented"}


@pytest.mark.parametrize("status", sorted(NOT_JSON))
def test_a_server_without_the_otlp_route_takes_no_batch(status: int):
    with serving(status, NOT_JSON[status], ["3.17.2"]) as url:
        assert not log_spans(MlflowClient(url), "0", spans(2))


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no experiment 0"}'), (400, b"")],
)
def test_any_other_refusal_of_a_batch_is_raised(status: int, body: bytes):
    from mlflow.exceptions import MlflowException

    with serving(status, body, ["3.17.2"]) as url, pytest.raises(MlflowException):
        log_spans(MlflowClient(url), "0", spans(1))


def test_a_server_too_old_for_batches_takes_none():
    with serving(200, b"{}", ["3.3.0"]) as url:
        assert not log_spans(MlflowClient(url), "0", spans(1))


@pytest.mark.parametrize(
    ("version", "takes"), [("2.22.1", None), ("3.0.0", False), ("3.3.0", False)]
)
def test_a_server_before_the_minimum_is_refused_in_one_line(version: str, takes: bool | None):
    with serving(200, b"{}", [version]) as url:
        if takes is None:
            with pytest.raises(TrackingError, match=f"runs MLflow {version}: .* 3.0 or later"):
                trace_server(MlflowClient(url))
        else:
            assert trace_server(MlflowClient(url)).one_trace_per_request


def test_a_server_that_did_not_answer_its_version_is_asked_again_once_forgotten():
    with serving(200, b"{}", [None, "3.5.1"]) as url:
        store = mlflow_compat.tracking_store(MlflowClient(url))
        with pytest.raises(NotImplementedError) as unknown:
            mlflow_compat.server_version(store)
        assert mlflow_compat.version_unknown(unknown.value)
        with pytest.raises(NotImplementedError):  # MLflow keeps its "unknown"
            mlflow_compat.server_version(store)
        mlflow_compat.forget_server_version()
        assert str(mlflow_compat.server_version(store)) == "3.5.1"


def test_a_moved_constant_falls_back_to_the_value_it_had(monkeypatch, tracking_uri: str):
    keys = (mlflow_compat.source_run_key(), mlflow_compat.logged_artifacts_tag())
    trace_id = mlflow_compat.mlflow_trace_id(2**100 + 7)
    store = mlflow_compat.tracking_store(MlflowClient(tracking_uri))
    assert mlflow_compat.batchable(store)
    for moved in (
        "mlflow.tracing.constant",
        "mlflow.utils.mlflow_tags",
        "mlflow.store.tracking.utils.sql_trace_rollups",
    ):
        monkeypatch.setitem(sys.modules, moved, None)  # an import of it fails
    assert (mlflow_compat.source_run_key(), mlflow_compat.logged_artifacts_tag()) == keys
    assert mlflow_compat.mlflow_trace_id(2**100 + 7) == trace_id
    assert not mlflow_compat.batchable(store)  # one create_assessment each, as on a server
