"""Appointments: slots from departments.yaml (holidays, 年末年始), capacity under a real race, booking and
cancelling, the .ics read back with icalendar, check-in first in the queue, no-shows, web tickets."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from zoneinfo import ZoneInfo

import icalendar
import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from app.db import make_sessionmaker
from app.errors import Conflict, NotFound, ValidationFailed
from app.models import Appointment, AppointmentSlot, Case, RemoteTicket
from app.services import appointment_invite, appointments, queue, remote_tickets
from app.services.definitions import DefinitionRegistry
from app.services.wait_estimate import WaitDefaults

TZ = ZoneInfo("Asia/Tokyo")
NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=TZ)  # a Tuesday
DAY = dt.date(2026, 12, 2)
WINDOW = appointments.Window(early_minutes=30, late_minutes=15)
DEFAULTS = WaitDefaults(service_minutes={"": 20.0}, open_counters={"": 2})


def office() -> str:
    return f"a{uuid.uuid4().hex[:8]}"


def at(day: dt.date, hm: str) -> dt.datetime:
    h, m = hm.split(":")
    return dt.datetime(day.year, day.month, day.day, int(h), int(m), tzinfo=TZ)


def book(db: Session, registry: DefinitionRegistry, off: str, start: dt.datetime, *, queue_id: str = "kodomo",
         event: str = "childcare", now: dt.datetime = NOW, email: str = "") -> Appointment:
    return appointments.book(db, defs=registry.current, office=off, queue_id=queue_id, life_event=event,
                             start=start, tz=TZ, email=email, now=now)


def test_slots_follow_the_hours_and_skip_holidays_and_the_new_year_closing(db: Session,
                                                                           registry: DefinitionRegistry) -> None:
    defs = registry.current
    day = appointments.day_slots(db, defs=defs, office=office(), queue_id="", day=DAY, tz=TZ, now=NOW)
    labels = [s["label"] for s in day]
    # 09:00–12:00 and 13:00–16:30 in 30-minute slots, 2 places each.
    assert labels[:3] == ["09:00", "09:30", "10:00"] and labels[5] == "11:30" and labels[6] == "13:00"
    assert labels[-1] == "16:00" and len(labels) == 13
    assert {s["free"] for s in day} == {2}
    # kodomo: 20-minute slots; 09:00–11:40 holds 8, 13:30–16:10 holds 8.
    kodomo = appointments.day_slots(db, defs=defs, office=office(), queue_id="kodomo", day=DAY, tz=TZ, now=NOW)
    assert len(kodomo) == 16 and kodomo[-1]["label"] == "15:50"
    for closed in (dt.date(2026, 11, 23),  # 勤労感謝の日 (jpholiday)
                   dt.date(2026, 12, 29), dt.date(2027, 1, 2), dt.date(2027, 1, 3),  # 年末年始
                   dt.date(2026, 12, 5)):  # Saturday
        assert appointments.day_slots(db, defs=defs, office=office(), queue_id="", day=closed, tz=TZ, now=NOW) == []
    assert appointments.day_slots(db, defs=defs, office=office(), queue_id="", day=dt.date(2027, 1, 4), tz=TZ,
                                  now=NOW) != []
    # Slots already begun are shown but not bookable.
    today = appointments.day_slots(db, defs=defs, office=office(), queue_id="", day=NOW.date(), tz=TZ,
                                   now=at(NOW.date(), "10:10"))
    assert [s["bookable"] for s in today[:4]] == [False, False, False, True]


def test_booking_takes_a_place_and_cancelling_gives_it_back(db: Session, registry: DefinitionRegistry) -> None:
    off = office()
    start = at(DAY, "10:00")
    first = book(db, registry, off, start, queue_id="", event="move_in")
    assert len(first.code) == 10 and first.status == "booked"
    assert appointments.get_by_code_or_raise(db, appointments.display_code(first.code).lower()).id == first.id
    second = book(db, registry, off, start, queue_id="", event="birth")
    with pytest.raises(Conflict) as full:
        book(db, registry, off, start, queue_id="", event="move_in")
    assert full.value.message == appointments.FULL
    free = {s["label"]: s["free"] for s in appointments.day_slots(db, defs=registry.current, office=off, queue_id="",
                                                                 day=DAY, tz=TZ, now=NOW)}
    assert free["10:00"] == 0 and free["10:30"] == 2
    appointments.cancel(db, code=second.code, now=NOW)
    assert second.status == "cancelled"
    with pytest.raises(Conflict):
        appointments.cancel(db, code=second.code, now=NOW)
    third = book(db, registry, off, start, queue_id="", event="move_in")
    assert third.status == "booked"
    with pytest.raises(NotFound):
        appointments.cancel(db, code="ZZZZZ-ZZZZZ", now=NOW)


def test_bad_bookings_get_field_messages_and_take_nothing(db: Session, registry: DefinitionRegistry) -> None:
    off = office()
    cases_ = [
        (dict(queue_id="nosuch"), "queue"),
        (dict(queue_id="kodomo", event="death"), "life_event"),  # not a reason for this queue
        (dict(start=at(DAY, "10:10")), "start"),  # not a slot boundary
        (dict(start=at(dt.date(2026, 12, 29), "10:00")), "start"),  # closed
        (dict(start=at(NOW.date(), "08:40")), "start"),  # before the hours
        (dict(start=at(DAY, "09:00"), now=at(DAY, "09:05")), "start"),  # past
        (dict(start=at(DAY, "09:00"), email="not-an-address"), "email"),
        (dict(start=dt.datetime(1, 1, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=14)))), "start"),
        (dict(start=dt.datetime(2026, 12, 2, 10, 0)), "start"),  # no time zone
        (dict(start="tomorrow"), "start"),
    ]
    for kwargs, field in cases_:
        args = {"start": at(DAY, "09:00"), **kwargs}
        with pytest.raises(ValidationFailed) as err:
            book(db, registry, off, **args)
        assert err.value.details[0]["field"] == field, kwargs
    assert db.scalar(select(Appointment).where(Appointment.office == off)) is None


def test_ics_invitation_reads_back_with_icalendar(db: Session, registry: DefinitionRegistry) -> None:
    row = book(db, registry, office(), at(DAY, "13:50"))
    data = appointment_invite.ics(row, defs=registry.current, city_name="みどり市", base_url="https://city.example",
                                  now=NOW)
    cal = icalendar.Calendar.from_ical(data)
    (event,) = cal.walk("VEVENT")
    assert event.decoded("dtstart") == at(DAY, "13:50") and event.decoded("dtend") == at(DAY, "14:10")
    assert str(event["uid"]) == f"{row.code}@city.example"
    assert "こども福祉課" in str(event["summary"]) and "本庁舎2階" in str(event["location"])
    assert appointments.display_code(row.code) in str(event["description"])
    assert str(event["url"]) == f"https://city.example/booking/{row.code}"
    assert str(cal["method"]) == "PUBLISH" and str(event["status"]) == "CONFIRMED"


def test_checked_in_booking_is_called_before_walk_ins(db: Session, registry: DefinitionRegistry) -> None:
    off, defs = office(), registry.current
    row = book(db, registry, off, at(DAY, "10:00"), queue_id="", event="move_in")
    walk_ins = [queue.open_visit(db, defs=defs, life_events=["birth"], user=None, office=off, today=DAY,
                                 now=at(DAY, "09:20"), defaults=DEFAULTS)[1] for _ in range(2)]
    with pytest.raises(Conflict) as early:
        appointments.check_in(db, defs=defs, code=row.code, office=off, today=DAY, tz=TZ, window=WINDOW,
                              now=at(DAY, "09:29"), defaults=DEFAULTS)
    assert "09:30 から" in early.value.message
    done = appointments.check_in(db, defs=defs, code=appointments.display_code(row.code), office=off, today=DAY,
                                 tz=TZ, window=WINDOW, now=at(DAY, "09:45"), defaults=DEFAULTS)
    assert done.on_time and done.ticket.priority_reason == "appointment" and row.status == "checked_in"
    assert done.ticket.number > walk_ins[1].number
    called = queue.call_next(db, office=off, day=DAY, counter="1", now=at(DAY, "09:50"))
    assert called is not None and called.case_id == done.case.id
    with pytest.raises(Conflict):
        appointments.check_in(db, defs=defs, code=row.code, office=off, today=DAY, tz=TZ, window=WINDOW,
                              now=at(DAY, "09:51"), defaults=DEFAULTS)


def test_no_show_releases_the_place_and_a_late_check_in_gets_an_ordinary_ticket(
    db: Session, registry: DefinitionRegistry,
) -> None:
    off, defs = office(), registry.current
    row = book(db, registry, off, at(DAY, "09:00"))  # kodomo: one place
    assert appointments.day_slots(db, defs=defs, office=off, queue_id="kodomo", day=DAY, tz=TZ, now=NOW)[0]["free"] == 0
    assert appointments.sweep_no_shows(db, window=WINDOW, now=at(DAY, "09:15")) == 0  # still in the window
    assert appointments.sweep_no_shows(db, window=WINDOW, now=at(DAY, "09:16")) == 1
    assert row.status == "no_show" and row.no_show_at is not None
    assert appointments.day_slots(db, defs=defs, office=off, queue_id="kodomo", day=DAY, tz=TZ, now=NOW)[0]["free"] == 1
    assert appointments.sweep_no_shows(db, window=WINDOW, now=at(DAY, "09:20")) == 0  # once
    late = appointments.check_in(db, defs=defs, code=row.code, office=off, today=DAY, tz=TZ, window=WINDOW,
                                 now=at(DAY, "09:30"), defaults=DEFAULTS)
    assert not late.on_time and late.ticket.priority == 0 and late.ticket.queue == "kodomo"
    assert "通常の順番" in late.message


def test_two_bookings_racing_for_the_last_place_one_wins(engine: Engine, registry: DefinitionRegistry) -> None:
    # Real commits on two connections, released together: the capacity row decides.
    off = office()
    factory = make_sessionmaker(engine)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        try:
            with factory.begin() as session:
                appointments.book(session, defs=registry.current, office=off, queue_id="kodomo", life_event="childcare",
                                  start=at(DAY, "10:20"), tz=TZ, now=NOW)
            result = "booked"
        except Conflict as exc:
            result = exc.message
        with lock:
            outcomes.append(result)

    try:
        threads = [threading.Thread(target=attempt) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(outcomes) == sorted(["booked", appointments.FULL])
        with factory() as session:
            assert session.scalar(select(AppointmentSlot.booked).where(AppointmentSlot.office == off)) == 1
            assert len(list(session.scalars(select(Appointment).where(Appointment.office == off)))) == 1
    finally:
        with factory.begin() as session:
            session.execute(delete(Appointment).where(Appointment.office == off))
            session.execute(delete(AppointmentSlot).where(AppointmentSlot.office == off))


def test_web_ticket_only_in_opening_hours_and_rate_limited(db: Session, registry: DefinitionRegistry) -> None:
    off, defs = office(), registry.current
    key = remote_tickets.client_key("203.0.113.9", secret="s")
    kwargs = dict(defs=defs, life_event="move_in", key=key, office=off, tz=TZ, limit=2, defaults=DEFAULTS)
    for closed in (at(DAY, "08:29"), at(DAY, "17:15"), at(dt.date(2026, 12, 30), "10:00"), at(dt.date(2026, 12, 6), "10:00")):
        with pytest.raises(Conflict) as err:
            remote_tickets.take(db, now=closed, **kwargs)
        assert err.value.message == remote_tickets.CLOSED
    case, ticket = remote_tickets.take(db, now=at(DAY, "08:30"), **kwargs)
    assert ticket.status == "waiting" and ticket.queue == "" and case.status_token
    remote_tickets.take(db, now=at(DAY, "08:40"), **kwargs)
    with pytest.raises(remote_tickets.TooManyTickets):
        remote_tickets.take(db, now=at(DAY, "09:00"), **kwargs)
    other = remote_tickets.client_key("203.0.113.10", secret="s")
    remote_tickets.take(db, now=at(DAY, "09:00"), **{**kwargs, "key": other})
    remote_tickets.take(db, now=at(DAY, "09:41"), **kwargs)  # an hour after the first
    with pytest.raises(ValidationFailed):
        remote_tickets.take(db, now=at(DAY, "10:00"), **{**kwargs, "life_event": "nosuch", "key": "k"})
    assert db.query(RemoteTicket).join(Case, Case.id == RemoteTicket.case_id).filter(Case.office == off).count() == 4
    # A day later the hashes of 08:30, 08:40 and 09:00 are dropped; 09:41 is kept a little longer.
    assert remote_tickets.forget_old(db, now=at(DAY, "09:41") + dt.timedelta(days=1)) == 3


def test_web_bookings_are_limited_per_address(db: Session, registry: DefinitionRegistry) -> None:
    off = office()
    kwargs = dict(defs=registry.current, office=off, queue_id="", life_event="move_in", tz=TZ, now=NOW,
                  limit_per_hour=2)
    appointments.book(db, start=at(DAY, "09:00"), client_key="k1", **kwargs)
    appointments.book(db, start=at(DAY, "09:30"), client_key="k1", **kwargs)
    with pytest.raises(appointments.TooManyBookings):
        appointments.book(db, start=at(DAY, "10:00"), client_key="k1", **kwargs)
    appointments.book(db, start=at(DAY, "10:00"), client_key="k2", **kwargs)  # another address
    later = {**kwargs, "now": NOW + dt.timedelta(minutes=61)}
    appointments.book(db, start=at(DAY, "10:30"), client_key="k1", **later)
    assert appointments.forget_client_keys(db, now=NOW + dt.timedelta(days=2)) == 4
    assert db.scalar(select(Appointment.client_key).where(Appointment.office == off,
                                                          Appointment.client_key.is_not(None))) is None


def test_ics_invitation_speaks_the_booking_language(db: Session, registry: DefinitionRegistry) -> None:
    """A booking made on the English page gets an English invitation, the department named in English."""
    row = book(db, registry, office(), at(DAY, "13:50"))
    row.language = "en"
    data = appointment_invite.ics(row, defs=registry.current, city_name="みどり市", base_url="https://city.example",
                                  now=NOW)
    (event,) = icalendar.Calendar.from_ical(data).walk("VEVENT")
    summary, description = str(event["summary"]), str(event["description"])
    assert summary.startswith("みどり市 counter appointment (") and "こども福祉課" not in summary
    assert "Booking number: " + appointments.display_code(row.code) in description
    assert f"Cancel or check: https://city.example/booking/{row.code}" in description
    assert "予約番号" not in description
