"""Roles of the life events beyond moving in: who files and signs after a death, a marriage, a divorce.

Every shipped form with a signature box declares its signer in YAML (no stopgap default in the engine);
a definition that prints a signature box without one is a `kakanai check` error with file, line and field.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from app.forms.determine import Instance, determine
from app.forms.fonts import load_fonts
from app.forms.layout import plan_form
from app.forms.loader import DefinitionError, DefinitionSet, load_definitions
from app.forms.mapping import all_cells, resolve_form
from app.forms.primitives import Image, Text
from app.forms.render_options import RenderOptions
from app.forms.typeset import Measure
from app.settings import PROJECT_ROOT

HOUSEHOLDS = PROJECT_ROOT / "bench" / "households"


def household(name: str) -> dict[str, Any]:
    return json.loads((HOUSEHOLDS / f"{name}.json").read_text(encoding="utf-8"))


def by_id(defs: DefinitionSet, answers: dict[str, Any]) -> dict[str, Instance]:
    return {i.instance_id: i for i in determine(defs, answers)}


def printed(defs: DefinitionSet, inst: Instance) -> str:
    return " ".join(c.text for c in resolve_form(defs, inst, case_number="R8-1").cells() if c.text)


def test_every_form_with_a_signature_box_declares_who_signs(defs: DefinitionSet) -> None:
    for app_id, app in defs.applications.items():
        boxes = [c for c in all_cells(app) if c.style == "signature"]
        if boxes:
            assert any(r.signs for r in app.roles), app_id


def test_death_the_deceased_never_signs_and_never_files(defs: DefinitionSet) -> None:
    answers = household("model_death")  # m1 (the head) died; his son lives in Osaka and files as heir
    found = by_id(defs, answers)
    signing = [i for i in found.values() if i.application.needs_signature]
    assert {i.application_id for i in signing} >= {"sosaihi", "kouki_soshitsu", "kogaku_ryoyohi",
                                                   "kotei_shisan_sozokunin", "shogaisha_techo_henkan", "suido_meigi"}
    for inst in signing:
        slots = inst.signing_slots
        assert slots, inst.instance_id
        assert all(s.person_id not in (None, "m1") for s in slots), inst.instance_id
        for role in inst.roles.assignments:
            assert "m1" not in {c.id for c in role.choices}, (inst.instance_id, role.role_id)
        # The filer's name cell prints the signer (the role), never the deceased.
        form = resolve_form(defs, inst, case_number="R8-1")
        signer_role = inst.roles.signer
        assert signer_role is not None
        named = [c.text for c in form.cells() if c.spec.source == signer_role.role_id and c.spec.kind == "name"]
        assert named and all(t and t != "大庄　茂" for t in named), inst.instance_id
    # The heir who lives elsewhere files and signs the おくやみ forms, with his own address and phone.
    sosaihi = found["sosaihi"]
    assert sosaihi.signer_id == "heir"
    text = printed(defs, sosaihi)
    assert "大庄　一樹" in text and "090-4567-8901" in text and "大阪市北区" in text
    assert found["kouki_soshitsu"].signer_id == "heir"


def test_death_a_clerk_cannot_make_the_deceased_the_notifier(defs: DefinitionSet) -> None:
    answers = household("model_death")
    answers["roles"] = {"kouki_soshitsu": {"notifier": "m1"}, "sosaihi": {"applicant": "m2"}}
    found = by_id(defs, answers)
    kouki = found["kouki_soshitsu"]
    assert kouki.signer_id != "m1"
    assert kouki.roles.problems == ["届出人: 選ばれた方はこの役割になれません。選び直してください"]
    # The widow may file the 葬祭費 instead of the son: her name, the household's address, her signature.
    sosaihi = found["sosaihi"]
    assert sosaihi.signer_id == "m2" and sosaihi.roles.problems == []
    text = printed(defs, sosaihi)
    assert "大庄　和子" in text and "大庄　一樹" not in text and "大阪市北区" not in text


def test_death_an_heir_in_the_household_files(defs: DefinitionSet) -> None:
    answers = household("model_death")
    answers["death"].pop("heir")
    answers["death"]["heir_member_id"] = "m2"
    found = by_id(defs, answers)
    assert {found[i].signer_id for i in ("sosaihi", "kouki_soshitsu", "kogaku_ryoyohi")} == {"m2"}
    assert all("heir" not in {c.id for c in r.choices} for r in found["sosaihi"].roles.assignments)


def test_marriage_both_spouses_sign_and_each_signature_lands_in_its_own_box(defs: DefinitionSet) -> None:
    found = by_id(defs, household("model_marriage"))
    konin = found["konin_todoke"]
    assert [(s.role_id, s.person_id) for s in konin.signing_slots] == [("husband", "m1"), ("wife", "m2")]
    assert [s.key for s in konin.signing_slots] == ["konin_todoke", "konin_todoke/wife"]
    form = resolve_form(defs, konin, case_number="R8-1")
    husband_png, wife_png = _png(20), _png(220)
    signed = form.__class__(**{**form.__dict__, "signatures": (("m1", husband_png), ("m2", wife_png))})
    assert signed.box_signatures() == {"husband": husband_png, "wife": wife_png}
    plan = plan_form(signed, RenderOptions(fonts=load_fonts()), Measure(load_fonts()))
    prims = plan.pages[0].prims
    images = [p for p in prims if isinstance(p, Image)]
    assert sorted(i.data for i in images) == sorted([husband_png, wife_png])
    labels = {p.text: p for p in prims if isinstance(p, Text) and p.text in ("夫になる人 署名", "妻になる人 署名")}
    for image, label in ((husband_png, "夫になる人 署名"), (wife_png, "妻になる人 署名")):
        (drawn,) = [i for i in images if i.data == image]
        other = labels["妻になる人 署名" if label == "夫になる人 署名" else "夫になる人 署名"]
        # Inside its own box: below its own label, in the same column, nearer to it than to the other box.
        assert drawn.box.x >= labels[label].x - 1 and drawn.box.top <= labels[label].y + 1
        assert abs(drawn.box.top - labels[label].y) < abs(drawn.box.top - other.y)
    # Only the husband signed so far: the wife's box stays empty.
    half = form.__class__(**{**form.__dict__, "signatures": (("m1", husband_png),)})
    plan = plan_form(half, RenderOptions(fonts=load_fonts()), Measure(load_fonts()))
    assert [p.data for p in plan.pages[0].prims if isinstance(p, Image)] == [husband_png]


def test_divorce_both_sign_and_follow_on_forms_name_the_parent_who_stays(defs: DefinitionSet) -> None:
    found = by_id(defs, household("model_divorce_lone_parent"))  # m1 (the father, head) leaves
    assert [(s.role_id, s.person_id) for s in found["rikon_todoke"].signing_slots] == [("husband", "m1"),
                                                                                          ("wife", "m2")]
    assert found["jido_fuyo_teate"].signer_id == "m2"
    assert found["hitorioya_iryo"].signer_id == "m2"
    assert found["jido_teate_seikyusha_henko"].signer_id == "m2"
    assert found["kokuho_henko"].signer_id == "m2"  # the 国保 change is filed by the one who stays
    assert found["jido_teate_shometsu"].signer_id == "m1"  # the leaving 受給者 ends his own claim


def test_move_out_and_certificates_name_who_came(defs: DefinitionSet) -> None:
    answers = household("model_move_out_family")
    answers["household"]["members"][1]["present"] = True  # only the wife came
    found = by_id(defs, answers)
    assert found["jumin_tenshutsu"].signer_id == "m2"
    form = resolve_form(defs, found["jumin_tenshutsu"], case_number="R8-1")
    relation = next(c.text for c in form.cells() if c.spec.label == "届出人と異動者の関係")
    assert relation == "本人（世帯員）"
    certs = by_id(defs, household("model_certificates"))
    assert {certs[i].signer_id for i in ("juminhyo_seikyu", "koseki_shomei", "kazei_shomei", "inkan_shomei")} == {"m1"}


def _png(shade: int) -> bytes:
    pil = pytest.importorskip("PIL.Image")
    import io

    image = pil.new("RGB", (120, 40), (shade, shade, shade))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "defs"
    shutil.copytree(PROJECT_ROOT / "form_definitions", root)
    return root


def _line(text: str, needle: str) -> int:
    return next(i for i, t in enumerate(text.splitlines(), 1) if needle in t)


def test_loader_refuses_a_signature_box_without_a_declared_signer(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    path = root / "applications" / "sosaihi.yaml"
    text = path.read_text(encoding="utf-8")
    start, end = text.index("\nroles:\n"), text.index("\nlayout:\n")
    text = text[:start] + text[end:]
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError) as err:
        load_definitions(root)
    line = _line(text, "{label: 申請者 署名, style: signature")
    assert str(err.value).splitlines() == [
        f"applications/sosaihi.yaml:{line}: layout.sections.1.rows.0.cells.2: 署名欄「申請者 署名」がありますが、"
        "署名する方が roles に宣言されていません（届出人・申請者・請求者などの役割に signs: true を付けてください）"]


def test_loader_refuses_a_box_for_an_unknown_signer_and_a_second_signer_without_a_box(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    path = root / "applications" / "konin_todoke.yaml"
    text = path.read_text(encoding="utf-8").replace("signs_as: wife", "signs_as: bride")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError) as err:
        load_definitions(root)
    box = _line(text, "signs_as: bride")
    signs = [i for i, t in enumerate(text.splitlines(), 1) if t.strip() == "signs: true"][1]
    assert str(err.value).splitlines() == [
        f"applications/konin_todoke.yaml:{signs}: roles.1.signs: 2人目の署名する方「妻になる人」の署名欄がありません"
        "（その方の欄に signs_as: wife を書いてください）",
        f"applications/konin_todoke.yaml:{box}: layout.sections.1.rows.1.cells.4.signs_as: signs_as には署名する役割"
        "（signs: true）の id か agent を指定してください: bride（署名する役割: husband, wife）",
    ]


def test_the_heir_outside_the_household_can_be_chosen_in_the_answers(defs: DefinitionSet) -> None:
    import datetime as dt

    from app.forms.answers import validate_answers

    answers = household("model_death")
    answers["roles"] = {"sosaihi": {"applicant": "heir"}}
    result = validate_answers(defs, answers, today=dt.date(2025, 12, 22))
    assert result.answers["roles"] == {"sosaihi": {"applicant": "heir"}}
    assert not [e for e in result.errors if e.field.startswith("roles")]
    answers["death"].pop("heir")
    answers["death"]["heir_member_id"] = "m2"
    result = validate_answers(defs, answers, today=dt.date(2025, 12, 22))
    assert [(e.field, e.message) for e in result.errors if e.field.startswith("roles")] == [
        ("roles.sosaihi.applicant", "世帯員の中にこの番号の方がいません")]
