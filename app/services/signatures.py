"""One signature per signer: who must sign which forms, storing a signature, and voiding it after a change.

Each form names its signer (届出人・申請者・請求者, or the 代理人) through its roles. A person draws once;
the signature is used only on the forms that person signs. What each signed form printed is kept as a
digest: when a later answer changes what a signed form prints, that form's signature is voided (the
audit log and the case events record it) and the form waits for its signer again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import ValidationFailed
from app.forms.context import OUTSIDE_HEIR
from app.forms.determine import Instance, SigningSlot, determine
from app.forms.loader import DefinitionSet
from app.forms.mapping import printed_digest, resolve_form
from app.forms.roles import AGENT, agent_person, person_name
from app.forms.signature_image import SignatureImageError, check_signature_png, usable_signature
from app.models import Case, CaseEvent, Signature, SignedForm, User, utcnow
from app.services import audit

SIGNATURE_VOIDED = "signature_voided"


@dataclass
class SignerView:
    """A person who signs at this visit, the forms they sign, and which of those still wait for them."""

    signer: str
    name: str
    forms: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    signed: bool = False

# Bound for re-checking stored signatures before they are drawn.
_STORED_SIGNATURE_MAX = 16 * 1024 * 1024


def signing_instances(defs: DefinitionSet, case: Case) -> list[Instance]:
    """Forms of the case that need a signature."""
    return [i for i in determine(defs, case.answers, case_number=case.case_number)
            if i.application.needs_signature]


def _slots(instances: Sequence[Instance]) -> list[tuple[Instance, SigningSlot]]:
    """Every signature the forms need: one per signing role of each form (婚姻届: two)."""
    return [(inst, slot) for inst in instances for slot in inst.signing_slots]


def _name(case: Case, signer: str) -> str:
    if signer == AGENT:
        return person_name(agent_person(case.answers)) + "（代理人）"
    if signer == OUTSIDE_HEIR:
        return person_name((case.answers.get("death") or {}).get("heir"))
    members = (case.answers.get("household") or {}).get("members") or []
    return next((person_name(m) for m in members if m.get("id") == signer), signer)


def _valid(session: Session, case: Case) -> dict[str, SignedForm]:
    rows = session.scalars(select(SignedForm).where(SignedForm.case_id == case.id, SignedForm.voided_at.is_(None)))
    return {row.instance_id: row for row in rows}


def signers(session: Session, defs: DefinitionSet, case: Case) -> list[SignerView]:
    """Everyone who signs at this visit, in the order their first form appears."""
    valid = _valid(session, case)
    signed = set(session.scalars(select(Signature.signer).where(Signature.case_id == case.id)))
    views: dict[str, SignerView] = {}
    for inst, slot in _slots(signing_instances(defs, case)):
        signer = slot.person_id
        if signer is None:
            continue
        view = views.setdefault(signer, SignerView(signer, _name(case, signer), signed=signer in signed))
        view.forms.append(inst.title)
        row = valid.get(slot.key)
        if row is None or row.signer != signer:
            view.waiting.append(inst.title)
    return list(views.values())


def unsigned_forms(session: Session, defs: DefinitionSet, case: Case) -> list[dict[str, str]]:
    """Forms whose signer has not signed them (yet, or again after a change): the exit check lists them."""
    valid = _valid(session, case)
    out = []
    for inst, slot in _slots(signing_instances(defs, case)):
        row = valid.get(slot.key)
        if row is None or row.signer != slot.person_id:
            who = _name(case, slot.person_id) if slot.person_id else "（署名する方が決まっていません）"
            out.append({"instance_id": inst.instance_id, "title": inst.title, "signer": who})
    return out


def sign(
    session: Session, *, defs: DefinitionSet, case: Case, png: bytes, max_bytes: int, actor: User | None,
    signer: str | None = None,
) -> list[str]:
    """Store one signer's signature and sign every form that person signs; returns their instance ids.

    Without `signer` the first person still to sign is meant (the head for a household signing alone).
    """
    try:  # decoded in full, with size and dimension limits: a truncated image is refused here
        check_signature_png(png, max_bytes=max_bytes)
    except SignatureImageError as exc:
        raise ValidationFailed(details=[{"field": "signature", "message": str(exc)}]) from None
    people = signers(session, defs, case)
    if signer is None:
        pending = [p for p in people if p.waiting] or people
        signer = pending[0].signer if pending else None
    if signer is None or signer not in {p.signer for p in people}:
        raise ValidationFailed(details=[{"field": "signer", "message": "この方が署名する申請書はありません"}])
    now = utcnow()
    row = session.scalar(select(Signature).where(Signature.case_id == case.id, Signature.signer == signer))
    if row is None:
        row = Signature(case_id=case.id, signer=signer)
        session.add(row)
    row.png = png
    row.signed_at = now
    existing = {r.instance_id: r for r in session.scalars(select(SignedForm).where(SignedForm.case_id == case.id))}
    signed: list[str] = []
    for inst, slot in _slots(signing_instances(defs, case)):
        if slot.person_id != signer:
            continue
        digest = printed_digest(resolve_form(defs, inst, case_number=case.case_number))
        # One row per signature a form needs: keyed by the form's id for its first signer (婚姻届's second
        # signer: "<form>/<role>"), so a form signed by two people waits for both.
        form = existing.get(slot.key)
        if form is None:
            form = SignedForm(case_id=case.id, instance_id=slot.key)
            session.add(form)
        form.signer, form.digest, form.signed_at, form.voided_at = signer, digest, now, None
        if inst.instance_id not in signed:
            signed.append(inst.instance_id)
    session.flush()
    return signed


def void_changed(session: Session, *, defs: DefinitionSet, case: Case, actor: User | None) -> list[str]:
    """Void the signature of every signed form whose printed values (or signer) changed; returns their ids."""
    rows = list(session.scalars(select(SignedForm).where(SignedForm.case_id == case.id,
                                                         SignedForm.voided_at.is_(None))))
    if not rows:
        return []
    current = {slot.key: (inst, slot) for inst, slot in _slots(signing_instances(defs, case))}
    voided: list[str] = []
    now = utcnow()
    for row in rows:
        inst, slot = current.get(row.instance_id, (None, None))
        if inst is not None and slot is not None and slot.person_id == row.signer \
                and printed_digest(resolve_form(defs, inst, case_number=case.case_number)) == row.digest:
            continue
        row.voided_at = now
        voided.append(row.instance_id)
        # Which form, never what changed: the values are personal data.
        session.add(CaseEvent(case_id=case.id, kind=SIGNATURE_VOIDED, actor_id=actor.id if actor else None,
                              data={"instance": row.instance_id}, at=now))
        audit.record(session, action=audit.SIGNATURE_VOIDED, actor=actor, case_id=case.id,
                     target=f"{row.instance_id} 署名無効（内容変更）")
    return voided


def tablet_signed(session: Session, case_ids: Sequence[str]) -> dict[str, dict[str, frozenset[str]]]:
    """case id → form instance id → the people whose tablet signature is valid on that form (for counting).

    A case without any signed-form rows is absent (signed, if at all, before signers were recorded).
    """
    out: dict[str, dict[str, set[str]]] = {}
    for i in range(0, len(case_ids), 500):
        rows = session.execute(select(SignedForm.case_id, SignedForm.instance_id, SignedForm.signer,
                                      SignedForm.voided_at).where(SignedForm.case_id.in_(case_ids[i:i + 500])))
        for case_id, key, signer, voided_at in rows:
            forms = out.setdefault(case_id, {})  # a case whose signatures were all voided maps to {}
            if voided_at is None:
                # A second signer's row is keyed "<form>/<role>" (婚姻届): it belongs to the same form.
                forms.setdefault(key.split("/", 1)[0], set()).add(signer)
    return {c: {k: frozenset(v) for k, v in forms.items()} for c, forms in out.items()}


def form_signatures(session: Session, case: Case, instances: Sequence[Instance]) -> dict[str, tuple[tuple[str, bytes], ...]]:
    """instance id → (person id, PNG) for each of the form's signers whose signature is valid on it."""
    valid = _valid(session, case)
    pngs = {s.signer: s.png for s in session.scalars(select(Signature).where(Signature.case_id == case.id))}
    out: dict[str, tuple[tuple[str, bytes], ...]] = {}
    for inst, slot in _slots(instances):
        row = valid.get(slot.key)
        if slot.person_id is None or row is None or row.signer != slot.person_id:
            continue
        # Stored signatures are re-checked before drawing (a generous bound: the setting may have shrunk);
        # one that no longer decodes is left off the form rather than failing the PDF.
        png = usable_signature(pngs.get(slot.person_id), max_bytes=_STORED_SIGNATURE_MAX)
        if png is not None:
            out[inst.instance_id] = (*out.get(inst.instance_id, ()), (slot.person_id, png))
    return out
