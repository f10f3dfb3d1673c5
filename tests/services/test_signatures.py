"""One signature per signer: each form carries only its own signer's signature; a later change voids it."""

from __future__ import annotations

import copy
import datetime as dt
import io
import uuid
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.forms.loader import DefinitionSet
from app.models import AuditEntry, CaseEvent, SignedForm
from app.services import cases, documents, routing, signatures
from app.services.definitions import DefinitionRegistry

DAY = dt.date(2026, 4, 6)
MAX = 512 * 1024


def png(shade: int) -> bytes:
    pil = pytest.importorskip("PIL.Image")
    image = pil.new("RGB", (120, 40), (shade, shade, shade))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


HEAD_PNG, SPOUSE_PNG = 10, 200


@pytest.fixture
def defs(registry: DefinitionRegistry) -> DefinitionSet:
    return registry.current


def _case(db: Session, defs: DefinitionSet, answers: dict[str, Any]) -> Any:
    return cases.create_case(db, defs=defs, answers=answers, user=None, office=f"s{uuid.uuid4().hex[:8]}", today=DAY)


def _spouse_alone(model_case: dict[str, Any]) -> dict[str, Any]:
    answers = copy.deepcopy(model_case)
    answers["household"]["members"][1]["present"] = True
    answers["household"]["members"][1]["seal_registration"] = True
    return answers


def image_sizes(pdf: bytes) -> list[tuple[int, int]]:
    """(width, height) of every image drawn on the form's first page."""
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    return [(img.image.width, img.image.height) for img in page.images]


def image_shades(pdf: bytes) -> set[int]:
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    return {img.image.convert("L").getpixel((5, 5)) for img in page.images}


def test_spouse_signs_her_forms_and_the_heads_wait(db: Session, defs: DefinitionSet,
                                                   model_case: dict[str, Any]) -> None:
    case = _case(db, defs, _spouse_alone(model_case))
    people = {s.signer: s for s in signatures.signers(db, defs, case)}
    assert set(people) == {"m1", "m2"}
    assert "住民異動届（転入届）" in people["m2"].forms
    signed = documents.store_signature(db, defs=defs, case_id=case.id, png=png(SPOUSE_PNG), max_bytes=MAX,
                                       actor=None, signer="m2")
    assert signed.signed_at is not None
    # Her move-in form carries her signature; the head's 児童手当 keeps an empty box.
    mine = documents.render_instance_pdf(db, defs=defs, case_id=case.id, instance_id="jumin_tennyu", city_name="み")
    assert image_shades(mine.content) == {SPOUSE_PNG}
    his = documents.render_instance_pdf(db, defs=defs, case_id=case.id, instance_id="jido_teate", city_name="み")
    assert image_shades(his.content) == set()
    # The exit check lists the forms still waiting for the head.
    missed = [m for m in routing.exit_check(db, defs=defs, case=case) if m["kind"] == "unsigned_form"]
    assert {m["instance"] for m in missed} == {"jido_teate", "mynumber_keizoku-m1"}
    assert all("尼崎　太郎" in m["message"] for m in missed)
    documents.store_signature(db, defs=defs, case_id=case.id, png=png(HEAD_PNG), max_bytes=MAX, actor=None,
                              signer="m1")
    assert [m for m in routing.exit_check(db, defs=defs, case=case) if m["kind"] == "unsigned_form"] == []
    bundle = documents.render_bundle_pdf(db, defs=defs, case_id=case.id, city_name="み").content
    shades = [{img.image.convert("L").getpixel((5, 5)) for img in page.images}
              for page in PdfReader(io.BytesIO(bundle)).pages]
    assert {HEAD_PNG} in shades and {SPOUSE_PNG} in shades
    assert not any(len(s) > 1 for s in shades)  # never two people's signatures on one page


