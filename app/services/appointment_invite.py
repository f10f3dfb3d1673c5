"""What a booking gives the resident: the .ics invitation (icalendar) and the confirmation e-mail.

Nothing personal: the place, the time, the booking code and the page to cancel it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import icalendar
from babel.dates import format_date

from app import i18n
from app.forms.loader import DefinitionSet
from app.i18n import N_
from app.models import Appointment
from app.services import appointments
from app.services.notify import Notice

PRODID = "-//kakanai//appointments//JA"
BABEL_LOCALE = {"ja-x-easy": "ja", "zh-Hans": "zh_Hans", "pt": "pt_BR"}
TITLE = N_("窓口のご予約（%(when)s）")
BOOKED = N_("窓口のご予約を受け付けました。")
WHEN = N_("日時: %(when)s")
WHERE = N_("場所: %(where)s")
CODE = N_("予約番号: %(code)s")
SHOW = N_("当日は受付で予約番号かQRコードをお見せください。")
ICS_SUMMARY = N_("%(city)s 窓口の予約（%(where)s）")
ICS_CANCEL = N_("取り消し・確認: %(url)s")


def booking_url(base_url: str, row: Appointment) -> str:
    """The resident's page of the booking (confirmation, QR, cancel)."""
    return f"{base_url.rstrip('/')}/booking/{row.code}"


def ics(row: Appointment, *, defs: DefinitionSet, city_name: str, base_url: str, now: dt.datetime) -> bytes:
    """An iCalendar (RFC 5545) file with one VEVENT for the booking; times in UTC."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    event = icalendar.Event()
    host = base_url.split("//", 1)[-1].split("/", 1)[0] or "kakanai"
    event.add("uid", f"{row.code}@{host}")
    event.add("dtstamp", now.astimezone(dt.UTC))
    event.add("dtstart", row.start_at.astimezone(dt.UTC))
    event.add("dtend", row.end_at.astimezone(dt.UTC))
    lang = i18n.normalize(row.language) or i18n.DEFAULT
    gettext = i18n.gettext_for(lang)
    place = where(defs, row.queue, gettext)
    if lang == "ja":
        item = defs.appointments.get(row.queue)
        label = appointments.queue_label(defs, item) if item else place
    else:  # the department's name in the booker's language (the queue's own name is Japanese only)
        label = place
    event.add("summary", gettext(ICS_SUMMARY) % {"city": city_name, "where": label})
    event.add("location", f"{city_name} {place}")
    event.add("description", "\n".join([
        gettext(CODE) % {"code": appointments.display_code(row.code)},
        gettext(SHOW),
        gettext(ICS_CANCEL) % {"url": booking_url(base_url, row)},
    ]))
    event.add("url", booking_url(base_url, row))
    event.add("status", "CANCELLED" if row.status == "cancelled" else "CONFIRMED")
    cal.add_component(event)
    return cal.to_ical()


def where(defs: DefinitionSet, queue_id: str, gettext: Callable[[str], str]) -> str:
    """Where to come for this queue, in the booker's language: the department and its floor, or the one-stop counter."""
    dep = defs.departments.get(queue_id)
    if dep is None:
        return gettext("総合窓口")
    return f"{gettext(dep.name)}（{gettext(dep.location)}）" if dep.location else gettext(dep.name)


def local_date(day: dt.date, lang: str) -> str:
    """A date as the resident reads it (2026年12月2日水曜日, Wednesday, December 2, 2026, ...)."""
    return format_date(day, format="full", locale=BABEL_LOCALE.get(lang, lang))


def confirmation(row: Appointment, *, defs: DefinitionSet, city_name: str, base_url: str, tz: dt.tzinfo,
                 now: dt.datetime) -> Notice:
    """The confirmation e-mail in the language the booking was made in: when, where, the code, the page; the .ics attached."""
    lang = i18n.normalize(row.language) or i18n.DEFAULT
    gettext = i18n.gettext_for(lang)
    start = row.start_at.astimezone(tz)
    when = f"{local_date(start.date(), lang)} {start:%H:%M}"
    place = where(defs, row.queue, gettext)
    body = "\n".join([
        gettext(BOOKED),
        gettext(WHEN) % {"when": when},
        gettext(WHERE) % {"where": f"{city_name} {place}"},
        gettext(CODE) % {"code": appointments.display_code(row.code)},
        gettext(SHOW),
    ])
    return Notice(key=f"booking:{row.code}", title=gettext(TITLE) % {"when": when}, body=body,
                  url=booking_url(base_url, row),
                  attachments=((f"yoyaku-{row.code}.ics", "text/calendar",
                                ics(row, defs=defs, city_name=city_name, base_url=base_url, now=now)),))
