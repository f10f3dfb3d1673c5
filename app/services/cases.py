"""Cases (visits): ticket issuing, the answers document with optimistic locking, the event log."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound, ValidationFailed
from app.forms.answers import Validated, validate_answers
from app.forms.loader import DefinitionSet
from app.models import Case, CaseEvent, TicketCounter, User, utcnow
from app.services import masking, signatures

STATUSES = ("interviewing", "signed", "routing", "closed", "cancelled")


def _increment_counter(conn: Session | Connection, dialect: str, office: str, day: dt.date) -> int:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    conn.execute(insert(TicketCounter).values(office=office, day=day, last_number=0).on_conflict_do_nothing())
    # The row lock taken by UPDATE serialises concurrent issuers; RETURNING gives each its own number.
    return conn.execute(
        update(TicketCounter)
        .where(TicketCounter.office == office, TicketCounter.day == day)
        .values(last_number=TicketCounter.last_number + 1)
        .returning(TicketCounter.last_number)
    ).scalar_one()


def next_ticket_number(session: Session, *, office: str, day: dt.date) -> int:
    """Issue the next ticket number of the office and day; safe under concurrent requests.

    On PostgreSQL the number comes from a short transaction of its own (when the session's factory
    names its engine): the counter row is locked for one statement, not for the whole visit's
    transaction, so kiosks do not queue behind each other. A visit that then fails leaves a gap in
    the numbers, never a duplicate. SQLite serialises writers anyway and keeps it in the transaction.
    """
    dialect = session.get_bind().dialect.name
    engine = session.info.get("own_engine")
    if dialect == "postgresql" and engine is not None:
        with engine.begin() as conn:
            return _increment_counter(conn, dialect, office, day)
    return _increment_counter(session, dialect, office, day)


def _validated(defs: DefinitionSet, raw: Any, *, today: dt.date, draft: bool) -> Validated:
    result = validate_answers(defs, raw, today=today, draft=draft)
    if result.errors:
        raise ValidationFailed(details=[{"field": e.field, "message": e.message} for e in result.errors])
    return result


def record_event(
    session: Session, case: Case, kind: str, *, actor: User | None = None, data: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> CaseEvent:
    """Append a time-stamped event to the case's log."""
    event = CaseEvent(case_id=case.id, kind=kind, actor_id=actor.id if actor else None, data=data or {},
                      at=at or utcnow())
    session.add(event)
    return event


def create_case(
    session: Session, *, defs: DefinitionSet, answers: Any, user: User | None, office: str, today: dt.date,
    draft: bool = False, now: dt.datetime | None = None, client_date: bool = False,
) -> Case:
    """Validate the answers, issue the visit's ticket and store the case; nothing is stored on error.

    The visit date is the server's `today` (the city's date; the benchmark's simulated clock moves it).
    A client-sent visit_date is ignored unless `client_date` (tests only) allows it.
    """
    if isinstance(answers, dict) and (not client_date or not answers.get("visit_date")):
        answers = {**answers, "visit_date": today.isoformat()}
    result = _validated(defs, answers, today=today, draft=draft)
    now = now or utcnow()
    number = next_ticket_number(session, office=office, day=today)
    case = Case(
        office=office,
        ticket_day=today,
        ticket_number=number,
        status_token=secrets.token_urlsafe(12),
        answers=result.answers,
        complete=not result.missing,
        definitions_fingerprint=defs.fingerprint,
        created_by=user.id if user else None,
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    session.flush()
    record_event(session, case, "arrival", actor=user, at=now, data={"ticket_number": number})
    record_event(session, case, "interview_started", actor=user, at=now)
    return case


def get_case_or_raise(session: Session, case_id: str) -> Case:
    """The case with this id, or NotFound."""
    case = session.get(Case, case_id) if isinstance(case_id, str) and len(case_id) <= 32 else None
    if case is None:
        raise NotFound("この案件は見つかりません")
    return case


def missing_answers(defs: DefinitionSet, case: Case, *, today: dt.date) -> list[str]:
    """Required answers the case still lacks."""
    return validate_answers(defs, case.answers, today=today, draft=True).missing


def update_answers(
    session: Session, *, defs: DefinitionSet, case_id: str, answers: Any, expected_version: int,
    user: User | None, today: dt.date, draft: bool = False, client_date: bool = False, save_token: str | None = None,
) -> Case:
    """Replace the answers if the caller saw the latest version; a stale version raises Conflict.

    `save_token` (a random id a tablet sends with each autosave, no personal data) is kept on the
    `answers_saved` event, so a tablet reloaded while its save was on the way recognises its own save.

    The visit date stays the one the server set when the visit began (unless `client_date`, tests only).
    A change to what a signed form prints voids that form's signature.
    """
    case = get_case_or_raise(session, case_id)
    if case.status in ("closed", "cancelled"):
        raise Conflict("この案件は終了しているため変更できません")
    if isinstance(answers, dict) and (not client_date or not answers.get("visit_date")):
        answers = {**answers, "visit_date": case.answers.get("visit_date") or case.ticket_day.isoformat()}
    # A client that round-trips masked numbers (********9018) keeps the stored ones.
    answers = masking.merge_masked(answers, case.answers)
    result = _validated(defs, answers, today=today, draft=draft)
    now = utcnow()
    # Compare-and-set in the database: two tabs saving at once cannot both win.
    updated = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.version == expected_version)
        .values(answers=result.answers, version=Case.version + 1, complete=not result.missing,
                definitions_fingerprint=defs.fingerprint, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if updated != 1:
        session.refresh(case)
        raise Conflict(current_version=case.version)
    session.refresh(case)
    data: dict[str, Any] = {"version": case.version}
    if save_token:
        data["save_token"] = save_token
    record_event(session, case, "answers_saved", actor=user, at=now, data=data)
    signatures.void_changed(session, defs=defs, case=case, actor=user)
    return case


def last_save_token(session: Session, case: Case) -> str:
    """The save token of the autosave that made the case's current version ("" when none was sent)."""
    row = session.scalar(select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == "answers_saved")
                         .order_by(CaseEvent.id.desc()).limit(1))
    data = row.data if row is not None and isinstance(row.data, dict) else {}
    return str(data.get("save_token", "")) if data.get("version") == case.version else ""


def list_cases(session: Session, *, office: str, day: dt.date) -> list[Case]:
    """The office's cases of one day, in ticket order."""
    return list(session.scalars(
        select(Case).where(Case.office == office, Case.ticket_day == day).order_by(Case.ticket_number)
    ))