def test_a_person_with_no_form_to_sign_is_refused(db: Session, defs: DefinitionSet,
                                                  model_case: dict[str, Any]) -> None:
    case = _case(db, defs, copy.deepcopy(model_case))
    with pytest.raises(Exception) as err:
        documents.store_signature(db, defs=defs, case_id=case.id, png=png(1), max_bytes=MAX, actor=None,
                                  signer="m3")
    assert "署名する申請書はありません" in str(getattr(err.value, "details", err.value))


def test_a_later_change_voids_the_signature_of_the_forms_that_print_it(db: Session, defs: DefinitionSet,
                                                                       model_case: dict[str, Any]) -> None:
    case = _case(db, defs, copy.deepcopy(model_case))
    documents.store_signature(db, defs=defs, case_id=case.id, png=png(HEAD_PNG), max_bytes=MAX, actor=None)
    assert routing.exit_check(db, defs=defs, case=case) and not [
        m for m in routing.exit_check(db, defs=defs, case=case) if m["kind"] == "unsigned_form"]
    changed = copy.deepcopy(case.answers)
    changed["household"]["members"][3]["childcare"]["preferred_facilities"] = ["武庫之荘保育所"]
    case = cases.update_answers(db, defs=defs, case_id=case.id, answers=changed, expected_version=case.version,
                                user=None, today=DAY)
    voided = set(db.scalars(select(SignedForm.instance_id).where(SignedForm.case_id == case.id,
                                                                 SignedForm.voided_at.is_not(None))))
    assert voided == {"hoiku_nyusho-m4"}
    # Recorded (which form, never the values), and the form waits for its signer again without a signature.
    events = [e.data for e in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id,
                                                                 CaseEvent.kind == "signature_voided"))]
    assert events == [{"instance": "hoiku_nyusho-m4"}]
    entries = list(db.scalars(select(AuditEntry).where(AuditEntry.case_id == case.id,
                                                       AuditEntry.action == "signature_voided")))
    assert [e.target for e in entries] == ["hoiku_nyusho-m4 署名無効（内容変更）"]
    missed = [m for m in routing.exit_check(db, defs=defs, case=case) if m["kind"] == "unsigned_form"]
    assert [m["instance"] for m in missed] == ["hoiku_nyusho-m4"]
    pdf = documents.render_instance_pdf(db, defs=defs, case_id=case.id, instance_id="hoiku_nyusho-m4", city_name="み")
    assert image_shades(pdf.content) == set()
    other = documents.render_instance_pdf(db, defs=defs, case_id=case.id, instance_id="jido_teate", city_name="み")
    assert image_shades(other.content) == {HEAD_PNG}
    # Signing again restores it.
    documents.store_signature(db, defs=defs, case_id=case.id, png=png(HEAD_PNG), max_bytes=MAX, actor=None)
    assert [m for m in routing.exit_check(db, defs=defs, case=case) if m["kind"] == "unsigned_form"] == []


def test_an_agent_signs_in_the_agent_box(db: Session, defs: DefinitionSet, model_case: dict[str, Any]) -> None:
    answers = copy.deepcopy(model_case)
    answers["attendance"] = {"agent_kind": "proxy", "agent": {
        "family_name": "武庫", "given_name": "一子", "address": {
            "postal_code": "661-0002", "prefecture": "兵庫県", "city": "尼崎市", "town": "塚口町",
            "block": "一丁目1番1号"}}}
    case = _case(db, defs, answers)
    assert "agent" in {s.signer for s in signatures.signers(db, defs, case)}
    documents.store_signature(db, defs=defs, case_id=case.id, png=png(SPOUSE_PNG), max_bytes=MAX, actor=None,
                              signer="agent")
    pdf = documents.render_instance_pdf(db, defs=defs, case_id=case.id, instance_id="jumin_tennyu", city_name="み")
    page = PdfReader(io.BytesIO(pdf.content)).pages[0]
    assert len(page.images) == 1
    # The image sits in the 代理人 box: below the 届出人 row, i.e. lower on the page than 届出人 署名's label.
    text_y: dict[str, float] = {}

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip() in ("届出人 署名", "代理人 署名"):
            text_y[text.strip()] = tm[5]

    page.extract_text(visitor_text=visit)
    assert set(text_y) == {"届出人 署名", "代理人 署名"}
    placed = [op for op in page.get_contents().operations if op[1] == b"cm"]
    image_y = [float(op[0][5]) for op in placed if float(op[0][0]) > 10]
    assert image_y and min(abs(y - text_y["代理人 署名"]) for y in image_y) < min(abs(y - text_y["届出人 署名"])
                                                                            for y in image_y)


