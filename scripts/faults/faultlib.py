"""Shared pieces of the fault-injection scripts: a real uvicorn server in a subprocess, a database to
point it at (SQLite file, a throw-away database on a PostgreSQL server, or a PRIVATE PostgreSQL
instance that may be stopped and started), staff tokens and the model household.

Every loop here is bounded in count and time and talks only to 127.0.0.1.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
MODEL_CASE = ROOT / "bench" / "households" / "model_move_in_family.json"
PASSWORD = "fault-injection-password"  # noqa: S105 - a throw-away account in a temporary database

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Every server and private PostgreSQL this process started and has not stopped yet: stopped at exit,
# whatever ended the script (an exception, Ctrl-C, SIGTERM), so nothing is left listening.
_RUNNING: list[Any] = []


def stop_everything() -> None:
    """Stop what is still running (servers first, then private PostgreSQL instances)."""
    for thing in list(reversed(_RUNNING)):
        with contextlib.suppress(Exception):
            thing.stop_for_exit()
    _RUNNING.clear()


def _terminated(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds: finally blocks and atexit run


atexit.register(stop_everything)
if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _terminated)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model_case() -> dict[str, Any]:
    """The benchmark household."""
    return json.loads(MODEL_CASE.read_text(encoding="utf-8"))


# --- databases ----------------------------------------------------------------------------------------

def sqlite_url(workdir: Path) -> str:
    """A SQLite file in the work directory."""
    return f"sqlite:///{workdir / 'faults.db'}"


def pg_database(server_url: str) -> contextlib.AbstractContextManager[str]:
    """A throw-away database on an existing PostgreSQL server (never restarted here)."""
    from app.db import postgres_scratch_database

    return postgres_scratch_database(server_url, prefix="kakanai_faults")


def pg_binaries() -> Path | None:
    """The directory of PostgreSQL's server binaries (initdb, pg_ctl), if installed."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    if candidates:
        return candidates[0].parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def private_pg_unavailable() -> str | None:
    """Why a private PostgreSQL instance cannot be started here (None when it can)."""
    bins = pg_binaries()
    if bins is None or not (bins / "initdb").exists():
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


class PrivatePostgres:
    """A PostgreSQL instance of our own (own data dir, port and socket dir) that may be stopped and started.

    The shared server on 5432 is used by everyone's tests at the same time and is never touched.
    """

    def __init__(self, base: Path):
        self.bins = pg_binaries()
        assert self.bins is not None
        self.base = base
        self.data = base / "pgdata"
        self.sockets = base / "sockets"
        self.log = base / "postgres.log"
        self.port = free_port()

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout)  # noqa: S603

    def init(self) -> None:
        """initdb with trust authentication on loopback only."""
        self.sockets.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
            shutil.chown(self.sockets, "postgres")
        self._run(str(self.bins / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync", "--locale=C.UTF-8")

    def start(self) -> None:
        """Start (waits until it accepts connections)."""
        opts = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=50 -c shared_buffers=16MB")
        if self not in _RUNNING:
            _RUNNING.insert(0, self)  # stopped after the servers that use it
        self._run(str(self.bins / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "30",
                  "start")

    def stop_for_exit(self) -> None:
        """At exit: stop like a crash (the directory is thrown away)."""
        self.stop("immediate")

    def stop(self, mode: str = "fast") -> None:
        """Stop (fast: disconnects everyone; immediate: like a crash)."""
        self._run(str(self.bins / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop", check=False)

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for this instance."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create a database and return its URL."""
        from sqlalchemy import create_engine, text

        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.url(name)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL instance in a temporary directory, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="kakanai-pg-"))
    pg = PrivatePostgres(base)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.stop("immediate")
        if pg in _RUNNING:
            _RUNNING.remove(pg)
        shutil.rmtree(base, ignore_errors=True)


# --- the service --------------------------------------------------------------------------------------

def prepare_database(url: str, workdir: Path) -> dict[str, str]:
    """Migrate the database and create staff accounts; returns a bearer token per role."""
    from app.cli import migrate
    from app.db import make_engine, make_sessionmaker
    from app.services import auth
    from app.settings import Settings

    migrate(Settings(env="test", database_url=url, data_dir=workdir))
    engine = make_engine(url)
    tokens: dict[str, str] = {}
    with make_sessionmaker(engine).begin() as session:
        for name, role in (("fault_counter", "counter"), ("fault_admin", "admin")):
            user = auth.create_user(session, username=name, password=PASSWORD, role=role)
            tokens[role] = auth.issue_token(session, user=user, ttl=None, label="faults")
    engine.dispose()
    return tokens


@dataclass
class Server:
    """A uvicorn subprocess serving app.main:app against one database."""

    url: str
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        """Start and wait until /healthz answers."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAKANAI_")}
        env.update({"KAKANAI_ENV": "test", "KAKANAI_DATABASE_URL": self.url, "KAKANAI_DATA_DIR": str(self.workdir),
                    "KAKANAI_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1", **self.extra_env})
        log = (self.workdir / f"uvicorn-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-access-log", "--timeout-graceful-shutdown", "2"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _RUNNING.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("uvicorn did not become ready in time")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing, like a power cut of the process."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if self in _RUNNING:
            _RUNNING.remove(self)

    def stop_for_exit(self) -> None:
        """At exit: a normal shutdown, SIGKILL if it does not end."""
        self.stop()

    def stop(self) -> None:
        """A normal shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self in _RUNNING:
            _RUNNING.remove(self)


def create_cases(base: str, token: str, count: int) -> list[dict[str, Any]]:
    """Create visits of the model household through the API."""
    out = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for _ in range(count):
            res = client.post("/api/v1/cases", json=model_case())
            res.raise_for_status()
            out.append(res.json())
    return out


def marked_answers(marker: str) -> dict[str, Any]:
    """The model household with a marker in a free-text field, to tell saves apart."""
    doc = copy.deepcopy(model_case())
    doc["household"]["members"][1]["employer"] = marker
    return doc


def scenario_main(doc: str, run: Any, *, clients: int, seconds: float) -> int:
    """Command line of a fault scenario: runs it in a temporary directory and prints the report as JSON."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--clients", type=int, default=clients)
    parser.add_argument("--seconds", type=float, default=seconds)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kakanai-faults-") as tmp:
        report = run(Path(tmp), database_url=args.database_url, clients=args.clients, seconds=args.seconds)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0 if report["ok"] else 1
