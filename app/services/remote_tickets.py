"""Web tickets (リモート整理券): a resident takes the visit's ticket from a phone during opening hours.

The ticket is an ordinary one (the one-stop counter's queue, issue order) whose phone page is the
existing /q/<token>; the notice "3 ahead" reaches the resident through the usual opt-in. Refused on
closing days and outside `opening_hours` of departments.yaml, and after `limit` tickets per client
address within an hour (the address is kept only as a keyed hash, for that count, and dropped after a
day by the background round).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.errors import AppError, Conflict, ValidationFailed
from app.forms import slots
from app.forms.loader import DefinitionSet
from app.i18n import N_
from app.models import Case, QueueTicket, RemoteTicket, utcnow
from app.services import queue
from app.services.wait_estimate import WaitDefaults

CLOSED = N_("ただいまは受付時間外です。開庁時間内にもう一度お試しください")
NO_EVENT = N_("ご用件を選んでください")
TOO_MANY = N_("短い時間に多くの整理券が取られました。しばらくしてからお試しください")
WINDOW = dt.timedelta(hours=1)


class TooManyTickets(AppError):
    """Too many web tickets from one address within the hour."""

    status = 429
    code = "too_many_tickets"
    message = TOO_MANY


def client_key(address: str, *, secret: str) -> str:
    """A keyed hash of the client address (the address itself is not stored)."""
    return hmac.new(secret.encode(), f"remote-ticket:{address}".encode(), hashlib.sha256).hexdigest()


def is_open(defs: DefinitionSet, *, now: dt.datetime, tz: dt.tzinfo) -> bool:
    """Whether the office takes tickets now."""
    return slots.is_open_at(now, defs.opening_hours, calendar=defs.calendar, tz=tz)


def take(
    session: Session, *, defs: DefinitionSet, life_event: object, key: str, office: str, tz: dt.tzinfo,
    limit: int, defaults: WaitDefaults | None = None, now: dt.datetime | None = None,
) -> tuple[Case, QueueTicket]:
    """Issue a web ticket for the one-stop counter; 409 when closed, 429 over the address's limit."""
    now = now or utcnow()
    info = defs.fields.get("life_events")
    known = [str(c.value) for c in (info.field.choices or [])] if info else []
    if not isinstance(life_event, str) or life_event not in known:
        raise ValidationFailed(details=[{"field": "life_event", "message": NO_EVENT}])
    if not is_open(defs, now=now, tz=tz):
        raise Conflict(CLOSED)
    recent = session.scalar(select(func.count()).select_from(RemoteTicket)
                            .where(RemoteTicket.client_key == key, RemoteTicket.created_at > now - WINDOW)) or 0
    if recent >= limit:
        raise TooManyTickets()
    case, ticket = queue.open_visit(session, defs=defs, life_events=[life_event], user=None, office=office,
                                    today=now.astimezone(tz).date(), defaults=defaults, now=now)
    session.add(RemoteTicket(case_id=case.id, client_key=key, created_at=now))
    session.flush()
    return case, ticket


def forget_old(session: Session, *, now: dt.datetime | None = None) -> int:
    """Drop the address hashes once they no longer count for the limit (kept a day)."""
    cutoff = (now or utcnow()) - dt.timedelta(days=1)
    return session.execute(delete(RemoteTicket).where(RemoteTicket.created_at < cutoff)
                           .execution_options(synchronize_session=False)).rowcount or 0
