"""App processes on one PostgreSQL database: a ticket called through instance A reaches a phone
connected (Server-Sent Events) to instance B within 2 seconds, through LISTEN/NOTIFY."""

from __future__ import annotations

import json
import os
import queue as stdlib_queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from app.cli import migrate
from app.db import create_postgres_database, drop_postgres_database, make_engine
from app.services import auth
from app.settings import Settings
from tests.conftest import PASSWORD
from tests.uvicorn_proc import uvicorn_processes

pytestmark = pytest.mark.postgres

SERVER = os.environ.get("TEST_DATABASE_URL", "")


# Polling is slowed to once a minute: within the test only a NOTIFY can deliver a change. Instance C
# is the control: it does not LISTEN, so the same change does not reach its phone in time.
SLOW_POLL = {"KAKANAI_LIVE_POLL_INTERVAL": "60", "KAKANAI_LIVE_FALLBACK_POLL_INTERVAL": "60"}
ENVS = [SLOW_POLL, SLOW_POLL, {**SLOW_POLL, "KAKANAI_LIVE_LISTEN": "false"}]


@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """Three uvicorn processes (1 worker each) on one fresh, migrated PostgreSQL database."""
    if not SERVER.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://... (.ci/run does)")
    url = create_postgres_database(SERVER)
    try:
        migrate(Settings(env="test", database_url=url, data_dir=tmp_path_factory.mktemp("two")))
        engine = make_engine(url)
        with Session(engine) as s:
            auth.create_user(s, username="clerk", password=PASSWORD, role="counter")
            s.commit()
        engine.dispose()
        dirs = [tmp_path_factory.mktemp("inst") for _ in ENVS]
        with uvicorn_processes(url, dirs, envs=ENVS) as procs:
            yield procs[0].base, procs[1].base, procs[2].base
    finally:
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


def test_a_call_on_instance_a_reaches_a_phone_on_instance_b(instances: tuple[str, str, str]) -> None:
    a, b, c = instances
    with httpx.Client(base_url=a, timeout=10) as api:
        token = api.post("/api/v1/auth/token", data={"username": "clerk", "password": PASSWORD}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        first = api.post("/api/v1/queue/tickets", json={"life_events": ["move_in"]}, headers=headers).json()
        mine = api.post("/api/v1/queue/tickets", json={"life_events": ["birth"]}, headers=headers).json()
        phone_b = SseReader(f"{b}/q/{mine['status_token']}/events?lang=en")
        phone_a = SseReader(f"{a}/q/{mine['status_token']}/events?lang=en")
        phone_c = SseReader(f"{c}/q/{mine['status_token']}/events?lang=en")
        try:
            _, status = phone_c.until(lambda s: True, timeout=5)
            assert status["ticket"]["position"] == 2
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
            # The control instance, which does not LISTEN and polls once a minute, has told its phone
            # nothing of either call: what reached A's and B's phones was the NOTIFY.
            with pytest.raises(AssertionError, match="no matching status"):
                phone_c.until(lambda s: s["ticket"]["ahead"] == 0, timeout=1.0)
            # Both instances answer the JSON the same.
            assert httpx.get(f"{b}/api/v1/status/{mine['status_token']}").json()["ticket"]["status"] == "called"
        finally:
            phone_a.close()
            phone_b.close()
            phone_c.close()
