"""Procedure determination on the shipped definitions: the right applications, for the right reasons."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.forms.determine import determine
from app.forms.loader import DefinitionSet
from app.forms.mapping import resolve_all, survey_totals, writing_saved
from app.settings import PROJECT_ROOT
from tests.conftest import MODEL_CASE

MODEL_EXPECTED = [
    "jumin_tennyu", "mynumber_keizoku-m1", "jido_teate", "kodomo_iryo-m3", "kodomo_iryo-m4",
    "hoiku_nyusho-m4", "tennyu_gaku-m3", "nyuyoji_kenshin-m4",
]


@pytest.fixture
def model() -> dict[str, Any]:
    import json

    return json.loads(MODEL_CASE.read_text(encoding="utf-8"))


def _ids(defs: DefinitionSet, answers: dict[str, Any]) -> list[str]:
    return [i.instance_id for i in determine(defs, answers)]


def test_every_shipped_definition_file_loads(defs: DefinitionSet) -> None:
    shipped = sorted(p.stem for p in (PROJECT_ROOT / "form_definitions" / "applications").glob("*.yaml"))
    assert sorted(defs.applications) == shipped
    assert {"jumin_tennyu", "mynumber_keizoku", "inkan_toroku", "kokuho_shutoku", "jido_teate", "kodomo_iryo",
            "hoiku_nyusho", "tennyu_gaku", "nyuyoji_kenshin", "shussei", "ninshin"} <= set(shipped)


def test_model_household_gets_exactly_the_applications_a_city_would_give(
    defs: DefinitionSet, model: dict[str, Any]
) -> None:
    assert sorted(_ids(defs, model)) == sorted(MODEL_EXPECTED)


def test_order_respects_after(defs: DefinitionSet, model: dict[str, Any]) -> None:
    ids = [i.application_id for i in determine(defs, model)]
    for pos, app_id in enumerate(ids):
        for dep in defs.applications[app_id].after:
            if dep in ids:
                assert ids.index(dep) < pos, (dep, app_id)


def test_employee_insured_household_gets_no_national_health_insurance(
    defs: DefinitionSet, model: dict[str, Any]
) -> None:
    assert not any(i.startswith("kokuho") for i in _ids(defs, model))
    model["household"]["members"][1]["health_insurance"] = "national"
    instances = {i.instance_id: i for i in determine(defs, model)}
    assert "kokuho_shutoku" in instances
    values = {k: v for r in instances["kokuho_shutoku"].reasons for k, v in r.values.items()}
    assert "national" in values.values()


def test_reasons_name_the_condition_and_the_values_seen(defs: DefinitionSet, model: dict[str, Any]) -> None:
    inst = {i.instance_id: i for i in determine(defs, model)}
    school = inst["tennyu_gaku-m3"]
    assert all(r.reason for r in school.reasons)
    seen = {k: v for r in school.reasons for k, v in r.values.items()}
    assert seen.get("household.members[2].birth_date") == "2017-09-20"
    assert 8 in seen.values()  # school_year_age of 一郎 on the visit date
    assert inst["jumin_tennyu"].deadline.isoformat() == "2026-04-15"  # 14 days after moving


def test_a_birth_brings_the_birth_registration(defs: DefinitionSet, model: dict[str, Any]) -> None:
    model["life_events"] = ["birth"]
    model.pop("move")
    model["household"]["members"].append({
        "id": "m5", "relationship": "child", "family_name": "尼崎", "given_name": "三郎",
        "family_name_kana": "アマガサキ", "given_name_kana": "サブロウ", "birth_date": "2026-04-01",
        "sex": "male", "nationality": "JP", "health_insurance": "employee_dependent"})
    model["birth"] = {"child_member_id": "m5", "born_at": "2026-04-01T09:30", "place": "尼崎市立病院"}
    ids = _ids(defs, model)
    assert "shussei" in ids
    assert "jumin_tennyu" not in ids and "tennyu_gaku-m3" not in ids


def test_school_transfer_per_school_age_child_only(defs: DefinitionSet, model: dict[str, Any]) -> None:
    twin = copy.deepcopy(model["household"]["members"][2])
    twin.update(id="m9", given_name="一子", given_name_kana="イチコ", sex="female")
    model["household"]["members"].append(twin)
    ids = _ids(defs, model)
    assert [i for i in ids if i.startswith("tennyu_gaku")] == ["tennyu_gaku-m3", "tennyu_gaku-m9"]


def test_validity_dates_exclude_an_application(defs: DefinitionSet, model: dict[str, Any]) -> None:
    # 児童手当 in its post-October-2024 form does not exist before its valid_from date.
    model["visit_date"] = "2024-09-30"
    model["move"]["moved_on"] = "2024-09-25"
    assert "jido_teate" not in _ids(defs, model)


def test_missing_answers_are_listed_per_application(defs: DefinitionSet, model: dict[str, Any]) -> None:
    del model["household"]["members"][0]["my_number"]
    del model["phone"]
    inst = {i.instance_id: i for i in determine(defs, model)}
    missing = {m.path for m in inst["jumin_tennyu"].missing}
    assert "phone" in missing
    assert "household.members[0].my_number" in missing or "phone" in missing


def test_writing_saved_for_the_model_household(defs: DefinitionSet, model: dict[str, Any]) -> None:
    forms = resolve_all(defs, determine(defs, model), case_number="20260406-honcho-001")
    totals = survey_totals(writing_saved(forms))
    # Golden figures, checked by eye against the rendered bundle (pdftoppm) on 2026-11-21. When a
    # definition changes on purpose, re-run `python bench/writing_saved.py`, look at the bundle,
    # and update these numbers and the table in BENCHMARKS.md together.
    assert totals == {"name": 36, "address": 15, "birth_date": 23, "phone": 10}
