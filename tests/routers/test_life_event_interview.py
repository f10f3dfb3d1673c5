"""One interview for every life event: the counter screen shows the sections of the events chosen, once."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from app.settings import PROJECT_ROOT
from tests.routers.test_counter_pages import HTML, autosave, clerk, screen_answers, start_visit  # noqa: F401


def _household(name: str) -> dict:
    return json.loads((PROJECT_ROOT / "bench" / "households" / f"{name}.json").read_text("utf-8"))


def test_death_visit_asks_the_death_section_and_not_the_move_out_one(client: TestClient, clerk: str) -> None:  # noqa: F811
    case_id = start_visit(client, clerk, ["death"])
    page = client.get(f"/counter/visits/{case_id}", headers=HTML).text
    death = re.search(r'<section[^>]*id="section-death"[^>]*>', page).group(0)
    move_out = re.search(r'<section[^>]*id="section-move_out"[^>]*>', page).group(0)
    assert "hidden" not in death and "hidden" in move_out

    res = autosave(client, clerk, case_id, screen_answers(_household("model_death")), 1)
    assert res.status_code == 200, res.text
    vis = res.json()["visibility"]
    assert vis["death.died_on"]["asked"] is True
    assert vis["death.heir.family_name"]["asked"] is True  # the heir lives elsewhere
    assert vis["move_out.planned_on"]["asked"] is False
    assert vis["certificates.juminhyo_copies"]["asked"] is False
    assert vis["bank_account.bank_name"]["asked"] is True  # 葬祭費 is paid into the heir's account


def test_lone_parent_moving_within_is_asked_once(client: TestClient, clerk: str) -> None:  # noqa: F811
    case_id = start_visit(client, clerk, ["move_within", "divorce"])
    doc = screen_answers(_household("model_move_within_family"))
    doc["life_events"] = ["move_within", "divorce"]
    vis = autosave(client, clerk, case_id, doc, 1).json()["visibility"]
    lone = [p for p, v in vis.items() if p.startswith("lone_parent.is_lone_parent") and v["asked"]]
    assert lone == ["lone_parent.is_lone_parent"]
    assert vis["move.moved_on"]["asked"] is True and vis["divorce.kind"]["asked"] is True
