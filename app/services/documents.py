"""Applications, pre-filled PDFs, the signature and the writing saved for a case."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from app import events
from app.errors import NotFound, ValidationFailed
from app.forms.calibration import render_calibration
from app.forms.determine import Instance, determine
from app.forms.expr import as_date
from app.forms.fonts import load_fonts
from app.forms.handbook import build_handbook
from app.forms.handbook_pdf import render_handbook
from app.forms.loader import DefinitionSet
from app.forms.mapping import resolve_all, resolve_form, resolve_overlay, survey_totals, writing_saved
from app.forms.print_checks import print_warnings
from app.forms.render import RenderOptions, RenderResult, render_bundle, render_form
from app.forms.wareki import format_wareki
from app.models import Case, User, utcnow
from app.services import masking, signatures
from app.services.cases import get_case_or_raise, record_event

SURVEY_HEADINGS = {"name": "name_written", "address": "address_written", "birth_date": "birth_date_written",
                   "phone": "phone_written"}


@dataclass(frozen=True)
class Pdf:
    """A rendered PDF and the name to download it under."""

    content: bytes
    filename: str


def list_applications(defs: DefinitionSet, case: Case) -> list[Instance]:
    """The application instances the case's answers call for."""
    return determine(defs, case.answers, case_number=case.case_number)


def application_view(defs: DefinitionSet, inst: Instance) -> dict[str, Any]:
    """An instance as the API shows it."""
    app = inst.application
    dep = defs.departments.get(app.department or "")
    note = late_note(inst)
    return {
        "id": inst.instance_id,
        "application_id": inst.application_id,
        "title": inst.title,
        "department": app.department,
        "department_name": dep.name if dep else (app.external.place if app.external else ""),
        "legal_basis": app.legal_basis,
        "member_id": inst.member_id,
        "reasons": [{"reason": r.reason, "condition": r.condition, "values": r.values} for r in inst.reasons],
        "documents_to_bring": list(inst.documents),
        "deadline": inst.deadline.isoformat() if inst.deadline else None,
        "deadline_text": app.deadline.text if app.deadline else None,
        "fee": app.fee,
        "copies": inst.copies,
        "fee_total": inst.fee_total,
        "legal_deadline": inst.legal_deadline.isoformat() if inst.legal_deadline else None,
        "external": inst.external,
        "after": list(app.after),
        "missing": [{"path": m.path, "label": m.label} for m in inst.missing],
        "deadline_passed": note is not None,
        "late_note": note,
        "roles": [{"role": a.role_id, "label": a.label, "person_id": a.person_id, "name": a.person_name,
                   "chosen": a.chosen, "to_confirm": a.to_confirm, "signs": a.signs, "problem": a.problem}
                  for a in inst.roles.assignments],
        "signer": inst.signer_id,
        "overlay": app.overlay is not None,
    }


def late_note(inst: Instance) -> str | None:
    """What follows from a deadline passed by the visit date (None while in time).

    The one wording of it: the side panel, the review before signing and the routing slip (HTML and PDF)
    all show this text.
    """
    if not inst.deadline_passed(as_date(inst.scope.get("visit_date"))):
        return None
    deadline = inst.application.deadline
    assert deadline is not None and inst.deadline is not None
    text = f"期限（{format_wareki(inst.deadline)}、{deadline.text}）を過ぎています。"
    return text + (deadline.late or "遅れた理由を確認し、担当課に伝えてください。")


def late_notes(instances: list[Instance]) -> list[dict[str, str]]:
    """The forms of a visit whose deadline has passed, each with its late note (one per title and note:
    the 医療費助成 of two children is said once)."""
    out: list[dict[str, str]] = []
    for inst in instances:
        note = late_note(inst)
        if note is not None and not any(o["title"] == inst.title and o["note"] == note for o in out):
            out.append({"id": inst.instance_id, "title": inst.title, "note": note})
    return out