def test_marriage_form_waits_for_both_spouses_and_carries_each_signature(db: Session, defs: DefinitionSet) -> None:
    import json

    from app.settings import PROJECT_ROOT

    answers = json.loads((PROJECT_ROOT / "bench" / "households" / "model_marriage.json").read_text("utf-8"))
    case = _case(db, defs, answers)
    people = {s.signer: s for s in signatures.signers(db, defs, case)}
    assert "婚姻届" in people["m1"].forms and "婚姻届" in people["m2"].forms
    documents.store_signature(db, defs=defs, case_id=case.id, png=png(HEAD_PNG), max_bytes=MAX, actor=None, signer="m1")
    konin = documents.render_instance_pdf(db, defs=defs, case_id=case.id, instance_id="konin_todoke", city_name="み")
    assert image_shades(konin.content) == {HEAD_PNG}
    waiting = [m for m in routing.exit_check(db, defs=defs, case=case) if m["kind"] == "unsigned_form"]
    assert [m["message"] for m in waiting if m["instance"] == "konin_todoke"] == ["「婚姻届」に潮江　美咲さんの署名がありません"]
    # Names written by hand: his one tablet signature, and a pen signature in each box of hers.
    from app.services.metrics import writing_of

    def names_by_hand() -> int:
        signed = signatures.tablet_signed(db, [case.id]).get(case.id)
        counts = writing_of(defs, case, signed)
        assert counts is not None
        return counts["name"]["by_hand"]

    her_boxes = len(people["m2"].forms)
    assert her_boxes == 2  # 婚姻届 (her box) and her マイナンバーカード 氏名変更
    assert names_by_hand() == 1 + her_boxes
    documents.store_signature(db, defs=defs, case_id=case.id, png=png(SPOUSE_PNG), max_bytes=MAX, actor=None,
                              signer="m2")
    assert names_by_hand() == 2
    konin = documents.render_instance_pdf(db, defs=defs, case_id=case.id, instance_id="konin_todoke", city_name="み")
    assert image_shades(konin.content) == {HEAD_PNG, SPOUSE_PNG}
    assert len(image_sizes(konin.content)) == 2
    assert not [m for m in routing.exit_check(db, defs=defs, case=case)
                if m["kind"] == "unsigned_form" and m["instance"] == "konin_todoke"]
    rows = {r.instance_id: r.signer for r in db.scalars(select(SignedForm).where(SignedForm.case_id == case.id))}
    assert rows["konin_todoke"] == "m1" and rows["konin_todoke/wife"] == "m2"
    # Writing saved counts both signatures of the one form (one name each).
    assert signatures.tablet_signed(db, [case.id])[case.id]["konin_todoke"] == {"m1", "m2"}
    # A change to what the form prints voids both signatures.
    changed = copy.deepcopy(case.answers)
    changed["marriage"]["new_honseki"] = "兵庫県尼崎市東七松町一丁目1番地"
    cases.update_answers(db, defs=defs, case_id=case.id, answers=changed, expected_version=case.version, user=None,
                         today=DAY)
    waiting = {m["message"] for m in routing.exit_check(db, defs=defs, case=case)
               if m["kind"] == "unsigned_form" and m["instance"] == "konin_todoke"}
    assert len(waiting) == 2
