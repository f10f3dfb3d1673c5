"""The waiting-room queue: one ticket per visit, called to counters, transferred between queues.

All state is in `queue_tickets` (and every change is a CaseEvent), never in a process, so any number
of app instances agree. Statuses: waiting → called → serving → done; a called ticket may be skipped
(no-show) and later recalled or put back in the queue; any open ticket may be transferred to another
queue ("" is the one-stop counter, otherwise a department id). Order: higher `priority` first
(appointments, accessibility needs), then issue time, then number. A transferred ticket keeps its
issue time, so a resident who has already waited is not sent to the back of the next queue.

Every transition is a compare-and-set on `version` (and the expected status), so two counters acting
on one ticket at once cannot both win; `call_next` additionally picks its row with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite serialises writers, so the same statement is enough).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Collection
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import events
from app.errors import Conflict, NotFound, ValidationFailed
from app.forms.loader import DefinitionSet
from app.models import Case, QueueTicket, User, utcnow
from app.services.cases import create_case, record_event
from app.services.wait_estimate import WaitDefaults, service_stats
from app.services.wait_estimate import estimate_error_report as _estimate_error_report

STATUSES = ("waiting", "called", "serving", "done", "skipped")
OPEN_STATUSES = ("waiting", "called", "serving", "skipped")
PRIORITY_REASONS = ("", "appointment", "accessibility", "other")
MAX_PRIORITY = 9
CALL_ATTEMPTS = 5


def _field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(details=[{"field": field, "message": message}])


def clean_counter(value: Any, *, field: str = "counter", required: bool = True) -> str:
    """A counter label ("3", "3番") as staff typed it, trimmed; control characters are refused."""
    text = unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else ""
    if not text:
        if required:
            raise _field_error(field, "窓口番号を入力してください")
        return ""
    if len(text) > 40 or any(unicodedata.category(ch).startswith("C") for ch in text):
        raise _field_error(field, "窓口番号は40文字以内で入力してください")
    return text


def clean_queue(value: Any, *, queues: Collection[str] | None, field: str = "queue") -> str:
    """A queue id: "" (the one-stop counter) or a department id from the definitions."""
    queue = value.strip() if isinstance(value, str) else ""
    if queue and queues is not None and queue not in queues:
        raise _field_error(field, "この課の待ち列はありません")
    if len(queue) > 64:
        raise _field_error(field, "この課の待ち列はありません")
    return queue


def _order() -> tuple[Any, ...]:
    return (QueueTicket.priority.desc(), QueueTicket.issued_at, QueueTicket.number)


def waiting_order(session: Session, *, office: str, day: dt.date, queue: str) -> list[str]:
    """Case ids of the waiting tickets of one queue, in the order they will be called."""
    return list(session.scalars(
        select(QueueTicket.case_id)
        .where(QueueTicket.office == office, QueueTicket.day == day, QueueTicket.queue == queue,
               QueueTicket.status == "waiting")
        .order_by(*_order())
    ))


def tickets_ahead(session: Session, ticket: QueueTicket) -> int:
    """How many waiting tickets of the same queue will be called before this one."""
    same = (QueueTicket.priority == ticket.priority) & (
        (QueueTicket.issued_at < ticket.issued_at)
        | ((QueueTicket.issued_at == ticket.issued_at) & (QueueTicket.number < ticket.number))
    )
    return session.scalar(
        select(func.count()).select_from(QueueTicket)
        .where(QueueTicket.office == ticket.office, QueueTicket.day == ticket.day, QueueTicket.queue == ticket.queue,
               QueueTicket.status == "waiting", QueueTicket.case_id != ticket.case_id,
               (QueueTicket.priority > ticket.priority) | same)
    ) or 0


def issue_ticket(
    session: Session, *, case: Case, priority: int = 0, priority_reason: str = "", queue: str = "",
    now: dt.datetime | None = None, defaults: WaitDefaults | None = None, queues: Collection[str] | None = None,
) -> QueueTicket:
    """Put the visit's ticket (its number comes from create_case) in the queue, with the wait we tell the resident.

    Call it in the same transaction as `cases.create_case`: the `arrival` event recorded there is what
    wakes the live pages of every app instance.
    """
    if priority_reason not in PRIORITY_REASONS:
        raise _field_error("priority_reason", "優先の理由は appointment（予約）か accessibility（配慮が必要）を指定してください")
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= MAX_PRIORITY:
        raise _field_error("priority", f"優先度は0から{MAX_PRIORITY}の整数で指定してください")
    if priority_reason and priority == 0:
        priority = 1
    queue = clean_queue(queue, queues=queues)
    if session.get(QueueTicket, case.id) is not None:
        raise Conflict("この来庁にはすでに整理券があります")
    now = now or utcnow()
    ticket = QueueTicket(case_id=case.id, office=case.office, day=case.ticket_day, number=case.ticket_number,
                         priority=priority, priority_reason=priority_reason, status="waiting", queue=queue,
                         issued_at=now)
    session.add(ticket)
    session.flush()
    stats = service_stats(session, office=case.office, day=case.ticket_day, queue=queue, now=now,
                          defaults=defaults or WaitDefaults())
    ticket.estimated_wait_minutes = stats.estimate(tickets_ahead(session, ticket))
    session.flush()
    return ticket


def open_visit(
    session: Session, *, defs: DefinitionSet, life_events: Any, user: User | None, office: str, today: dt.date,
    priority: int = 0, priority_reason: str = "", queue: str = "", defaults: WaitDefaults | None = None,
    now: dt.datetime | None = None,
) -> tuple[Case, QueueTicket]:
    """Reception kiosk: a draft case holding only the life events, and its queue ticket."""
    if not isinstance(life_events, list) or not life_events:
        raise _field_error("life_events", "手続きのきっかけを1つ以上選んでください")
    case = create_case(session, defs=defs, answers={"life_events": life_events}, user=user, office=office,
                       today=today, draft=True, now=now)
    ticket = issue_ticket(session, case=case, priority=priority, priority_reason=priority_reason, queue=queue,
                          now=now or case.created_at, defaults=defaults, queues=defs.departments.keys())
    return case, ticket


def ticket_for_visit(
    session: Session, *, defs: DefinitionSet, case_id: str, priority: int = 0, priority_reason: str = "",
    queue: str = "", defaults: WaitDefaults | None = None,
) -> tuple[Case, QueueTicket]:
    """Reception: the ticket of a visit that already exists (handed over from pre-entry, or an imported plan)."""
    case = session.get(Case, case_id) if isinstance(case_id, str) and len(case_id) <= 32 else None
    if case is None:
        raise NotFound("この案件は見つかりません")
    if case.status in ("closed", "cancelled"):
        raise Conflict("この来庁は終了しています")
    ticket = issue_ticket(session, case=case, priority=priority, priority_reason=priority_reason, queue=queue,
                          defaults=defaults, queues=defs.departments.keys())
    return case, ticket


def get_ticket_or_raise(session: Session, case_id: str) -> QueueTicket:
    """The ticket of a visit, or NotFound."""
    ticket = session.get(QueueTicket, case_id) if isinstance(case_id, str) and len(case_id) <= 32 else None
    if ticket is None:
        raise NotFound("この整理券は見つかりません")
    return ticket


def list_tickets(
    session: Session, *, office: str, day: dt.date, queue: str | None = None, statuses: Collection[str] | None = None,
) -> list[QueueTicket]:
    """The day's tickets of the office (optionally one queue / some statuses), in calling order."""
    query = select(QueueTicket).where(QueueTicket.office == office, QueueTicket.day == day)
    if queue is not None:
        query = query.where(QueueTicket.queue == queue)
    if statuses:
        query = query.where(QueueTicket.status.in_(list(statuses)))
    return list(session.scalars(query.order_by(*_order())))


