"""Fault injection with real processes: a uvicorn server SIGKILLed while saving answers and while
generating bundles, and a PRIVATE PostgreSQL instance restarted under load (scripts/faults/*).
Plus the property that makes "acknowledged means stored" true: the commit happens before the response."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.settings import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts" / "faults"))
import faultlib
import kill_bundles
import kill_saves
import pg_restart

pytestmark = pytest.mark.faults


@pytest.fixture
def server_db(tmp_path: Path) -> Iterator[str | None]:
    """SQLite by default; a throw-away database on the shared PostgreSQL with TEST_DATABASE_URL."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        yield None
        return
    with faultlib.pg_database(server) as url:
        yield url


def _check(report: dict[str, Any]) -> None:
    print(json.dumps(report, ensure_ascii=False))
    assert report["ok"], report["problems"]


def test_sigkill_while_saving_loses_nothing_acknowledged(tmp_path: Path, server_db: str | None) -> None:
    report = kill_saves.run(tmp_path, database_url=server_db, clients=4, seconds=1.5)
    _check(report)
    assert report["saves_acknowledged"] >= 8 and report["lost"] == 0 and report["half_written"] == 0


def test_sigkill_while_generating_bundles_leaves_no_partial_state(tmp_path: Path, server_db: str | None) -> None:
    report = kill_bundles.run(tmp_path, database_url=server_db, clients=3, seconds=2.5)
    _check(report)
    assert report["bundles_delivered"] >= 3


def test_postgres_restart_under_load_fails_cleanly_and_recovers(tmp_path: Path) -> None:
    reason = faultlib.private_pg_unavailable()
    if reason:
        pytest.skip(f"no private PostgreSQL instance possible: {reason}")
    report = pg_restart.run(tmp_path, clients=3, down_seconds=2.0)
    _check(report)
    assert report["statuses_by_phase"]["down"].get(503, 0) > 0
    assert report["recovered_after_s"] is not None and report["recovered_after_s"] < 10


def test_commit_happens_before_the_response_is_sent(app: FastAPI, client: TestClient, counter_headers: dict[str, str],
                                                    model_case_raw: dict[str, Any]) -> None:
    order: list[str] = []

    def on_commit(session: Session) -> None:
        order.append("commit")

    inner = app.middleware_stack or app.build_middleware_stack()

    async def spy(scope: Any, receive: Any, send: Any) -> None:
        async def watched(message: Any) -> None:
            if message["type"] == "http.response.start":
                order.append("response")
            await send(message)

        await inner(scope, receive, watched)

    app.middleware_stack = spy
    event.listen(Session, "after_commit", on_commit)
    try:
        res = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers)
        assert res.status_code == 201
    finally:
        event.remove(Session, "after_commit", on_commit)
    # The request's transaction is committed (the audit entry and the case with it) before the 201 leaves.
    assert "commit" in order and order.index("commit") < order.index("response"), order
