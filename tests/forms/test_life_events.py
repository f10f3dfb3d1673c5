"""Every life event a counter sees: each model household gets exactly the applications a city would give."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from app.forms.answers import validate_answers
from app.forms.context import build_context
from app.forms.determine import determine
from app.forms.expr import compile_expr
from app.forms.loader import DefinitionSet
from app.forms.mapping import resolve_all
from app.settings import PROJECT_ROOT

HOUSEHOLDS = PROJECT_ROOT / "bench" / "households"
EXT = ["ext_mikyu_nenkin", "ext_sozoku_hoki", "ext_jun_kakutei", "ext_sozokuzei", "ext_sozoku_toki", "ext_ginko"]

EXPECTED: dict[str, list[str]] = {
    "model_move_out_family": ["jumin_tenshutsu", "kokuho_soshitsu", "jido_teate_shometsu", "kodomo_iryo_soshitsu",
                              "tenshutsu_gaku-m3", "hoiku_taisho-m4"],
    "model_move_out_elderly_facility": ["jumin_tenshutsu", "kaigo_soshitsu", "kouki_soshitsu"],
    "model_move_within_family": ["jumin_tenkyo", "mynumber_kisai_henko-m1", "mynumber_kisai_henko-m2", "kokuho_henko",
                                 "jido_teate_henko", "kodomo_iryo_henko", "tenko_gakku-m3", "hoiku_henko-m4"],
    "model_household_change": ["setai_henko", "kokuho_henko"],
    "model_death": ["kouki_soshitsu", "kaigo_soshitsu", "sosaihi", "kogaku_ryoyohi", "shogaisha_techo_henkan",
                    "kotei_shisan_sozokunin", "suido_meigi", *EXT],
    "model_marriage": ["konin_todoke", "mynumber_kisai_henko-m2", "kokuho_henko"],
    "model_divorce_lone_parent": ["rikon_todoke", "jido_teate_shometsu", "jido_teate_seikyusha_henko", "kokuho_henko",
                                  "jido_fuyo_teate", "hitorioya_iryo"],
    "model_certificates": ["juminhyo_seikyu", "inkan_shomei", "koseki_shomei", "kazei_shomei"],
    "model_move_in_lone_parent": ["jumin_tennyu", "kokuho_shutoku", "jido_teate", "kodomo_iryo-m2", "nyuyoji_kenshin-m2",
                                  "jido_fuyo_teate", "hitorioya_iryo"],
}


def _household(name: str) -> dict[str, Any]:
    return json.loads((HOUSEHOLDS / f"{name}.json").read_text(encoding="utf-8"))


def test_at_least_thirty_definitions_each_with_basis_documents_deadline_and_fee(defs: DefinitionSet) -> None:
    forms = {k: a for k, a in defs.applications.items() if a.external is None}
    assert len(defs.applications) >= 30 and len(forms) >= 30
    # Filings the law gives no deadline: creative 戸籍 filings, claims paid from the month after, certificates.
    no_deadline = {"konin_todoke", "jido_fuyo_teate", "hitorioya_iryo", "juminhyo_seikyu", "inkan_shomei",
                   "koseki_shomei", "kazei_shomei", "ext_ginko", "hoiku_nyusho", "nyuyoji_kenshin", "tennyu_gaku",
                   "inkan_toroku", "ninshin"}
    for app_id, app in defs.applications.items():
        assert "第" in app.legal_basis or "条例" in app.legal_basis, app_id
        assert app.documents_to_bring, app_id
        assert (app.deadline is not None) != (app_id in no_deadline), app_id
        assert app.fee >= 0
    for app_id in ("juminhyo_seikyu", "inkan_shomei", "kazei_shomei"):
        assert defs.applications[app_id].fee == 300
    assert defs.applications["koseki_shomei"].fee == 450


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_model_household_gets_exactly_its_applications(defs: DefinitionSet, name: str) -> None:
    raw = _household(name)
    validated = validate_answers(defs, raw, today=dt.date.fromisoformat(raw["visit_date"]))
    assert validated.errors == []
    ids = [i.instance_id for i in determine(defs, validated.answers, include_external=True)]
    assert sorted(ids) == sorted(EXPECTED[name])
    # City counters never get a step or a form for an external one.
    city = [i.instance_id for i in determine(defs, validated.answers)]
    assert sorted(city) == sorted(i for i in EXPECTED[name] if not i.startswith("ext_"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_model_bundle_resolves(defs: DefinitionSet, name: str) -> None:
    raw = _household(name)
    forms = resolve_all(defs, determine(defs, raw), case_number="K-1")
    assert len(forms) == len([i for i in EXPECTED[name] if not i.startswith("ext_")])
    printed = [c.text for f in forms for s in f.sections for r in s.rows for c in r.cells]
    assert not any(t in ("None", "MISSING") or "None" in t for t in printed)


def test_certificates_charge_per_copy(defs: DefinitionSet) -> None:
    inst = {i.application_id: i for i in determine(defs, _household("model_certificates"))}
    assert inst["juminhyo_seikyu"].copies == 2 and inst["juminhyo_seikyu"].fee_total == 600
    assert sum(i.fee_total for i in inst.values()) == 600 + 300 + 450 + 300
    zero = copy.deepcopy(_household("model_certificates"))
    zero["certificates"]["inkan_copies"] = 0
    assert "inkan_shomei" not in {i.application_id for i in determine(defs, zero)}
    many = copy.deepcopy(_household("model_certificates"))
    many["certificates"]["koseki_copies"] = 500
    assert {i.application_id: i for i in determine(defs, many)}["koseki_shomei"].copies == 20


def test_death_deadlines_move_off_the_year_end_closing(defs: DefinitionSet) -> None:
    # Died 2025-12-15: 14 days ends on 12/29 (closed; 1/1–1/3 closed, 1/4 a Sunday) → 2026-01-05;
    # 3 months 相続放棄 ends on Sunday 3/15 → 3/16; 4 months 準確定 4/15; 10 months 相続税 10/15; 3 years 相続登記.
    inst = {i.application_id: i for i in determine(defs, _household("model_death"), include_external=True)}
    assert inst["kaigo_soshitsu"].legal_deadline == dt.date(2025, 12, 29)
    assert inst["kaigo_soshitsu"].deadline == dt.date(2026, 1, 5)
    assert inst["ext_sozoku_hoki"].legal_deadline == dt.date(2026, 3, 15)
    assert inst["ext_sozoku_hoki"].deadline == dt.date(2026, 3, 16)
    assert inst["ext_jun_kakutei"].deadline == dt.date(2026, 4, 15)
    assert inst["ext_sozokuzei"].deadline == dt.date(2026, 10, 15)
    assert inst["ext_sozoku_toki"].deadline == dt.date(2028, 12, 15)
    # 時効 deadlines stay on the calendar day (open_day: false), even on a Saturday.
    assert inst["sosaihi"].deadline == inst["sosaihi"].legal_deadline == dt.date(2027, 12, 18)


def test_head_of_household_dying_with_family_brings_household_and_benefit_changes(defs: DefinitionSet) -> None:
    doc = _household("model_divorce_lone_parent")
    doc["life_events"] = ["death"]
    doc.pop("divorce")
    doc["death"] = {"member_id": "m1", "died_on": "2026-09-01", "heir_member_id": "m2", "heir_relationship": "spouse"}
    doc["household"]["members"].append({**doc["household"]["members"][2], "id": "m5", "given_name": "翼",
                                        "birth_date": "2008-05-05", "relationship": "child"})
    doc["household_change"] = {"new_head_member_id": "m2"}
    ids = {i.application_id for i in determine(defs, doc)}
    assert {"setai_henko", "kokuho_henko", "jido_teate_shometsu", "jido_teate_seikyusha_henko",
            "jido_fuyo_teate", "hitorioya_iryo"} <= ids
    assert "kokuho_soshitsu" not in ids  # the deceased was on employee insurance


def test_sections_appear_by_life_event_and_nothing_is_asked_twice(defs: DefinitionSet) -> None:
    def asked(answers: dict[str, Any]) -> set[str]:
        ctx = build_context(answers)
        out = set()
        for section in defs.interview.sections:
            if section.repeat:
                continue
            for f in section.fields:
                if f.ask_when is None or compile_expr(f.ask_when).evaluate(ctx):
                    out.add(f.path)
        return out

    death = asked(_household("model_death"))
    move_out = asked(_household("model_move_out_family"))
    assert "death.died_on" in death and "death.died_on" not in move_out
    assert "move_out.planned_on" in move_out and "move_out.planned_on" not in death
    # A lone parent moving within the city who also divorces is asked each fact once: the same path serves both.
    both = _household("model_move_within_family")
    both["life_events"] = ["move_within", "divorce"]
    shown = asked(both)
    assert "lone_parent.is_lone_parent" in shown and "move.moved_on" in shown
    paths = [f.path for s in defs.interview.sections if not s.repeat for f in s.fields]
    assert len(paths) == len(set(paths))


def test_bad_death_answers_get_field_level_japanese_errors(defs: DefinitionSet) -> None:
    raw = _household("model_death")
    raw["death"] = {**raw["death"], "member_id": "m9", "funeral_on": "2025-12-10"}
    errors = {e.field: e.message for e in validate_answers(defs, raw, today=dt.date(2026, 1, 10)).errors}
    assert errors == {"death.member_id": "世帯員の中にこの番号の方がいません",
                      "death.funeral_on": "葬儀の日が亡くなった日より前になっています"}
    same = _household("model_death")
    same["death"] = {**same["death"], "heir_member_id": "m1"}
    errors = {e.field: e.message for e in validate_answers(defs, same, today=dt.date(2026, 1, 10)).errors}
    assert errors == {"death.heir_member_id": "亡くなった方とは別の方を選んでください"}
