"""The app's own background round (no `kakanai notify run`): with only uvicorn running, a notice reaches a
local SMTP server (aiosmtpd), a booking's confirmation arrives with its .ics, an expired booking becomes a
no-show; two instances on one database send each notice once."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import icalendar
import pytest
import uvicorn
from sqlalchemy import delete, select

from app.forms.holidays import next_open_day
from app.main import create_app
from app.models import Appointment, AppointmentSlot, NoticeSubscription
from app.services import cases, notify, queue
from app.services.clock import local_today
from app.services.definitions import DefinitionRegistry
from tests.browser.conftest import free_port, running_server
from tests.services.test_notify import Inbox, smtp  # noqa: F401 - the fixture

WAIT_SECONDS = 20


def wait_for(condition: Callable[[], Any]) -> Any:
    """Poll until the condition holds (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("the background round did not do it in time")


@pytest.fixture
def live(tmp_path_factory: pytest.TempPathFactory, smtp: tuple[Inbox, int]) -> Iterator[Any]:  # noqa: F811
    _inbox, port = smtp
    with running_server(tmp_path_factory, "background", smtp_host="127.0.0.1", smtp_port=port,
                        smtp_from="city@example.org", background_interval=0.2,
                        public_base_url="https://city.example") as server:
        yield server


def test_notice_is_mailed_by_the_app_alone(live: Any, smtp: tuple[Inbox, int]) -> None:  # noqa: F811
    inbox, _port = smtp
    defs = DefinitionRegistry(live.settings.definitions_dir)
    defs.load()
    with live.session() as s:
        case = cases.create_case(s, defs=defs.current, answers={"life_events": ["move_in"]}, user=None,
                                 office=live.settings.office_code, today=local_today(live.settings), draft=True)
        queue.issue_ticket(s, case=case)
        notify.subscribe(s, token=case.status_token, channel="email", target="resident@example.org", language="en")
        s.commit()
    wait_for(lambda: inbox.messages)
    to, message = inbox.messages[0]
    assert to == ["resident@example.org"]
    assert f"/q/{case.status_token}?lang=en" in str(message.get_payload(decode=True), "utf-8")

    def recorded() -> bool:  # committed right after the send
        with live.session() as s:
            return s.scalar(select(NoticeSubscription.sent).where(NoticeSubscription.case_id == case.id)) == ["near"]

    wait_for(recorded)


def test_booking_confirmation_carries_the_ics_and_forgets_the_address(live: Any, smtp: tuple[Inbox, int]) -> None:  # noqa: F811
    import httpx

    inbox, _port = smtp
    day = next_open_day(local_today(live.settings) + dt.timedelta(days=1))
    start = dt.datetime(day.year, day.month, day.day, 10, 0, tzinfo=live.settings.tz)
    res = httpx.post(f"{live.url}/booking?lang=en", data={"purpose": ":move_in", "start": start.isoformat(),
                                                          "email": "booker@example.org"}, follow_redirects=False)
    assert res.status_code == 303, res.text
    code = res.headers["location"].split("/")[2].split("?")[0]
    wait_for(lambda: inbox.messages)
    to, message = inbox.messages[0]
    assert to == ["booker@example.org"]
    # In the language the booking was made in (English here), nothing personal.
    body = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert "Your visit to the counter is booked." in body and f"Booking number: {code[:5]}-{code[5:]}" in body
    assert start.strftime("%H:%M") in body and f"/booking/{code}" in body
    attachments = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(attachments) == 1 and attachments[0].get_filename() == f"yoyaku-{code}.ics"
    (event,) = icalendar.Calendar.from_ical(attachments[0].get_payload(decode=True)).walk("VEVENT")
    assert event.decoded("dtstart") == start

    def forgotten() -> bool:  # the address is not kept once the confirmation is sent (committed after the send)
        with live.session() as s:
            row = s.scalar(select(Appointment).where(Appointment.code == code))
            return row is not None and row.email is None

    wait_for(forgotten)


def test_expired_booking_becomes_a_no_show_and_frees_its_place(live: Any) -> None:
    past = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    with live.session() as s:
        s.add(AppointmentSlot(office=live.settings.office_code, queue="kodomo", start_at=past, booked=1))
        s.add(Appointment(code="NNNNN22222", office=live.settings.office_code, queue="kodomo", day=past.date(),
                          start_at=past, end_at=past + dt.timedelta(minutes=20), life_event="birth", status="booked"))
        s.commit()

    def swept() -> bool:
        with live.session() as s:
            return s.scalar(select(Appointment.status).where(Appointment.code == "NNNNN22222")) == "no_show"

    wait_for(swept)
    with live.session() as s:
        assert s.scalar(select(AppointmentSlot.booked).where(AppointmentSlot.start_at == past)) == 0


def test_two_instances_send_each_notice_once(live: Any, smtp: tuple[Inbox, int]) -> None:  # noqa: F811
    inbox, _port = smtp
    # A second uvicorn on the same database and settings: both run the background round.
    second = uvicorn.Server(uvicorn.Config(create_app(live.settings), host="127.0.0.1", port=free_port(),
                                           log_level="warning"))
    thread = threading.Thread(target=second.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: second.started)
        defs = DefinitionRegistry(live.settings.definitions_dir)
        defs.load()
        tokens = []
        with live.session() as s:
            for _ in range(8):
                case = cases.create_case(s, defs=defs.current, answers={"life_events": ["birth"]}, user=None,
                                         office=f"o{uuid.uuid4().hex[:6]}", today=local_today(live.settings),
                                         draft=True)
                queue.issue_ticket(s, case=case)
                notify.subscribe(s, token=case.status_token, channel="email", target="twice@example.org",
                                 language="ja")
                tokens.append(case.status_token)
            s.commit()
        wait_for(lambda: len(inbox.messages) >= 8)
        time.sleep(1.0)  # a few more rounds of both instances: nothing more may arrive
        bodies = [str(m.get_payload(decode=True), "utf-8") for _to, m in inbox.messages]
        assert len(bodies) == 8
        assert sorted(next(t for t in tokens if t in b) for b in bodies) == sorted(tokens)
    finally:
        second.should_exit = True
        thread.join(timeout=10)


def test_a_failed_send_is_given_back_and_sent_at_the_next_round(engine: Any, registry: DefinitionRegistry,
                                                                 settings: Any) -> None:
    # Real commits: the round claims in one transaction, sends outside, and gives back in another.
    from app.db import make_sessionmaker
    from app.services import appointments, background

    factory = make_sessionmaker(engine)
    office = f"f{uuid.uuid4().hex[:6]}"
    conf = settings.model_copy(update={"office_code": office, "smtp_host": "127.0.0.1"})
    start = dt.datetime.combine(next_open_day(local_today(conf) + dt.timedelta(days=1)), dt.time(10, 0),
                                tzinfo=conf.tz)
    with factory.begin() as s:
        case = cases.create_case(s, defs=registry.current, answers={"life_events": ["birth"]}, user=None,
                                 office=office, today=local_today(conf), draft=True)
        queue.issue_ticket(s, case=case)
        sub = notify.subscribe(s, token=case.status_token, channel="email", target="retry@example.org", language="ja")
        booking = appointments.book(s, defs=registry.current, office=office, queue_id="", life_event="move_in",
                                    start=start, tz=conf.tz, email="retry@example.org")
    sent: list[tuple[str, str]] = []

    def down(target: str, notice: notify.Notice) -> None:
        raise ConnectionRefusedError()

    def up(target: str, notice: notify.Notice) -> None:
        sent.append((target, notice.key))

    try:
        first = background.run_round(factory, settings=conf, defs=registry.current, senders={"email": down})
        assert (first.confirmations, first.notices) == (0, 0)
        with factory() as s:
            assert s.get(NoticeSubscription, sub.id).sent == []  # given back
            assert s.get(Appointment, booking.id).email == "retry@example.org"  # restored
        second = background.run_round(factory, settings=conf, defs=registry.current, senders={"email": up})
        assert (second.confirmations, second.notices) == (1, 1)
        assert set(sent) == {("retry@example.org", "near"), ("retry@example.org", f"booking:{booking.code}")}
        third = background.run_round(factory, settings=conf, defs=registry.current, senders={"email": up})
        assert (third.confirmations, third.notices) == (0, 0) and len(sent) == 2
        with factory() as s:
            assert s.get(Appointment, booking.id).email is None
    finally:
        with factory.begin() as s:
            s.execute(delete(NoticeSubscription).where(NoticeSubscription.id == sub.id))
            s.execute(delete(Appointment).where(Appointment.office == office))
            s.execute(delete(AppointmentSlot).where(AppointmentSlot.office == office))
