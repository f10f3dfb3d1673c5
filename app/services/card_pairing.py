"""One-time pairing codes for the counter card bridge, and storing what the card said on the visit.

The tablet shows a short code for one visit (and one household member); the card bridge at the
counter sends it with the card's facts. The code is the bridge's only credential: random, stored as
a hash, valid a few minutes, used once, and failed tries from one address are limited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import AppError, Conflict, NotFound, ValidationFailed
from app.forms.answers import is_valid_my_number, validate_answers
from app.forms.card_facts import CARD_SOURCE, CardApplied, address_path, apply_card
from app.forms.loader import DefinitionSet
from app.models import CardPairing, Case, User, utcnow
from app.services import answer_sources, audit, cases

log = logging.getLogger(__name__)
# No 0/O, 1/I/L: the code is read off a tablet and typed at the counter PC.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
LIFETIME = dt.timedelta(minutes=5)
MAX_FAILURES = 10
FAILURE_WINDOW = dt.timedelta(minutes=10)
CARD_READ = "card_read"  # CaseEvent kind; data: member_id, fields (names only)
PAIRING_CREATED, PAIRING_USED, PAIRING_FAILED = audit.CARD_PAIRING, audit.CARD_READING, audit.CARD_PAIRING_FAILED


class TooManyPairingFailures(AppError):
    """Too many wrong pairing codes from one address."""

    status = 429
    code = "too_many_attempts"
    keep_changes = True
    message = "ペアリングコードの誤りが続いたため、この端末からの送信を一時的に止めています。10分ほど待ってからお試しください"


class PairingInvalid(NotFound):
    """Unknown, used or expired code (which one is not told)."""

    keep_changes = True
    message = "ペアリングコードが正しくないか、有効期限が切れています。タブレットで新しいコードを表示してください"


@dataclass(frozen=True)
class CardReading:
    """The facts a card bridge read off the card (the PIN never comes to the server)."""

    name: str
    address: str
    birth_date: str
    sex: str
    my_number: str


def _hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def normalise_code(code: str) -> str:
    """'abcd-efgh ' → 'ABCDEFGH'."""
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())[:32]


def format_code(code: str) -> str:
    """ABCDEFGH → ABCD-EFGH, as the tablet shows it."""
    return f"{code[:4]}-{code[4:]}"


def create_pairing(session: Session, *, case_id: str, member_id: str | None, user: User,
                   client: audit.Client | None = None) -> tuple[str, CardPairing]:
    """A new code for reading one card into this visit; returns the code (shown once) and its row."""
    case = cases.get_case_or_raise(session, case_id)
    if case.status in ("closed", "cancelled"):
        raise Conflict("この案件は終了しているため、カードを読み込めません")
    members = (case.answers.get("household") or {}).get("members") or []
    if member_id and not any(m.get("id") == member_id for m in members):
        raise ValidationFailed(details=[{"field": "member_id", "message": "世帯員の中にこの番号の方がいません"}])
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    now = utcnow()
    row = CardPairing(case_id=case.id, code_hash=_hash(code), member_id=member_id or None, created_by=user.id,
                      created_at=now, expires_at=now + LIFETIME)
    session.add(row)
    session.flush()
    audit.record(session, action=PAIRING_CREATED, actor=user, case_id=case.id, target=f"pairing {row.id}",
                 client=client)
    return code, row


def pairing_status(session: Session, *, case_id: str, pairing_id: int) -> dict[str, object]:
    """waiting / used / expired, and after use what the reading filled and what to check (no personal data)."""
    row = session.get(CardPairing, pairing_id)
    if row is None or row.case_id != case_id:
        raise NotFound("このペアリングは見つかりません")
    if row.used_at is not None:
        return {"status": "used", **row.result}
    if row.expires_at <= utcnow():
        return {"status": "expired"}
    return {"status": "waiting", "expires_in": int((row.expires_at - utcnow()).total_seconds())}


def _redeemable(session: Session, code: str, client: audit.Client) -> CardPairing:
    now = utcnow()
    if audit.count_failed(session, action=PAIRING_FAILED, ip=client.ip, since=now - FAILURE_WINDOW) >= MAX_FAILURES:
        raise TooManyPairingFailures()
    normal = normalise_code(code)
    row = None
    if len(normal) == CODE_LENGTH:
        row = session.scalar(select(CardPairing).where(CardPairing.code_hash == _hash(normal)))
    if row is None or row.used_at is not None or row.expires_at <= now:
        audit.record(session, action=PAIRING_FAILED, actor_name="card-bridge", outcome="refused", client=client,
                     case_id=row.case_id if row else None)
        raise PairingInvalid()
    return row


def check_code(session: Session, *, code: str, client: audit.Client) -> dict[str, object]:
    """Is this code usable now? (the bridge asks before the resident types the PIN)."""
    row = _redeemable(session, code, client)
    case = cases.get_case_or_raise(session, row.case_id)
    target = address_path(case.answers)
    return {"valid": True, "expires_in": int((row.expires_at - utcnow()).total_seconds()),
            "address_to": "前の住所（転入）" if target == "move.previous_address" else "住所"}


def _member_field(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def redeem(session: Session, *, defs: DefinitionSet, code: str, reading: CardReading, client: audit.Client,
           today: dt.date) -> CardApplied:
    """Store the card's facts on the paired visit; the code is spent. Nothing is stored on error."""
    row = _redeemable(session, code, client)
    case: Case = cases.get_case_or_raise(session, row.case_id)
    if case.status in ("closed", "cancelled"):
        raise Conflict("この案件は終了しているため、カードを読み込めません")
    if not is_valid_my_number(reading.my_number):
        raise ValidationFailed(details=[{"field": "my_number", "message": "個人番号の検査用数字が一致しません"}])
    applied = apply_card(case.answers, name=reading.name, address=reading.address, birth_date=reading.birth_date,
                         sex=reading.sex, my_number=reading.my_number, member_id=row.member_id)
    result = validate_answers(defs, applied.answers, today=today, draft=True)
    target = address_path(applied.answers)
    if any(e.field.startswith(target) for e in result.errors) and target in applied.paths:
        # An address the card has but the definitions reject is left to the clerk, not the whole reading.
        applied = apply_card(case.answers, name=reading.name, address="", birth_date=reading.birth_date,
                             sex=reading.sex, my_number=reading.my_number, member_id=row.member_id)
        applied.warnings = [w for w in applied.warnings if "住所" not in w]
        applied.warnings.append("カードの住所を住所欄に当てはめられませんでした。住所は手で入力してください")
        result = validate_answers(defs, applied.answers, today=today, draft=True)
    if result.errors:
        raise ValidationFailed(details=[{"field": _member_field(e.field), "message": e.message} for e in result.errors])
    case = cases.update_answers(session, defs=defs, case_id=case.id, answers=applied.answers,
                                expected_version=case.version, user=None, today=today, draft=True)
    row.used_at = utcnow()
    fields = [p.removeprefix(f"household.members.{applied.member_id}.") for p in applied.paths]
    row.result = {"member_id": applied.member_id, "fields": fields, "warnings": applied.warnings}
    answer_sources.record(session, case_id=case.id, paths=applied.paths, source=CARD_SOURCE)
    cases.record_event(session, case, CARD_READ, data={"member_id": applied.member_id, "fields": fields})
    audit.record(session, action=PAIRING_USED, actor_name="card-bridge", case_id=case.id,
                 target=f"pairing {row.id} member {applied.member_id}", client=client)
    # Operations log: which visit and how much, never what (no name, address or number).
    log.info("card reading stored: case %s member %s, %d answers, %d warnings", case.id, applied.member_id,
             len(applied.paths), len(applied.warnings))
    return applied
