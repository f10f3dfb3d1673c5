"""Roles of a visit on the shipped definitions: who files, who signs, who is paid, and who came."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from app.forms.answers import validate_answers
from app.forms.determine import Instance, determine, redirected
from app.forms.loader import DefinitionError, DefinitionSet, load_definitions
from app.forms.mapping import resolve_form
from app.settings import PROJECT_ROOT
from tests.conftest import MODEL_CASE

TODAY = dt.date(2026, 4, 6)


@pytest.fixture
def model() -> dict[str, Any]:
    return json.loads(MODEL_CASE.read_text(encoding="utf-8"))


def by_id(defs: DefinitionSet, answers: dict[str, Any]) -> dict[str, Instance]:
    return {i.instance_id: i for i in determine(defs, answers)}


def cell_text(defs: DefinitionSet, inst: Instance, label: str) -> str:
    form = resolve_form(defs, inst, case_number="R8-1")
    return next(c.text or "|".join(c.selected) for c in form.cells() if c.spec.label == label)


def test_model_household_head_files_and_signs_everything_of_the_household(defs: DefinitionSet,
                                                                           model: dict[str, Any]) -> None:
    found = by_id(defs, model)
    assert found["jumin_tennyu"].signer_id == "m1"
    assert found["jido_teate"].signer_id == "m1"
    assert found["mynumber_keizoku-m1"].signer_id == "m1"
    # 児童手当 請求者 is proposed (the head) and flagged for the clerk to confirm; it does not block.
    claimant = found["jido_teate"].roles.assignments[0]
    assert claimant.label == "請求者" and claimant.person_id == "m1" and claimant.to_confirm
    assert found["jido_teate"].roles.problems == []


def test_spouse_who_comes_alone_files_the_move_in_and_signs_only_her_forms(defs: DefinitionSet,
                                                                           model: dict[str, Any]) -> None:
    model["household"]["members"][1]["present"] = True  # 花子 alone
    model["household"]["members"][1]["seal_registration"] = True
    found = by_id(defs, model)
    assert found["jumin_tennyu"].signer_id == "m2"
    assert cell_text(defs, found["jumin_tennyu"], "届出人 氏名") == "尼崎　花子"
    assert cell_text(defs, found["jumin_tennyu"], "届出人と異動者の関係") == "本人（世帯員）"
    assert found["inkan_toroku-m2"].signer_id == "m2"
    assert found["kodomo_iryo-m3"].signer_id == "m2"
    # The head's own forms stay his: his card, and 児童手当 unless the clerk changes the 請求者.
    assert found["mynumber_keizoku-m1"].signer_id == "m1"
    assert found["jido_teate"].signer_id == "m1"
    signers = {i.signer_id for i in found.values()}
    assert signers == {"m1", "m2"}


def test_agent_visit_prints_the_agent_and_asks_for_the_letter_of_attorney(defs: DefinitionSet,
                                                                         model: dict[str, Any]) -> None:
    model["attendance"] = {"agent_kind": "proxy", "agent": {
        "family_name": "武庫", "given_name": "一子", "address": {
            "postal_code": "661-0002", "prefecture": "兵庫県", "city": "尼崎市", "town": "塚口町", "block": "一丁目1番1号"},
        "phone": "06-6000-0000", "relation": "知人"}, "id_documents": ["driver_license"]}
    found = by_id(defs, model)
    move_in = found["jumin_tennyu"]
    assert move_in.signer_id == "agent"
    assert any("委任状" in d for d in move_in.documents)
    form = resolve_form(defs, move_in, case_number="R8-1")
    assert form.signature_box == "agent"
    assert cell_text(defs, move_in, "代理人 氏名") == "武庫　一子"
    assert cell_text(defs, move_in, "代理人の資格") == "proxy"
    assert cell_text(defs, move_in, "届出人と異動者の関係") == "代理人"
    # 児童手当 cannot be claimed by an agent here: the claimant stays a parent, who must sign later.
    assert found["jido_teate"].signer_id == "m1"


def test_civil_servant_claimant_gets_the_employer_note_and_no_form(defs: DefinitionSet,
                                                                  model: dict[str, Any]) -> None:
    model["household"]["members"][0]["occupation"] = "civil_servant"
    assert "jido_teate" not in by_id(defs, model)
    (note,) = redirected(defs, model)
    assert note.application_id == "jido_teate" and "勤務先" in (note.redirect or "")
    # The clerk makes the spouse (not a civil servant) the claimant: the city form is back.
    model["roles"] = {"jido_teate": {"applicant": "m2", "holder": "m2"}}
    found = by_id(defs, model)
    assert found["jido_teate"].signer_id == "m2"
    assert redirected(defs, model) == []


def test_account_holder_other_than_the_claimant(defs: DefinitionSet, model: dict[str, Any]) -> None:
    model["roles"] = {"jido_teate": {"applicant": "m1", "holder": "m2"},
                      "kodomo_iryo-m3": {"applicant": "m1", "holder": "m2"}}
    found = by_id(defs, model)
    # 児童手当: only an account in the claimant's name; flagged before signing.
    assert any("口座名義人" in p for p in found["jido_teate"].roles.problems)
    # 医療費 allows a parent's account: no problem, and the real relation is printed (not a fixed 本人).
    assert found["kodomo_iryo-m3"].roles.problems == []
    assert cell_text(defs, found["kodomo_iryo-m3"], "口座名義人と申請者の関係") == "妻"
    model["roles"]["kodomo_iryo-m3"]["holder"] = "m1"
    assert cell_text(defs, by_id(defs, model)["kodomo_iryo-m3"], "口座名義人と申請者の関係") == "本人"


def test_a_choice_the_definition_does_not_allow_is_a_problem(defs: DefinitionSet, model: dict[str, Any]) -> None:
    model["roles"] = {"jido_teate": {"applicant": "m3"}}  # a child cannot claim
    found = by_id(defs, model)
    assert any("この役割になれません" in p for p in found["jido_teate"].roles.problems)


def test_role_choices_are_validated_in_the_answers(defs: DefinitionSet, model: dict[str, Any]) -> None:
    model["roles"] = {"jido_teate": {"applicant": "m9"}}
    result = validate_answers(defs, model, today=TODAY)
    assert [(e.field, e.message) for e in result.errors] == [("roles.jido_teate.applicant", "世帯員の中にこの番号の方がいません")]
    model["roles"] = {"jido_teate": {"applicant": "m2"}}
    assert validate_answers(defs, model, today=TODAY).answers["roles"] == {"jido_teate": {"applicant": "m2"}}


def test_loader_rejects_a_signer_twice_and_an_unknown_same_as(tmp_path: Any) -> None:
    import shutil

    root = tmp_path / "defs"
    shutil.copytree(PROJECT_ROOT / "form_definitions", root)
    path = root / "applications" / "jido_teate.yaml"
    text = path.read_text(encoding="utf-8").replace("    same_as: applicant\n", "    same_as: claimant\n")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError) as err:
        load_definitions(root)
    assert "same_as: これより前に宣言した役割の id を指定してください: claimant" in str(err.value)


def test_birth_to_a_foreign_father_filed_by_the_mother(defs: DefinitionSet) -> None:
    answers = json.loads((PROJECT_ROOT / "bench" / "households" / "foreign_parent_birth.json").read_text("utf-8"))
    result = validate_answers(defs, answers, today=dt.date(2025, 6, 5))
    assert result.errors == []
    birth = by_id(defs, result.answers)["shussei"]
    assert birth.signer_id == "m2"  # the chosen 届出人: the mother
    text = {c.spec.label: (c.text or "|".join(c.selected))
            for c in resolve_form(defs, birth, case_number="R7-1").cells()}
    assert text["父の氏名"] == "グエン　ヴァン　アン"  # katakana for the 戸籍
    assert text["父の氏名（外国人のときアルファベット）"] == "NGUYEN VAN AN"  # the alphabet in its own column
    nationality = [c.text for c in resolve_form(defs, birth, case_number="R7-1").cells()
                   if c.spec.label == "国籍（外国人のとき）"]
    assert nationality == ["ベトナム", ""]  # father, mother
    assert text["父母との続き柄"] == "legitimate"
    # Born 2025-06-01: inside the 2025 census period (2025-04-01 to 2026-03-31), so occupations print.
    assert text["（9）父の職業（国勢調査の年の4月1日から翌年3月31日までに生まれたときだけ）"] == "会社員（株式会社みなと精工）"
    assert text["母の職業"] == "家事"
    assert text["届出人の資格"] == "mother"
    assert text["届出人の生年月日"] == "平成7年8月30日"
    assert text["届出人の本籍"] == "兵庫県尼崎市東七松町一丁目23番地"
    # Outside a census period the occupations stay blank; with the father filing, his nationality is his 本籍 line.
    answers["birth"]["born_at"] = "2026-04-01T09:00"
    answers["household"]["members"][2]["birth_date"] = "2026-04-01"
    answers["visit_date"] = "2026-04-06"
    answers["roles"] = {"shussei": {"notifier": "m1"}}
    birth = by_id(defs, answers)["shussei"]
    text = {c.spec.label: (c.text or "|".join(c.selected))
            for c in resolve_form(defs, birth, case_number="R8-1").cells()}
    assert text["母の職業"] == "" and text["届出人の資格"] == "father"
    assert text["届出人の本籍"] == "ベトナム"


def test_census_period_boundaries() -> None:
    from app.forms.expr import FUNCTIONS

    census = FUNCTIONS["census_period"]
    assert census("2025-04-01") is True and census("2026-03-31") is True
    assert census("2025-03-31") is False and census("2026-04-01") is False
    assert census("2030-12-24T08:00") is True
