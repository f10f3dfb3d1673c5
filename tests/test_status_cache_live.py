"""The per-visit status cache of a running server (change watcher on): 304 while nothing changed, a new
ETag and body as soon as a call changes the visit's place — on SQLite, or PostgreSQL with TEST_DATABASE_URL."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.orm import Session

from app.cli import migrate
from app.db import create_postgres_database, drop_postgres_database, make_engine
from app.services import auth
from app.settings import Settings
from tests.conftest import PASSWORD
from tests.uvicorn_proc import UvicornProcess, uvicorn_processes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UvicornProcess]:
    pg_server = os.environ.get("TEST_DATABASE_URL")
    url = (create_postgres_database(pg_server, prefix="kakanai_etag") if pg_server
           else f"sqlite:///{tmp_path_factory.mktemp('etag') / 'etag.db'}")
    try:
        migrate(Settings(env="test", database_url=url, data_dir=tmp_path_factory.mktemp("etag-migrate")))
        engine = make_engine(url)
        with Session(engine) as s:
            auth.create_user(s, username="clerk", password=PASSWORD, role="counter")
            s.commit()
        engine.dispose()
        with uvicorn_processes(url, [tmp_path_factory.mktemp("etag-data")]) as procs:
            yield procs[0]
    finally:
        if pg_server:
            drop_postgres_database(url)


def test_cached_status_revalidates_and_changes_with_the_queue(server: UvicornProcess) -> None:
    with httpx.Client(base_url=server.base, timeout=10) as api:
        token = api.post("/api/v1/auth/token", data={"username": "clerk", "password": PASSWORD}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        api.post("/api/v1/queue/tickets", json={"life_events": ["move_in"]}, headers=headers)
        mine = api.post("/api/v1/queue/tickets", json={"life_events": ["birth"]}, headers=headers).json()
        url = f"/api/v1/status/{mine['status_token']}?lang=ja"
        time.sleep(1.2)  # the watcher has seen the arrivals: the status is now kept
        first = api.get(url)
        assert first.status_code == 200 and first.json()["ticket"]["ahead"] == 1
        tag = first.headers["etag"]
        for _ in range(3):  # served from the cache, revalidated
            res = api.get(url, headers={"If-None-Match": tag})
            assert res.status_code == 304 and res.headers["etag"] == tag and res.content == b""
        assert api.get(url).content == first.content  # the cached body is the same bytes

        api.post("/api/v1/queue/call-next", json={"counter": "5"}, headers=headers)
        deadline = time.monotonic() + 3
        while True:
            res = api.get(url, headers={"If-None-Match": tag})
            if res.status_code == 200:
                break
            assert res.status_code == 304 and time.monotonic() < deadline, "the call never reached the status"
            time.sleep(0.1)
        assert res.headers["etag"] != tag and res.json()["ticket"]["ahead"] == 0