def print_warnings_view(case: Case) -> list[dict[str, str]]:
    """What the clerk must confirm before printing (e.g. a variant character no font draws)."""
    return [{"field": w.path, "text": w.text, "message": w.message} for w in print_warnings(case.answers, load_fonts())]


def _options(case: Case, *, city_name: str, defs: DefinitionSet, qr: str) -> RenderOptions:
    # No one signature for all forms: each form gets its own signer's signature (signatures.form_signatures).
    return RenderOptions(
        fonts=load_fonts(),
        qr_url=qr,
        city_name=city_name,
        generated_label=f"書かない窓口で作成　定義 {defs.fingerprint[:8]}",
    )


def render_instance_pdf(
    session: Session, *, defs: DefinitionSet, case_id: str, instance_id: str, city_name: str,
    actor: User | None = None,
) -> Pdf:
    """One application form as a PDF."""
    case = get_case_or_raise(session, case_id)
    inst = next((i for i in list_applications(defs, case) if i.instance_id == instance_id), None)
    if inst is None:
        raise NotFound("この案件にはその申請書はありません")
    form = resolve_form(defs, inst, case_number=case.case_number)
    form = replace(form, signatures=signatures.form_signatures(session, case, [inst]).get(inst.instance_id, ()))
    options = _options(case, city_name=city_name, defs=defs, qr=f"kakanai:{case.case_number}:{instance_id}")
    pdf = render_form(form, options).pdf
    record_event(session, case, "form_printed", actor=actor, data={"instance": instance_id})
    return Pdf(pdf, f"{case.case_number}_{instance_id}.pdf")


def render_form_pdfs(
    session: Session, *, defs: DefinitionSet, case: Case, city_name: str,
) -> list[tuple[Instance, RenderResult]]:
    """Every form of the visit as it will print (each with its own signer's signature, if signed), without
    recording a print, and with My Numbers and account numbers masked as on every screen (********9018):
    the review's page previews are made from these."""
    instances = determine(defs, masking.mask_answers(case.answers), case_number=case.case_number)
    signed = signatures.form_signatures(session, case, list_applications(defs, case))
    forms = resolve_all(defs, instances, case_number=case.case_number)
    out = []
    for inst, form in zip(instances, forms, strict=True):
        options = _options(case, city_name=city_name, defs=defs, qr=f"kakanai:{case.case_number}:{inst.instance_id}")
        out.append((inst, render_form(replace(form, signature=signed.get(inst.instance_id)), options)))
    return out


def render_overlay_pdf(
    session: Session, *, defs: DefinitionSet, case_id: str, instance_id: str, city_name: str,
    offset_mm: tuple[float, float], preview: bool, actor: User | None = None,
) -> Pdf:
    """A form's values only, at the official positions, for the paper the resident brought (preview: on the blank)."""
    case = get_case_or_raise(session, case_id)
    inst = next((i for i in list_applications(defs, case) if i.instance_id == instance_id), None)
    if inst is None:
        raise NotFound("この案件にはその申請書はありません")
    if inst.application.overlay is None:
        raise NotFound("この申請書には用紙への印字（重ね印刷）がありません")
    form = resolve_overlay(defs, inst, case_number=case.case_number, on_template=preview)
    options = replace(_options(case, city_name=city_name, defs=defs, qr=f"kakanai:{case.case_number}:{instance_id}"),
                      printer_offset_mm=offset_mm)
    pdf = render_form(form, options).pdf
    record_event(session, case, "form_printed", actor=actor, data={"instance": instance_id, "overlay": not preview})
    return Pdf(pdf, f"{case.case_number}_{instance_id}_{'preview' if preview else 'overlay'}.pdf")


def calibration_pdf(*, offset_mm: tuple[float, float], printer: str) -> Pdf:
    """The printer calibration page (A3 landscape, the 出生届 sheet's size)."""
    return Pdf(render_calibration(load_fonts(), size_mm=(420.0, 297.0), offset_mm=offset_mm, printer=printer),
               "calibration.pdf")


