"""The request's transaction commits in the endpoint's own thread, before the response is serialised
(the other half of app/capacity.py: no lock is held while waiting for another thread)."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.cli import migrate
from app.db import make_engine
from app.main import create_app
from app.services import auth
from app.services import queue as queue_service
from app.settings import PROJECT_ROOT, Settings
from tests.conftest import PASSWORD


def test_ticket_transaction_commits_in_the_endpoint_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'commit.db'}"
    # No background round (notices, no-shows): its own commits would be counted here.
    settings = Settings(env="test", database_url=url, data_dir=tmp_path, live_poll_interval=0, instance_heartbeat_seconds=0,
                        background_tasks=False,
                        definitions_dir=PROJECT_ROOT / "form_definitions")
    migrate(settings)
    engine = make_engine(url)
    with Session(engine) as s:
        auth.create_user(s, username="clerk", password=PASSWORD, role="counter")
        s.commit()
    engine.dispose()

    seen: list[tuple[str, int]] = []
    real_open_visit = queue_service.open_visit

    def open_visit(*args: object, **kwargs: object) -> object:
        seen.append(("work", threading.get_ident()))
        return real_open_visit(*args, **kwargs)  # type: ignore[arg-type]

    def committed(_session: Session) -> None:
        # Called from within the endpoint's call (the wrapper of app/capacity.py), not from a later step.
        inside = any(f.function == "endpoint" and f.filename.endswith("capacity.py") for f in inspect.stack())
        seen.append(("commit in endpoint" if inside else "commit elsewhere", threading.get_ident()))

    monkeypatch.setattr(queue_service, "open_visit", open_visit)
    event.listen(Session, "after_commit", committed)
    try:
        with TestClient(create_app(settings)) as client:
            res = client.post("/api/v1/auth/token", data={"username": "clerk", "password": PASSWORD})
            headers = {"Authorization": f"Bearer {res.json()['access_token']}"}
            seen.clear()
            res = client.post("/api/v1/queue/tickets", json={"life_events": ["move_in"]}, headers=headers)
            assert res.status_code == 201
    finally:
        event.remove(Session, "after_commit", committed)
    # The work's commit comes right after it, in the thread that did it (not a later trip through the
    # pool). On SQLite the token lookup's read snapshot is ended first, also inside the endpoint.
    kinds = [kind for kind, _ in seen]
    assert kinds[-2:] == ["work", "commit in endpoint"] and set(kinds) == {"work", "commit in endpoint"}, kinds
    assert seen[-2][1] == seen[-1][1]
