"""Notices to a resident whose phone page is closed: one small interface, two channels.

A resident opts in on the phone page (a Web Push subscription of the browser, or an e-mail address).
`dispatch` looks at every subscribed visit's status (the same localized status the phone page shows)
and sends what became due and was not sent yet: the number is near (3 or fewer ahead), the ticket is
called (each call), a department needs the resident (each department), a department finished after
the counter was done with the resident (each department: what is ready), everything is done. A notice
says the ticket number, where to go and what to do, in the resident's language; nothing personal.
Channels: `webpush.send` (pywebpush, VAPID) and `mail.send` (SMTP). The app's background round sends
them (`app/services/background.py`: claim → deliver → settle); `kakanai notify run` does the same alone.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import i18n
from app.errors import NotFound, ValidationFailed
from app.forms.loader import DefinitionSet
from app.i18n import N_
from app.models import Case, NoticeSubscription
from app.services import resident_status
from app.services.wait_estimate import WaitDefaults

log = logging.getLogger(__name__)

NEAR_AHEAD = 3
CHANNELS = ("webpush", "email")
MAX_PER_VISIT = 5
NEAR = N_("まもなく順番です。待合室でお待ちください")
TITLE = N_("受付番号 %(number)s")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


@dataclass(frozen=True)
class Notice:
    """One message: a key (sent once), a title and a body in the resident's language, the page's URL."""

    key: str
    title: str
    body: str
    url: str
    # (file name, MIME type, bytes): e-mail only, e.g. a booking's .ics invitation.
    attachments: tuple[tuple[str, str, bytes], ...] = ()


class ChannelGone(Exception):
    """The subscription no longer exists at the push service (404/410): forget it."""


Sender = Callable[[str, Notice], None]


def is_email(text: str) -> bool:
    """Whether the text has the shape of an e-mail address (the only check before mailing to it)."""
    return bool(_EMAIL.match(text))


def subscribe(session: Session, *, token: str, channel: str, target: Any, language: str) -> NoticeSubscription:
    """Store an opt-in for the visit with this token; field errors in Japanese."""
    case = session.scalar(select(Case).where(Case.status_token == token)) if isinstance(token, str) else None
    if case is None or case.purged_at is not None:
        raise NotFound(resident_status.NOT_FOUND)
    if channel not in CHANNELS:
        raise ValidationFailed(details=[{"field": "channel", "message": "通知の方法は webpush か email です"}])
    if channel == "email":
        text = target.strip() if isinstance(target, str) else ""
        if not _EMAIL.match(text):
            raise ValidationFailed(details=[{"field": "email", "message": "メールアドレスの形をご確認ください"}])
        stored = text
    else:
        endpoint = target.get("endpoint") if isinstance(target, dict) else None
        keys = target.get("keys") if isinstance(target, dict) else None
        if (not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")) or len(endpoint) > 2000
                or not isinstance(keys, dict) or not all(isinstance(keys.get(k), str) for k in ("p256dh", "auth"))):
            raise ValidationFailed(details=[{"field": "subscription", "message": "通知の登録内容が正しくありません"}])
        stored = json.dumps({"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}})
    existing = list(session.scalars(select(NoticeSubscription).where(NoticeSubscription.case_id == case.id)))
    if len(existing) >= MAX_PER_VISIT:
        raise ValidationFailed(details=[{"field": "channel", "message": "この受付ではこれ以上登録できません"}])
    row = NoticeSubscription(case_id=case.id, channel=channel, target=stored, language=language[:16], sent=[])
    session.add(row)
    session.flush()
    return row


def due(view: dict[str, Any], *, url: str, gettext: Callable[[str], str]) -> list[Notice]:
    """What the localized status says the resident should be told now (each with its once-only key)."""
    title = gettext(TITLE) % {"number": view["ticket"]["label"]}
    ticket = view["ticket"]
    out: list[Notice] = []
    if ticket["status"] == "waiting" and ticket["ahead"] is not None and ticket["ahead"] <= NEAR_AHEAD:
        out.append(Notice("near", title, gettext(NEAR), url))
    if ticket["status"] == "called":
        out.append(Notice(f"called:{ticket['queue']}:{ticket['call_count']}", title, view["headline"], url))
    for item in view["come_back"]:
        body = gettext(resident_status.GO_TO) % {"where": item["where"]}
        out.append(Notice(f"needs:{item['department']}", title, body, url))
    if not view.get("all_done"):
        # A resident who went home hears of each department that finished (what is ready).
        for item in view.get("ready_text") or []:
            out.append(Notice(f"ready:{item['department']}", title, item["text"], url))
    if view.get("all_done"):
        out.append(Notice("done", title, gettext(resident_status.ALL_DONE), url))
    return out


@dataclass(frozen=True)
class Claimed:
    """Notices taken for one subscription (already recorded as sent, so no other dispatcher takes them)."""

    subscription_id: int
    channel: str
    target: str
    notices: tuple[Notice, ...]


@dataclass
class Outcome:
    """What happened to a claim: the keys that failed (to be retried) and whether the channel is gone."""

    claim: Claimed
    failed: list[str]
    gone: bool = False
    sent: int = 0


def claim(
    session: Session, *, defs: DefinitionSet, defaults: WaitDefaults, base_url: str, channels: Collection[str],
) -> list[Claimed]:
    """Take every notice that became due for subscriptions of open visits, marking it sent.

    Rows are claimed with FOR UPDATE SKIP LOCKED (PostgreSQL: another dispatcher skips them; SQLite
    transactions begin IMMEDIATE and take turns). Commit before sending, so that no lock is held while
    a push service or an SMTP server answers; `settle` gives back what could not be sent.
    """
    rows = session.execute(
        select(NoticeSubscription, Case.status_token).join(Case, Case.id == NoticeSubscription.case_id)
        .where(Case.purged_at.is_(None), NoticeSubscription.channel.in_(list(channels)))
        .order_by(NoticeSubscription.id)
        .with_for_update(of=NoticeSubscription, skip_locked=True)
    ).all()
    out: list[Claimed] = []
    for sub, token in rows:
        lang = i18n.normalize(sub.language) or i18n.DEFAULT
        raw = resident_status.build_status(session, token=token, defs=defs, defaults=defaults)
        view = resident_status.localize(raw, defs=defs, lang=lang, gettext=i18n.gettext_for(lang))
        url = f"{base_url.rstrip('/')}/q/{token}?lang={lang}"
        done = list(sub.sent or [])
        notices = tuple(n for n in due(view, url=url, gettext=i18n.gettext_for(lang)) if n.key not in done)
        if notices:
            sub.sent = done + [n.key for n in notices]
            out.append(Claimed(sub.id, sub.channel, sub.target, notices))
    session.flush()
    return out


def deliver(claimed: list[Claimed], senders: dict[str, Sender]) -> list[Outcome]:
    """Send what was claimed (no database work); a failing channel is retried at the next run."""
    outcomes = []
    for item in claimed:
        outcome = Outcome(item, failed=[])
        sender = senders[item.channel]
        for index, notice in enumerate(item.notices):
            try:
                sender(item.target, notice)
            except ChannelGone:
                outcome.gone = True
                outcome.failed = [n.key for n in item.notices[index:]]
                break
            except Exception as exc:  # never log the target
                log.warning("notice %s via %s failed: %s", notice.key.split(":")[0], item.channel, type(exc).__name__)
                outcome.failed.append(notice.key)
                continue
            outcome.sent += 1
        outcomes.append(outcome)
    return outcomes


def settle(session: Session, outcomes: list[Outcome]) -> int:
    """Give back the notices that failed and forget subscriptions whose channel is gone; returns how many were sent."""
    for outcome in outcomes:
        if not outcome.failed and not outcome.gone:
            continue
        sub = session.get(NoticeSubscription, outcome.claim.subscription_id, with_for_update=True)
        if sub is None:
            continue
        if outcome.gone:
            session.delete(sub)
        else:
            sub.sent = [k for k in (sub.sent or []) if k not in outcome.failed]
    session.flush()
    return sum(o.sent for o in outcomes)


def dispatch(
    session: Session, *, defs: DefinitionSet, defaults: WaitDefaults, base_url: str, senders: dict[str, Sender],
) -> int:
    """Claim, send and settle in the caller's transaction (tests, one-off runs); returns how many were sent."""
    claimed = claim(session, defs=defs, defaults=defaults, base_url=base_url, channels=senders)
    return settle(session, deliver(claimed, senders))