def _event(session: Session, ticket: QueueTicket, kind: str, *, actor: User | None, at: dt.datetime,
           **data: Any) -> None:
    case = session.get(Case, ticket.case_id)
    assert case is not None  # the foreign key guarantees it
    record_event(session, case, kind, actor=actor, at=at, data={"counter": ticket.counter, "queue": ticket.queue, **data})


def call_next(
    session: Session, *, office: str, day: dt.date, counter: str, queue: str = "", actor: User | None = None,
    now: dt.datetime | None = None, queues: Collection[str] | None = None,
) -> QueueTicket | None:
    """Call the next waiting ticket of a queue to a counter; None when nobody is waiting.

    Tickets transferred to a particular counter are only called by that counter.
    """
    counter = clean_counter(counter)
    queue = clean_queue(queue, queues=queues)
    now = now or utcnow()
    waiting = (QueueTicket.office == office, QueueTicket.day == day, QueueTicket.queue == queue,
               QueueTicket.status == "waiting", QueueTicket.counter.in_(("", counter)))
    for _attempt in range(CALL_ATTEMPTS):
        # One statement: PostgreSQL skips rows another counter is taking right now; SQLite holds the
        # write lock for the whole statement. The outer status check makes a lost race a no-op.
        candidate = (select(QueueTicket.case_id).where(*waiting).order_by(*_order()).limit(1)
                     .with_for_update(skip_locked=True).scalar_subquery())
        case_id = session.execute(
            update(QueueTicket)
            .where(QueueTicket.case_id == candidate, QueueTicket.status == "waiting")
            .values(status="called", counter=counter, called_at=now, call_count=QueueTicket.call_count + 1,
                    version=QueueTicket.version + 1)
            .returning(QueueTicket.case_id)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if case_id is not None:
            ticket = session.get(QueueTicket, case_id, populate_existing=True)
            assert ticket is not None
            _event(session, ticket, events.TICKET_CALLED, actor=actor, at=now)
            return ticket
        if session.scalar(select(func.count()).select_from(QueueTicket).where(*waiting)) == 0:
            return None
    return None


def _transition(
    session: Session, case_id: str, *, allowed: tuple[str, ...], refusal: str, values: dict[str, Any],
    expected_version: int | None = None,
) -> QueueTicket:
    ticket = get_ticket_or_raise(session, case_id)
    if ticket.status not in allowed:
        raise Conflict(refusal, current_version=ticket.version)
    version = ticket.version if expected_version is None else expected_version
    changed = session.execute(
        update(QueueTicket)
        .where(QueueTicket.case_id == ticket.case_id, QueueTicket.version == version, QueueTicket.status.in_(allowed))
        .values(**values, version=QueueTicket.version + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(ticket)
    if changed != 1:
        raise Conflict("他の窓口で先に操作されました。一覧を更新してください", current_version=ticket.version)
    return ticket


def recall(
    session: Session, *, case_id: str, counter: str | None = None, actor: User | None = None,
    now: dt.datetime | None = None, expected_version: int | None = None,
) -> QueueTicket:
    """Call a called (or skipped) ticket again, to the same counter unless another is given."""
    now = now or utcnow()
    values: dict[str, Any] = {"status": "called", "called_at": now, "call_count": QueueTicket.call_count + 1}
    if counter is not None:
        values["counter"] = clean_counter(counter)
    ticket = _transition(session, case_id, allowed=("called", "skipped"), values=values,
                         refusal="呼び出し中か不在の整理券だけを再呼び出しできます", expected_version=expected_version)
    if not ticket.counter:
        raise _field_error("counter", "窓口番号を入力してください")
    _event(session, ticket, events.TICKET_RECALLED, actor=actor, at=now, call_count=ticket.call_count)
    return ticket


def skip(
    session: Session, *, case_id: str, actor: User | None = None, now: dt.datetime | None = None,
    expected_version: int | None = None,
) -> QueueTicket:
    """The called resident did not come (no-show): the ticket is not called again unless recalled."""
    now = now or utcnow()
    ticket = _transition(session, case_id, allowed=("called",), values={"status": "skipped"},
                         refusal="呼び出し中の整理券だけを不在にできます", expected_version=expected_version)
    _event(session, ticket, events.TICKET_SKIPPED, actor=actor, at=now)
    return ticket


def transfer(
    session: Session, *, case_id: str, to_queue: str, to_counter: str = "", actor: User | None = None,
    now: dt.datetime | None = None, queues: Collection[str] | None = None, expected_version: int | None = None,
) -> QueueTicket:
    """Send a ticket to another queue (or back into its own, e.g. after a no-show), optionally for one counter."""
    now = now or utcnow()
    to_queue = clean_queue(to_queue, queues=queues, field="to_queue")
    to_counter = clean_counter(to_counter, field="to_counter", required=False)
    before = get_ticket_or_raise(session, case_id)
    was_serving, from_queue, from_counter = before.status == "serving", before.queue, before.counter
    ticket = _transition(session, case_id, allowed=OPEN_STATUSES, values={
        "status": "waiting", "queue": to_queue, "counter": to_counter, "served_at": None,
    }, refusal="対応が終わった整理券は回せません", expected_version=expected_version)
    if was_serving:
        # The service at the first counter is over; its duration feeds that queue's estimates.
        case = session.get(Case, ticket.case_id)
        assert case is not None
        record_event(session, case, events.SERVICE_ENDED, actor=actor, at=now,
                     data={"counter": from_counter, "queue": from_queue})
    _event(session, ticket, events.TICKET_TRANSFERRED, actor=actor, at=now, **{"from": from_queue, "to": to_queue})
    return ticket


def requeue(
    session: Session, *, case_id: str, actor: User | None = None, now: dt.datetime | None = None,
    expected_version: int | None = None,
) -> QueueTicket:
    """Put a skipped ticket back in its queue (the resident came back after the no-show)."""
    ticket = get_ticket_or_raise(session, case_id)
    if ticket.status != "skipped":
        raise Conflict("不在の整理券だけを順番待ちに戻せます", current_version=ticket.version)
    return transfer(session, case_id=case_id, to_queue=ticket.queue, actor=actor, now=now,
                    expected_version=expected_version)


def call_to_counter(
    session: Session, *, case_id: str, queue: str, counter: str, actor: User | None = None,
    now: dt.datetime | None = None, queues: Collection[str] | None = None,
) -> QueueTicket:
    """A department calls this visit's ticket to one of its counters (the board and the phone show it).

    The visit keeps its one ticket: the call moves it into the department's queue, called. A ticket
    being served at another queue's counter cannot be called away.
    """
    counter = clean_counter(counter)
    queue = clean_queue(queue, queues=queues)
    before = get_ticket_or_raise(session, case_id)
    if before.status == "serving" and before.queue != queue:
        raise Conflict("この方はほかの窓口で対応中です。終わってから呼び出してください", current_version=before.version)
    now = now or utcnow()
    ticket = _transition(session, case_id, allowed=STATUSES, values={
        "status": "called", "queue": queue, "counter": counter, "called_at": now, "served_at": None,
        "finished_at": None, "call_count": QueueTicket.call_count + 1,
    }, refusal="この整理券は呼び出せません")
    _event(session, ticket, events.TICKET_CALLED, actor=actor, at=now)
    return ticket


def start_service(
    session: Session, *, case_id: str, counter: str | None = None, actor: User | None = None,
    now: dt.datetime | None = None, expected_version: int | None = None,
) -> QueueTicket:
    """The resident is at the counter: service starts."""
    now = now or utcnow()
    values: dict[str, Any] = {"status": "serving", "served_at": now}
    if counter is not None:
        values["counter"] = clean_counter(counter)
    ticket = _transition(session, case_id, allowed=("called", "waiting"), values=values,
                         refusal="呼び出し中の整理券だけ対応を始められます", expected_version=expected_version)
    if not ticket.counter:
        raise _field_error("counter", "窓口番号を入力してください")
    _event(session, ticket, events.SERVICE_STARTED, actor=actor, at=now)
    return ticket


def finish_service(
    session: Session, *, case_id: str, actor: User | None = None, now: dt.datetime | None = None,
    expected_version: int | None = None,
) -> QueueTicket:
    """Service at the counter is over; the ticket is done."""
    now = now or utcnow()
    ticket = _transition(session, case_id, allowed=("serving",), values={"status": "done", "finished_at": now},
                         refusal="対応中の整理券だけを終了できます", expected_version=expected_version)
    _event(session, ticket, events.SERVICE_ENDED, actor=actor, at=now)
    return ticket


def board_view(session: Session, *, office: str, day: dt.date, calling: int = 4, recent: int = 6) -> dict[str, Any]:
    """What the waiting-room screen shows: numbers being called (and where), the last few called, how many wait."""
    def row(t: QueueTicket) -> dict[str, Any]:
        return {"number": t.number, "label": f"{t.number:03d}", "counter": t.counter, "queue": t.queue,
                "call_count": t.call_count, "called_at": t.called_at.isoformat() if t.called_at else None}

    base = select(QueueTicket).where(QueueTicket.office == office, QueueTicket.day == day)
    now_calling = list(session.scalars(base.where(QueueTicket.status == "called")
                                       .order_by(QueueTicket.called_at.desc()).limit(calling)))
    earlier = list(session.scalars(
        base.where(QueueTicket.called_at.is_not(None), QueueTicket.status.in_(("serving", "done", "skipped")))
        .order_by(QueueTicket.called_at.desc()).limit(recent)))
    waiting = dict(session.execute(
        select(QueueTicket.queue, func.count()).where(QueueTicket.office == office, QueueTicket.day == day,
                                                      QueueTicket.status == "waiting").group_by(QueueTicket.queue)
    ).all())
    return {"calling": [row(t) for t in now_calling], "recent": [row(t) for t in earlier],
            "waiting": {str(q): int(n) for q, n in waiting.items()}, "waiting_total": int(sum(waiting.values()))}


def estimate_error_report(session: Session, office: str, day: dt.date) -> dict[str, Any]:
    """How far the waits told at issue were from the real waits (see wait_estimate)."""
    return _estimate_error_report(session, office=office, day=day)
