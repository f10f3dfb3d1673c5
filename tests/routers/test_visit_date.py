"""The server owns the visit date: a client-sent visit_date is ignored outside tests, deadlines count from it."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.services import clock
from app.services.definitions import DefinitionRegistry
from app.settings import Settings
from tests.conftest import login, make_user


@pytest.fixture
def live_client(settings: Settings, registry: DefinitionRegistry, connection: Connection) -> Iterator[TestClient]:
    """The app as a city runs it (not in test mode), on the test transaction."""
    application = create_app(settings.model_copy(update={"env": "development"}), definitions=registry)
    application.state.sessionmaker = sessionmaker(bind=connection, join_transaction_mode="create_savepoint",
                                                  expire_on_commit=False)
    with TestClient(application) as c:
        yield c


def test_client_visit_date_is_ignored_outside_tests(live_client: TestClient, db: Session,
                                                    model_case: dict[str, Any], settings: Settings) -> None:
    make_user(db, "clerk", "counter")
    answers = copy.deepcopy(model_case)
    answers["visit_date"] = "2019-04-01"  # a date in 平成31年, before the move itself
    answers["move"]["moved_on"] = "2026-11-20"
    moment = dt.datetime(2026, 12, 10, 1, 0, tzinfo=dt.UTC)  # 10:00 in Tokyo
    with clock.simulated(lambda: moment):
        headers = login(live_client, "clerk")
        res = live_client.post("/api/v1/cases", json=answers, headers=headers)
        assert res.status_code == 201, res.text
        body = res.json()
        assert body["answers"]["visit_date"] == "2026-12-10"
        # A later save cannot move it either.
        sent = copy.deepcopy(body["answers"])
        sent["visit_date"] = "2027-01-05"
        res = live_client.put(f"/api/v1/cases/{body['id']}/answers", json={"answers": sent, "version": body["version"]},
                              headers=headers)
        assert res.status_code == 200, res.text
        assert res.json()["answers"]["visit_date"] == "2026-12-10"
        apps = {a["id"]: a for a in live_client.get(f"/api/v1/cases/{body['id']}/applications",
                                                    headers=headers).json()["applications"]}
    # Moved in on 11-20, visiting on 12-10: the 14-day 転入届 deadline (12-04) has passed.
    assert apps["jumin_tennyu"]["deadline"] == "2026-12-04"
    assert apps["jumin_tennyu"]["deadline_passed"] is True
    assert "過料" in apps["jumin_tennyu"]["late_note"]
    assert apps["jido_teate"]["deadline_passed"] is True
    assert apps["hoiku_nyusho-m4"]["deadline_passed"] is False


def test_tests_may_set_the_visit_date(client: TestClient, counter_headers: dict[str, str],
                                      model_case: dict[str, Any]) -> None:
    res = client.post("/api/v1/cases", json=model_case, headers=counter_headers)
    assert res.status_code == 201, res.text
    assert res.json()["answers"]["visit_date"] == "2026-04-06"
