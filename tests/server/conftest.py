"""Session fixtures: one PostgreSQL server, and one `mlflow server` on it, for all server tests.

A test that needs them is skipped, with the reason, only when a server cannot be started here.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.servers import MlflowServer, Postgres, ServerUnavailable, start_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    try:
        server = start_postgres()
    except ServerUnavailable as e:
        pytest.skip(f"PostgreSQL server cannot be started here: {e}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def server_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="llmflow-mlflow-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def start_mlflow(root: Path, backend_uri: str, **options: object) -> MlflowServer:
    root.mkdir(parents=True, exist_ok=True)
    server = MlflowServer(root, backend_uri, **options)  # type: ignore[arg-type]
    try:
        server.start()
    except ServerUnavailable as e:
        pytest.skip(f"mlflow server cannot be started here: {e}")
    return server


@pytest.fixture(scope="session")
def pg_mlflow(postgres: Postgres, server_root: Path) -> Iterator[MlflowServer]:
    """`mlflow server` on PostgreSQL, no auth, 2 workers, shared by the tests of the session."""
    server = start_mlflow(server_root / "open", postgres.create_database("mlflow_open"))
    try:
        yield server
    finally:
        server.stop()


ADMIN_PASSWORD = "canary-admin-pass-0c4e"


@pytest.fixture(scope="session")
def auth_mlflow(postgres: Postgres, server_root: Path) -> Iterator[MlflowServer]:
    """`mlflow server --app-name basic-auth` on PostgreSQL; admin's password is ADMIN_PASSWORD,
    new users may read every experiment and write none of those they did not create."""
    from tests.server.servers import write_auth_config

    root = server_root / "auth"
    root.mkdir()
    config = write_auth_config(root, ADMIN_PASSWORD)
    server = start_mlflow(
        root, postgres.create_database("mlflow_auth"), auth_config=config, workers=1
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def keyless_openai(fake_openai):
    """The fake OpenAI server as a self-hosted one: no key needed (and none set here)."""
    fake_openai.api_key = None
    yield fake_openai
    fake_openai.api_key = "test-openai-key"
