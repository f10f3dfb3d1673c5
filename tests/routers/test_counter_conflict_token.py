"""A 409 from the tablet's autosave names the save that made the current version (its random id) and
the version now stored, so a tablet reloaded while its own save was on the way can tell it from another's."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Case
from tests.routers.test_counter_pages import JSON, clerk, screen_answers, start_visit

__all__ = ["clerk"]  # the fixture, imported for this module


def save(client: TestClient, csrf: str, case_id: str, answers: dict[str, Any], version: int, token: str) -> Any:
    return client.post(f"/counter/visits/{case_id}/answers",
                       json={"answers": answers, "version": version, "save_token": token},
                       headers={**JSON, "X-CSRF-Token": csrf})


def test_the_409_carries_the_last_save_token_and_the_current_version(
        client: TestClient, clerk: str, db: Session, model_case_raw: dict[str, Any]) -> None:
    case_id = start_visit(client, clerk, ["move_in"])
    doc = screen_answers(model_case_raw)
    first = save(client, clerk, case_id, doc, 1, "tabletAsave0001")
    assert first.status_code == 200 and first.json()["version"] == 2
    later = copy.deepcopy(doc)
    later["phone"] = "03-0000-0000"
    res = save(client, clerk, case_id, later, 1, "tabletAsave0002")  # sent on the version before its own save
    assert res.status_code == 409
    assert res.json()["current_version"] == 2
    assert res.json()["last_save_token"] == "tabletAsave0001"
    db.expire_all()
    assert db.get(Case, case_id).answers["phone"] == "090-1234-5678"  # nothing overwritten
    # Retried on the version the 409 named, the save goes through.
    again = save(client, clerk, case_id, later, res.json()["current_version"], "tabletAsave0003")
    assert again.status_code == 200 and again.json()["version"] == 3


def test_a_409_after_a_save_without_a_token_names_none(
        client: TestClient, clerk: str, model_case_raw: dict[str, Any]) -> None:
    case_id = start_visit(client, clerk, ["move_in"])
    doc = screen_answers(model_case_raw)
    assert client.post(f"/counter/visits/{case_id}/answers", json={"answers": doc, "version": 1},
                       headers={**JSON, "X-CSRF-Token": clerk}).status_code == 200
    res = save(client, clerk, case_id, doc, 1, "tabletBsave0001")  # same answers, stale version
    assert res.status_code == 409
    assert res.json()["current_version"] == 2 and res.json()["last_save_token"] == ""
