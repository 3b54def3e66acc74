"""The one door to MLflow's internals: the only module of llmflow that imports a private MLflow
name, reaches a private member, writes MLflow's own tables or reads MLflow's error wording
(tests/tracking/test_mlflow_door.py fails on any other).

Each function names what it reaches, the MLflow releases it was checked against, and the
public API that would replace it where MLflow has one. The pin is `mlflow>=3.17,<4`: a new
minor release is checked here, function by function, not hunted across the tree. MLflow is
imported inside the functions (the CLI's start stays fast).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from packaging.version import Version

# MLflow's words for a server whose /version did not answer (RestStore.log_spans, 3.17.2)
VERSION_UNKNOWN = "could not identify MLflow server version"
_TOO_OLD = "less than 3.4"  # RestStore.log_spans, on a server before 3.4 (3.17.2)
OTLP_PATH = "/v1/traces"  # MLflow's batched span ingestion (3.4 and later)

# Modules the trace writer's child imports at once (mlflow_import.py), by name
TRACING_MODULE = "mlflow.tracing.utils"
SQL_STORE_MODULE = "mlflow.store.tracking.sqlalchemy_store"


def tracking_store(client: Any) -> Any:
    """The store behind an MlflowClient (`client._tracking_client.store`), for its batch API
    (`log_spans`, `start_trace` with assessments, `create_assessment`). Checked against 3.17.2.
    No public twin: MlflowClient has no batch of spans or of assessments."""
    return client._tracking_client.store


def server_version(store: Any) -> Version | None:
    """The MLflow release of the server behind a store (`RestStore._get_server_version`, which
    MLflow's own log_spans calls and caches: one GET /version per process); None for a store
    that is no server (a SQL store in this process). Raises NotImplementedError in MLflow's own
    words (`version_unknown` knows them) when the server did not answer. Checked against
    3.17.2; the public fallback would be a GET of the server's /version route."""
    probe = getattr(store, "_get_server_version", None)
    if probe is None:
        return None
    version: Version | None = probe(store.get_host_creds())
    if version is None:  # not cached: the trace writer waits for a server that did not answer
        raise NotImplementedError(f"log_spans is not supported: {VERSION_UNKNOWN}")
    return version


def version_unknown(error: BaseException) -> bool:
    """MLflow's log_spans (or `server_version`) found no server behind its /version. MLflow
    raises a bare NotImplementedError, with no code: its text is all there is (3.17.2)."""
    return isinstance(error, NotImplementedError) and VERSION_UNKNOWN in str(error)


def forget_server_version() -> None:
    """Forget the server versions MLflow cached (`RestStore._get_server_version.cache_clear`):
    it caches an "unknown" answer for the life of the process, so a server back up would never
    be asked again. Checked against 3.17.2 (an lru_cache); a later MLflow that does not cache
    needs nothing. No public twin."""
    from mlflow.store.tracking.rest_store import RestStore

    cached = getattr(RestStore._get_server_version, "cache_clear", None)
    if cached is not None:
        cached()


def no_batch_endpoint(error: BaseException) -> bool:
    """The server cannot take a batch of spans (RestStore.log_spans): too old (MLflow's own
    check of its version), no OTLP route (404, 405) or a store behind it that logs no spans
    (501). Checked against 3.17.2."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import ENDPOINT_NOT_FOUND, NOT_IMPLEMENTED, ErrorCode

    if isinstance(error, NotImplementedError):
        # a bare NotImplementedError, no code: MLflow's words are all there is
        return _TOO_OLD in str(error)
    # MlflowException keeps the code's name; a JSON error body sets its own code (say
    # RESOURCE_DOES_NOT_EXIST, also a 404): the route is there, the request was refused
    no_route = {ErrorCode.Name(ENDPOINT_NOT_FOUND), ErrorCode.Name(NOT_IMPLEMENTED)}
    if isinstance(error, MlflowException) and error.error_code in no_route:
        return True
    # MLflow maps a 405 to INTERNAL_ERROR, losing the status: only its message keeps it
    text = str(error)
    return OTLP_PATH in text and "error code 405" in text


def upload_trace(tracking_uri: str, trace: Any) -> None:
    """One Trace as MLflow's exporter writes it to a server before 3.4: its info
    (`TracingClient.start_trace`), then its spans as the trace's artifact, what TracingClient's
    private `_upload_trace_data` does, with the server's URI given (an mlflow-artifacts:
    location is otherwise resolved against the global URI). Reaches `mlflow.tracing.client`,
    `mlflow.tracing.utils` and the artifact repository registry. Checked against 3.17.2 (the
    servers: span_ingestion's docstring). No public twin."""
    import json

    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.tracing.client import TracingClient
    from mlflow.tracing.utils import TraceJSONEncoder
    from mlflow.tracing.utils.artifact_utils import get_artifact_uri_for_trace

    info = TracingClient(tracking_uri).start_trace(trace.info)
    repository = get_artifact_repository(
        get_artifact_uri_for_trace(info), tracking_uri=tracking_uri
    )
    repository.upload_trace_data(
        json.dumps(trace.data.to_dict(), cls=TraceJSONEncoder, ensure_ascii=False)
    )


def span_keys() -> Any:
    """MLflow's span attribute keys (`mlflow.tracing.constant.SpanAttributeKey`: inputs,
    outputs, model, provider, cost, token usage, the trace-tag prefix), which its store and UI
    read. Checked against 3.17.2. No public twin: the keys are documented only as strings."""
    from mlflow.tracing.constant import SpanAttributeKey

    return SpanAttributeKey


def source_run_key() -> str:
    """The trace metadata key that links a trace to its run
    (`mlflow.tracing.constant.TraceMetadataKey.SOURCE_RUN`). Checked against 3.17.2; the
    fallback, should the constant move: its value there, the key MLflow's UI reads."""
    try:
        from mlflow.tracing.constant import TraceMetadataKey
    except ImportError:
        return "mlflow.sourceRun"
    return str(TraceMetadataKey.SOURCE_RUN)


def mlflow_trace_id(otel_trace_id: int) -> str:
    """The MLflow trace id of an OTel trace id, as MLflow's tracer makes it: its prefix
    (`mlflow.tracing.constant.TRACE_REQUEST_ID_PREFIX`) and the id's 32 hex digits, which
    OpenTelemetry's public `format_trace_id` writes (what `mlflow.tracing.utils.encode_trace_id`
    calls). Checked against 3.17.2; the fallback, should the constant move: its value there."""
    from opentelemetry.trace import format_trace_id

    try:
        from mlflow.tracing.constant import TRACE_REQUEST_ID_PREFIX
    except ImportError:
        TRACE_REQUEST_ID_PREFIX = "tr-"  # noqa: N806 - MLflow's name for it
    return f"{TRACE_REQUEST_ID_PREFIX}{format_trace_id(otel_trace_id)}"


def catalog_cost(model: str, usage: dict[str, int], provider: str) -> Any:
    """What MLflow's own price catalog says a span of this model and usage costs, None where
    it knows no price (`mlflow.tracing.utils.calculate_cost_by_model_and_token_usage`, which
    its store calls on a span with usage and no cost). Checked against 3.17.2. No public
    twin."""
    from mlflow.tracing.utils import calculate_cost_by_model_and_token_usage

    return calculate_cost_by_model_and_token_usage(model, usage, provider)


def logged_artifacts_tag() -> str:
    """The run tag that lists a run's tables for the MLflow UI
    (`mlflow.utils.mlflow_tags.MLFLOW_LOGGED_ARTIFACTS`), which `mlflow.log_table` appends to;
    llmflow writes it itself because the public `log_table` appends rows to an existing file.
    Checked against 3.17.2; the fallback, should the constant move: its value there."""
    try:
        from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS
    except ImportError:
        return "mlflow.loggedArtifacts"
    return str(MLFLOW_LOGGED_ARTIFACTS)


def relocate_default_experiment(sqlite_store: Path) -> None:
    """Give a copied sqlite store's Default experiment (id 0) the artifact location MLflow
    gives it when it creates a store itself, here: the root its server sets in a private
    variable (`_SERVER_ARTIFACT_ROOT_ENV_VAR`, the name only), else `./mlruns`
    (`mlflow.store.tracking`), made absolute (`mlflow.utils.uri`), written straight into
    MLflow's `experiments` table. Checked against 3.17.2. No public twin: MLflow has no way to
    move an experiment's artifacts."""
    import os
    import sqlite3

    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    from mlflow.tracking._tracking_service.utils import _SERVER_ARTIFACT_ROOT_ENV_VAR
    from mlflow.utils.uri import append_to_uri_path, resolve_uri_if_local

    root = os.environ.get(_SERVER_ARTIFACT_ROOT_ENV_VAR, DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
    location = append_to_uri_path(resolve_uri_if_local(root), "0")
    with sqlite3.connect(sqlite_store) as db:
        db.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", (location,)
        )


def batchable(store: Any) -> bool:
    """Whether assessments go to this store in one statement (`insert_assessments`): a SQL
    store (`mlflow.store.tracking.sqlalchemy_store.SqlAlchemyStore`) without MLflow's opt-in
    rollups (`mlflow.store.tracking.utils.sql_trace_rollups.rollups_enabled`), which need its
    own locking path. Checked against 3.17.2; the fallback, should either move: False, the
    store's `create_assessment`, one each, as for any other store."""
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        from mlflow.store.tracking.utils.sql_trace_rollups import rollups_enabled
    except ImportError:
        return False

    return isinstance(store, SqlAlchemyStore) and not rollups_enabled()


def assessment_columns() -> set[str]:
    """The columns of MLflow's assessments table (`SqlAssessments`). Checked against 3.17.2."""
    from mlflow.store.tracking.dbmodels.models import SqlAssessments

    return set(SqlAssessments.__table__.columns.keys())


def orm_assessment_row(assessment: Any) -> dict[str, Any]:
    """The row MLflow's own conversion makes of an Assessment
    (`SqlAssessments.from_mlflow_entity`): slower, but it knows a later MLflow's columns.
    Checked against 3.17.2."""
    from mlflow.store.tracking.dbmodels.models import SqlAssessments

    built = SqlAssessments.from_mlflow_entity(assessment)
    return {k: v for k, v in vars(built).items() if not k.startswith("_sa_")}


def assessment_aggregate(value: Any) -> tuple[float | None, bool]:
    """The (aggregate_value, is_numeric_value) columns MLflow derives from an assessment's
    value (`mlflow.store.tracking.utils.trace_analytics.assessment_aggregate`). Checked
    against 3.17.2. No public twin."""
    from mlflow.store.tracking.utils.trace_analytics import assessment_aggregate as aggregate

    aggregate_value, numeric = aggregate(value)
    return aggregate_value, bool(numeric)


def new_assessment_id() -> str:
    """A new assessment id as MLflow makes one (`mlflow.tracing.utils.generate_assessment_id`,
    "a-" and 32 hex digits). Checked against 3.17.2. No public twin."""
    from mlflow.tracing.utils import generate_assessment_id

    return str(generate_assessment_id())


PendingRow = tuple[str, dict[str, Any], "str | None"]  # (trace_id, row, replaced id)


def insert_assessments(store: Any, pending: Sequence[PendingRow]) -> None:
    """Rows of MLflow's assessments table, inserted in one executemany into a SQL store
    (`batchable`), each given its trace's experiment and time (`SqlTraceInfo`); each replaced
    assessment marked invalid first, as `create_assessment` does with `overrides`. Reaches
    `SqlAlchemyStore.ManagedSessionMaker` and MLflow's ORM models; checked against 3.17.2
    (tests/tracking/test_assessments.py checks the rows equal MLflow's own). The public
    fallback is the store's `create_assessment`, one by one."""
    from mlflow.store.tracking.dbmodels.models import SqlAssessments, SqlTraceInfo
    from sqlalchemy import insert, update

    table = SqlAssessments.__table__
    with store.ManagedSessionMaker(read_only=False) as session:
        ids = sorted({trace_id for trace_id, _, _ in pending})
        traces = {
            t.request_id: (t.experiment_id, t.timestamp_ms)
            for t in session.query(SqlTraceInfo).filter(SqlTraceInfo.request_id.in_(ids))
        }
        rows = []
        for trace_id, row, old in pending:
            # KeyError: a trace is gone
            row["experiment_id"], row["trace_timestamp_ms"] = traces[trace_id]
            rows.append(row)
            if old:
                session.execute(
                    update(table)
                    .where(table.c.trace_id == trace_id, table.c.assessment_id == old)
                    .values(valid=False)
                )
        _execute_many(session, insert(table), rows)


def _execute_many(session: Any, statement: Any, rows: list[dict[str, Any]]) -> None:
    """The rows straight to the driver's executemany: through `session.execute` SQLAlchemy
    processes each row's parameters in Python, 3x the insert itself (their values are already
    the driver's types: str, int, float, bool, None)."""
    compiled = statement.compile(dialect=session.bind.dialect)
    order = compiled.positiontup  # None for a named paramstyle, which takes the dicts
    params = rows if order is None else [tuple(row[name] for name in order) for row in rows]
    session.connection().exec_driver_sql(str(compiled), params)