def render_bundle_pdf(
    session: Session, *, defs: DefinitionSet, case_id: str, city_name: str, actor: User | None = None,
) -> Pdf:
    """Every application of the case in one PDF, after a cover page listing them."""
    case = get_case_or_raise(session, case_id)
    instances = list_applications(defs, case)
    if not instances:
        raise ValidationFailed("この聞き取り内容では作成する申請書がありません",
                               details=[{"field": "life_events", "message": "手続きのきっかけを確認してください"}])
    signed = signatures.form_signatures(session, case, instances)
    forms = [replace(f, signatures=signed.get(f.instance_id, ()))
             for f in resolve_all(defs, instances, case_number=case.case_number)]
    options = _options(case, city_name=city_name, defs=defs, qr=f"kakanai:{case.case_number}")
    visit = case.answers.get("visit_date") or ""
    cover = [("案件番号", case.case_number), ("整理券番号", f"{case.ticket_number:03d}"), ("来庁日", str(visit)),
             ("申請書の数", f"{len(forms)} 件")]
    pdf = render_bundle(forms, options, cover_title="申請書一式（書かない窓口）", cover_lines=cover)
    record_event(session, case, "bundle_printed", actor=actor, data={"forms": len(forms)})
    return Pdf(pdf, f"{case.case_number}_bundle.pdf")


def list_external_steps(defs: DefinitionSet, case: Case) -> list[Instance]:
    """Steps outside the city hall (年金事務所, 法務局, 税務署, banks) the answers call for: no form, no slip step."""
    return [i for i in determine(defs, case.answers, case_number=case.case_number, include_external=True)
            if i.external]


def render_handbook_pdf(
    session: Session, *, defs: DefinitionSet, case_id: str, city_name: str, actor: User | None = None,
) -> Pdf:
    """The personal handbook (おくやみハンドブック for a death): every step, in the city and outside, with deadlines."""
    case = get_case_or_raise(session, case_id)
    handbook = build_handbook(defs, case.answers, case_number=case.case_number, city_name=city_name)
    if not handbook.steps:
        raise ValidationFailed("この聞き取り内容では案内する手続きがありません",
                               details=[{"field": "life_events", "message": "手続きのきっかけを確認してください"}])
    pdf = render_handbook(handbook, load_fonts())
    record_event(session, case, events.HANDBOOK_PRINTED, actor=actor, data={"steps": len(handbook.steps)})
    return Pdf(pdf, f"{case.case_number}_handbook.pdf")


def store_signature(
    session: Session, *, defs: DefinitionSet, case_id: str, png: bytes, max_bytes: int, actor: User | None,
    signer: str | None = None,
) -> Case:
    """Keep one signer's signature; it is drawn only on the forms that person signs."""
    case = get_case_or_raise(session, case_id)
    signed = signatures.sign(session, defs=defs, case=case, png=png, max_bytes=max_bytes, actor=actor, signer=signer)
    if case.signed_at is None:
        case.signed_at = utcnow()
    record_event(session, case, "signed", actor=actor, data={"forms": len(signed)})
    return case


def writing_saved_report(defs: DefinitionSet, case: Case) -> dict[str, Any]:
    """Fields the forms print for the resident, by kind, beside the survey's handwritten counts."""
    instances = list_applications(defs, case)
    counts = writing_saved(resolve_all(defs, instances, case_number=case.case_number))
    totals = survey_totals(counts)
    baseline = case.answers.get("survey_baseline") or {}
    comparison = {
        heading: {"written_before": baseline.get(key), "prefilled_now": totals[heading], "written_now": 0}
        for heading, key in SURVEY_HEADINGS.items()
    }
    return {
        "forms": len(instances),
        "counts": counts,
        "survey_headings": totals,
        "comparison": comparison,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
