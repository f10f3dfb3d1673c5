"""A database that stops answering gives a quick 503 with a Japanese message, not a hang, and nothing of
the abandoned request is saved when the database answers again (real uvicorn; SQLite, or PostgreSQL
with TEST_DATABASE_URL). The "hang" is a lock held by the test: the server's statement waits on it."""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.cli import migrate
from app.db import create_postgres_database, drop_postgres_database, make_engine
from app.services import auth
from app.settings import Settings
from tests.conftest import PASSWORD
from tests.uvicorn_proc import UvicornProcess, uvicorn_processes

REQUEST_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UvicornProcess, str]]:
    pg_server = os.environ.get("TEST_DATABASE_URL")
    url = (create_postgres_database(pg_server, prefix="kakanai_hung") if pg_server
           else f"sqlite:///{tmp_path_factory.mktemp('hung') / 'hung.db'}")
    try:
        migrate(Settings(env="test", database_url=url, data_dir=tmp_path_factory.mktemp("hung-migrate")))
        engine = make_engine(url)
        with Session(engine) as s:
            auth.create_user(s, username="clerk", password=PASSWORD, role="counter")
            s.commit()
        engine.dispose()
        env = {"KAKANAI_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT), "KAKANAI_DB_STATEMENT_TIMEOUT": "30"}
        with uvicorn_processes(url, [tmp_path_factory.mktemp("hung-data")], env=env) as procs:
            yield procs[0], url
    finally:
        if pg_server:
            drop_postgres_database(url)


def test_a_locked_database_gives_a_quick_503_and_saves_nothing(server: tuple[UvicornProcess, str]) -> None:
    proc, url = server
    with httpx.Client(base_url=proc.base, timeout=30) as api:
        token = api.post("/api/v1/auth/token", data={"username": "clerk", "password": PASSWORD}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert api.post("/api/v1/queue/tickets", json={"life_events": ["move_in"]}, headers=headers).status_code == 201

        engine = make_engine(url)
        conn = engine.connect()
        try:
            # The test takes the lock every ticket needs: the server's statements now wait on it.
            conn.begin()  # SQLite: BEGIN IMMEDIATE, the write lock (app/db.py)
            if engine.dialect.name == "sqlite":
                conn.execute(text("SELECT 1"))
            else:
                conn.execute(text("LOCK TABLE queue_tickets IN ACCESS EXCLUSIVE MODE"))
            began = time.monotonic()
            res = api.post("/api/v1/queue/tickets", json={"life_events": ["birth"]}, headers=headers)
            took = time.monotonic() - began
            assert res.status_code == 503, res.text
            assert took < REQUEST_TIMEOUT + 2.0, f"{took:.1f} s"
            body = res.json()
            assert body["error"] == "timeout" and "保存されていません" in body["message"]
            assert res.headers["retry-after"] == "5"
            # The server itself is alive meanwhile.
            assert api.get("/healthz").status_code == 200
            if engine.dialect.name == "sqlite":
                # Reads never take SQLite's write lock: they are answered while a writer holds it.
                began = time.monotonic()
                listed = api.get("/api/v1/queue/tickets", headers=headers)
                assert listed.status_code == 200 and len(listed.json()["tickets"]) == 1
                assert time.monotonic() - began < 1.5
        finally:
            conn.rollback()
            conn.close()
            engine.dispose()

        # The abandoned request finishes once the lock is gone, and is rolled back: one ticket only.
        deadline = time.monotonic() + 4
        while True:
            tickets = api.get("/api/v1/queue/tickets", headers=headers).json()["tickets"]
            if time.monotonic() > deadline or len(tickets) != 1:
                break
            time.sleep(0.5)
        assert len(tickets) == 1, [t["number"] for t in tickets]
        # And the service goes on normally.
        assert api.post("/api/v1/queue/tickets", json={"life_events": ["birth"]}, headers=headers).status_code == 201
        assert len(api.get("/api/v1/queue/tickets", headers=headers).json()["tickets"]) == 2


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UvicornProcess, str]]:
    """A server with ONE database slot, so that the admission gate is easy to fill."""
    url = f"sqlite:///{tmp_path_factory.mktemp('gate') / 'gate.db'}"
    migrate(Settings(env="test", database_url=url, data_dir=tmp_path_factory.mktemp("gate-migrate")))
    engine = make_engine(url)
    with Session(engine) as s:
        auth.create_user(s, username="clerk", password=PASSWORD, role="counter")
        s.commit()
    engine.dispose()
    env = {"KAKANAI_DB_POOL_SIZE": "1", "KAKANAI_WORKER_THREADS": "3", "KAKANAI_DB_WAIT_TIMEOUT": "1",
           "KAKANAI_DB_STATEMENT_TIMEOUT": "30"}
    with uvicorn_processes(url, [tmp_path_factory.mktemp("gate-data")], env=env) as procs:
        yield procs[0], url


def test_a_full_database_gate_answers_503_without_holding_a_thread(small_server: tuple[UvicornProcess, str]) -> None:
    proc, url = small_server
    with httpx.Client(base_url=proc.base, timeout=30) as api:
        token = api.post("/api/v1/auth/token", data={"username": "clerk", "password": PASSWORD}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    engine = make_engine(url)
    conn = engine.connect()
    conn.begin()  # the write lock: the first ticket waits on it, holding the only database slot
    conn.execute(text("SELECT 1"))
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(httpx.post, f"{proc.base}/api/v1/queue/tickets", json={"life_events": ["move_in"]},
                                headers=headers, timeout=30)
            time.sleep(0.5)
            began = time.monotonic()
            second = httpx.post(f"{proc.base}/api/v1/queue/tickets", json={"life_events": ["birth"]},
                                headers=headers, timeout=30)
            took = time.monotonic() - began
            assert second.status_code == 503 and "混み合っています" in second.json()["message"], second.text
            assert took < 3.0, f"{took:.1f} s"
            # Waiting requests hold no thread: the process still answers what needs none.
            assert httpx.get(f"{proc.base}/healthz", timeout=5).status_code == 200
            conn.rollback()
            assert first.result().status_code == 201
    finally:
        conn.close()
        engine.dispose()
