"""A real PostgreSQL server and a real `mlflow server` on 127.0.0.1, started and stopped by PID.

PostgreSQL comes from the system's packages (Debian's `postgresql`; `.ci/run` installs it when
`initdb` is missing). It refuses to run as root, so as root its commands run as the `postgres`
user (`runuser`), with the data folder in a fresh temporary folder owned by that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import free_port


class ServerUnavailable(RuntimeError):
    """A server could not be started here; the message says why (the tests skip with it)."""


def _pg_bin(name: str) -> str:
    # Debian's own folder first: its /usr/bin wrappers pick a cluster, not our server
    versioned = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version, reverse=True)
    found = next(iter(versioned), None) or shutil.which(name)
    if found is None:
        raise ServerUnavailable(
            f"PostgreSQL's {name} is not installed (apt-get install postgresql)"
        )
    return found


def _version(path: str) -> int:
    number = Path(path).parents[1].name
    return int(number) if number.isdigit() else 0


@dataclass
class Postgres:
    root: Path
    port: int
    user: str | None  # the system user the server runs as, when we are root
    pid: int = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    def uri(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def command(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        done = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        if done.returncode != 0:
            raise ServerUnavailable(f"{Path(args[0]).name} failed: {done.stderr.strip()[-400:]}")
        return done

    def start(self) -> None:
        self.command(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self.command(
            _pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def create_database(self, name: str) -> str:
        self.command(_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                     "-U", "postgres", name)  # fmt: skip
        return self.uri(name)

    def stop(self) -> None:
        if self.pid:
            _stop_pid(self.pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> Postgres:
    root = Path(tempfile.mkdtemp(prefix="llmflow-pg-"))
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        try:
            shutil.chown(root, user)
        except (LookupError, OSError) as e:
            shutil.rmtree(root, ignore_errors=True)
            raise ServerUnavailable(f"no '{user}' system user to run PostgreSQL as: {e}") from e
    server = Postgres(root, free_port(), user)
    try:
        server.start()
    except (ServerUnavailable, subprocess.TimeoutExpired, OSError) as e:
        log = root / "server.log"
        tail = log.read_text()[-400:] if log.exists() else ""
        server.stop()
        raise ServerUnavailable(f"PostgreSQL could not be started: {e} {tail}".strip()) from e
    return server


def _stop_pid(pid: int, sig: int, timeout: float = 20) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class MlflowServer:
    """`mlflow server` in its own session; `stop()` ends its whole process group."""

    root: Path
    backend_uri: str
    port: int = field(default_factory=free_port)
    workers: int = 2
    auth_config: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def start(self, timeout: float = 120) -> None:
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
            "--backend-store-uri", self.backend_uri,
            "--artifacts-destination", str(self.root / "artifacts"), "--serve-artifacts",
            "--allowed-hosts", f"127.0.0.1:{self.port},localhost:{self.port}",
        ]  # fmt: skip
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        if self.auth_config is not None:
            command += ["--app-name", "basic-auth"]
            env["MLFLOW_AUTH_CONFIG_PATH"] = str(self.auth_config)
            env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = secrets.token_hex(16)  # CSRF, required
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            env.pop(name, None)
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                cwd=self.root,
            )
        self._wait(timeout)

    def _wait(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise ServerUnavailable(
                    f"mlflow server exited at start: {self.log.read_text()[-600:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    return
            except (OSError, urllib.error.URLError):
                time.sleep(0.5)
        self.stop()
        raise ServerUnavailable(f"mlflow server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass

    def requests_to(self, path: str) -> int:
        """How many requests to `path` the server's access log shows."""
        return sum(f'"POST {path}' in line for line in self.log.read_text().splitlines())


def write_auth_config(root: Path, admin_password: str) -> Path:
    """A basic-auth configuration: users' database in `root`, new users read by default."""
    path = root / "basic_auth.ini"
    path.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
        "admin_username = admin\n"
        f"admin_password = {admin_password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    return path
