"""Two app processes on one PostgreSQL database: a ticket called through instance A reaches a phone
connected (Server-Sent Events) to instance B within 2 seconds."""

from __future__ import annotations

import json
import os
import queue as stdlib_queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from app.cli import migrate
from app.db import create_postgres_database, drop_postgres_database, make_engine
from app.services import auth
from app.settings import PROJECT_ROOT, Settings
from tests.conftest import PASSWORD

pytestmark = pytest.mark.postgres

SERVER = os.environ.get("TEST_DATABASE_URL", "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(url: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "KAKANAI_ENV": "test", "KAKANAI_DATABASE_URL": url, "KAKANAI_DATA_DIR": str(data_dir),
           "KAKANAI_LOG_LEVEL": "WARNING", "KAKANAI_LIVE_POLL_INTERVAL": "0.5"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--timeout-graceful-shutdown", "2"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return proc, f"http://127.0.0.1:{port}"


def _wait_ready(proc: subprocess.Popen[bytes], base: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited: {proc.stderr.read().decode(errors='replace')[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{base} did not become ready")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    for proc in running:
        try:
            proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Two uvicorn processes (1 worker each) on one fresh, migrated PostgreSQL database."""
    if not SERVER.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://... (.ci/run does)")
    url = create_postgres_database(SERVER)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        migrate(Settings(env="test", database_url=url, data_dir=tmp_path_factory.mktemp("two")))
        engine = make_engine(url)
        with Session(engine) as s:
            auth.create_user(s, username="clerk", password=PASSWORD, role="counter")
            s.commit()
        engine.dispose()
        started = [_start(url, tmp_path_factory.mktemp("inst")) for _ in range(2)]
        procs = [p for p, _ in started]
        deadline = time.monotonic() + 30
        for proc, base in started:
            _wait_ready(proc, base, deadline)
        yield started[0][1], started[1][1]
    finally:
        _stop(procs)
        drop_postgres_database(url)


class SseReader:
    """Reads one SSE stream in a thread; each `event: status` arrives as (monotonic time, JSON)."""

    def __init__(self, url: str) -> None:
        self.events: stdlib_queue.Queue[tuple[float, dict[str, Any]]] = stdlib_queue.Queue()
        self.headers: dict[str, str] = {}
        self._client = httpx.Client(timeout=httpx.Timeout(5, read=30))
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the SSE stream did not open"

    def _run(self, url: str) -> None:
        try:
            with self._client.stream("GET", url, headers={"Accept": "text/event-stream"}) as res:
                self.headers = dict(res.headers)
                self._ready.set()
                event = ""
                for line in res.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "status":
                        self.events.put((time.monotonic(), json.loads(line[5:])))
        except (httpx.HTTPError, RuntimeError):
            self._ready.set()  # closed by the test

    def until(self, predicate: Any, timeout: float) -> tuple[float, dict[str, Any]]:
        """The first status that satisfies `predicate`, with the time it arrived."""
        end = time.monotonic() + timeout
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no matching status arrived in time")
            try:
                arrived, status = self.events.get(timeout=remaining)
            except stdlib_queue.Empty:
                continue
            if predicate(status):
                return arrived, status

    def close(self) -> None:
        self._client.close()


def test_a_call_on_instance_a_reaches_a_phone_on_instance_b(instances: tuple[str, str]) -> None:
    a, b = instances
    with httpx.Client(base_url=a, timeout=10) as api:
        token = api.post("/api/v1/auth/token", data={"username": "clerk", "password": PASSWORD}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        first = api.post("/api/v1/queue/tickets", json={"life_events": ["move_in"]}, headers=headers).json()
        mine = api.post("/api/v1/queue/tickets", json={"life_events": ["birth"]}, headers=headers).json()
        phone_b = SseReader(f"{b}/q/{mine['status_token']}/events?lang=en")
        phone_a = SseReader(f"{a}/q/{mine['status_token']}/events?lang=en")
        try:
            assert phone_b.headers["content-type"].startswith("text/event-stream")
            assert phone_b.headers["cache-control"] == "no-store"
            _, status = phone_b.until(lambda s: True, timeout=5)
            assert (status["ticket"]["status"], status["ticket"]["position"]) == ("waiting", 2)

            # Instance A calls the ticket ahead: the phone on B sees its position change.
            sent = time.monotonic()
            called = api.post("/api/v1/queue/call-next", json={"counter": "3"}, headers=headers).json()
            assert called["ticket"]["case_id"] == first["case_id"]
            arrived, status = phone_b.until(lambda s: s["ticket"]["ahead"] == 0, timeout=5)
            assert arrived - sent < 2.0, f"{arrived - sent:.2f} s"

            # Instance A calls this ticket: the phone on B is sent to counter 4.
            sent = time.monotonic()
            api.post("/api/v1/queue/call-next", json={"counter": "4"}, headers=headers)
            arrived, status = phone_b.until(lambda s: s["ticket"]["status"] == "called", timeout=5)
            delay_b = arrived - sent
            assert delay_b < 2.0, f"{delay_b:.2f} s"
            assert status["headline"] == "Please come to counter 4." and status["ticket"]["counter"] == "4"
            # The phone on A (the instance that made the change) gets it the same way.
            arrived_a, _ = phone_a.until(lambda s: s["ticket"]["status"] == "called", timeout=5)
            assert arrived_a - sent < 2.0
            # Both instances answer the JSON the same.
            assert httpx.get(f"{b}/api/v1/status/{mine['status_token']}").json()["ticket"]["status"] == "called"
        finally:
            phone_a.close()
            phone_b.close()
