"""The reception desk (受付): issue the visit's one ticket from the life events, and what its printed slip shows.

Nothing personal is asked or printed: the life events, a priority reason, the number, the wait and
the QR code of the phone page (/q/<token>).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from app.errors import ValidationFailed
from app.forms.loader import DefinitionSet
from app.models import Case, QueueTicket, User
from app.services import queue
from app.services.cases import get_case_or_raise
from app.services.routing import resident_url
from app.services.wait_estimate import WaitDefaults

PRIORITY_CHOICES = (
    ("", "とくになし"),
    ("accessibility", "配慮が必要（車いす・妊娠中・お子さん連れ・体調など）"),
    ("appointment", "予約があります"),
)


def life_event_choices(defs: DefinitionSet) -> list[Any]:
    """The life events the interview knows (value, label), in the order of interview.yaml."""
    info = defs.fields.get("life_events")
    return list(info.field.choices or []) if info else []


def issue(
    session: Session, *, defs: DefinitionSet, life_events: list[str], priority_reason: str, user: User | None,
    office: str, today: dt.date, defaults: WaitDefaults | None = None,
) -> tuple[Case, QueueTicket]:
    """A draft visit with only the chosen life events and its ticket (priority first when a reason is given)."""
    known = {c.value for c in life_event_choices(defs)}
    chosen = list(dict.fromkeys(e for e in life_events if isinstance(e, str)))[:10]
    errors = []
    if not chosen:
        errors.append({"field": "life_events", "message": "ご用件を1つ以上選んでください"})
    elif any(e not in known for e in chosen):
        errors.append({"field": "life_events", "message": "ご用件は表示されているボタンから選んでください"})
    if priority_reason not in {value for value, _ in PRIORITY_CHOICES}:
        errors.append({"field": "priority_reason", "message": "優先の理由は表示されている中から選んでください"})
    if errors:
        raise ValidationFailed(details=errors)
    return queue.open_visit(session, defs=defs, life_events=chosen, user=user, office=office, today=today,
                            priority_reason=priority_reason, defaults=defaults)


def ticket_view(session: Session, *, case_id: str, base_url: str, tz: dt.tzinfo) -> dict[str, Any]:
    """What the printed ticket shows: number, people ahead, the wait we told, the phone page's URL."""
    case = get_case_or_raise(session, case_id)
    ticket = queue.get_ticket_or_raise(session, case_id)
    ahead = queue.tickets_ahead(session, ticket) if ticket.status == "waiting" else 0
    wait = ticket.estimated_wait_minutes
    return {
        "case_id": case.id, "label": f"{ticket.number:03d}", "ahead": ahead,
        "wait_minutes": None if wait is None else max(0, int(-(-wait // 1))),
        "priority": ticket.priority_reason, "issued_at": ticket.issued_at.astimezone(tz),
        "url": resident_url(base_url, case),
    }
