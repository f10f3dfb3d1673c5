"""Booking pages (resident, in the resident's language), the staff bookings screen and check-in at reception,
and the web ticket, through the app with the service clock pinned."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import icalendar
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Appointment, QueueTicket
from app.services import clock
from tests.conftest import make_user
from tests.routers.test_rooms_pages import HTML, browser_login

TZ = ZoneInfo("Asia/Tokyo")
NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=TZ)  # Tuesday, an open day
SLOT = dt.datetime(2026, 12, 2, 10, 0, tzinfo=TZ)


@pytest.fixture(autouse=True)
def pinned(app: FastAPI) -> Iterator[None]:
    # An SMTP host is set, so the pages take an e-mail address (nothing is sent: no background round here).
    app.state.settings = app.state.settings.model_copy(update={"smtp_host": "127.0.0.1"})
    with clock.simulated(lambda: NOW):
        yield


def book(client: TestClient, *, lang: str = "en", start: dt.datetime = SLOT, email: str = "",
         purpose: str = ":move_in") -> tuple[int, str]:
    res = client.post(f"/booking?lang={lang}", data={"purpose": purpose, "day": start.date().isoformat(),
                                                     "start": start.isoformat(), "email": email},
                      headers=HTML, follow_redirects=False)
    return res.status_code, res.headers.get("location", "") if res.status_code == 303 else res.text


def test_resident_books_sees_the_code_and_qr_downloads_the_ics_and_cancels(client: TestClient, db: Session) -> None:
    page = client.get("/booking?lang=en&purpose=:move_in&day=2026-12-02", headers=HTML)
    assert page.status_code == 200
    assert "Book a visit to the counter" in page.text and "I moved here from another city" in page.text
    assert "Wednesday, December 2, 2026" in page.text and 'value="2026-12-02T10:00:00+09:00"' in page.text
    assert 'value="2026-12-29"' not in page.text  # 年末年始 is not offered
    status, location = book(client)
    assert status == 303 and location.startswith("/booking/")
    code = location.split("/")[2].split("?")[0]
    done = client.get(location, headers=HTML)
    assert "Your visit is booked" in done.text and f"{code[:5]}-{code[5:]}" in done.text and "<svg" in done.text
    assert done.headers["referrer-policy"] == "no-referrer"
    ics = client.get(f"/booking/{code}.ics")
    assert ics.headers["content-type"].startswith("text/calendar")
    (event,) = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
    assert event.decoded("dtstart") == SLOT
    cancelled = client.post(f"/booking/{code}/cancel?lang=en", headers=HTML)
    assert cancelled.status_code == 200 and "The booking was cancelled." in cancelled.text
    assert db.query(Appointment).filter_by(code=code).one().status == "cancelled"
    assert client.get("/booking/ZZZZZZZZZZ?lang=vi", headers=HTML).status_code == 404


def test_full_slot_and_bad_email_come_back_in_the_residents_language(client: TestClient) -> None:
    assert book(client)[0] == 303
    assert book(client)[0] == 303
    status, text = book(client, lang="vi")
    assert status == 409 and "Khung giờ này đã kín" in text
    status, text = book(client, lang="en", start=SLOT + dt.timedelta(minutes=30), email="nope")
    assert status == 422 and "Please check the e-mail address." in text


def test_staff_books_for_a_caller_lists_the_day_and_checks_in_by_code(client: TestClient, db: Session) -> None:
    make_user(db, "desk_booking", "counter")
    csrf = browser_login(client, "desk_booking", "/counter")
    res = client.post("/reception/bookings", data={"csrf_token": csrf, "purpose": "kodomo:childcare",
                                                   "slot_day": "2026-12-01", "start": "2026-12-01T09:20:00+09:00"},
                      headers=HTML, follow_redirects=False)
    assert res.status_code == 303, res.text
    code = re.search(r"booked=(\w+)", res.headers["location"]).group(1)  # type: ignore[union-attr]
    listing = client.get(res.headers["location"], headers=HTML)
    assert f"{code[:5]}-{code[5:]}" in listing.text and "電話（職員）" in listing.text and "09:20" in listing.text
    # Each booked row has its own check-in button (the row's code posted to the same check-in as the scanner).
    row_button = 'action="/reception/check-in" class="inline">'
    assert row_button in listing.text and f'name="code" value="{code}"' in listing.text
    # The slot (capacity 1) is now full for the phone page as well.
    full = client.post("/booking?lang=ja", data={"purpose": "kodomo:childcare", "start": "2026-12-01T09:20:00+09:00"},
                       headers=HTML)
    assert full.status_code == 409 and "いっぱい" in full.text
    bad = client.post("/reception/check-in", data={"csrf_token": csrf, "code": "AAAAA-AAAAA"}, headers=HTML)
    assert bad.status_code == 404 and "この予約番号は見つかりません" in bad.text
    # A scanner types the code in lower case with its hyphen, then Enter.
    res = client.post("/reception/check-in", data={"csrf_token": csrf, "code": f"{code[:5]}-{code[5:]}".lower()},
                      headers=HTML, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"].endswith("?checkin=on_time")
    case_id = res.headers["location"].split("/")[3].split("?")[0]
    ticket = db.get(QueueTicket, case_id)
    assert ticket is not None and ticket.priority_reason == "appointment" and ticket.queue == "kodomo"
    printed = client.get(res.headers["location"], headers=HTML)
    assert "予約の受付をしました。優先してお呼びします" in printed.text and ">予約<" in printed.text
    again = client.post("/reception/check-in", data={"csrf_token": csrf, "code": code}, headers=HTML)
    assert again.status_code == 409 and "すでに受付済み" in again.text
    after = client.get("/reception/bookings?day=2026-12-01", headers=HTML)
    assert f'name="code" value="{code}"' not in after.text  # checked in: no button any more


def test_web_ticket_in_opening_hours_then_rate_limited(client: TestClient) -> None:
    page = client.get("/ticket?lang=en", headers=HTML)
    assert "Take a ticket on your phone" in page.text
    for _ in range(3):
        res = client.post("/ticket?lang=en", data={"life_event": "move_in"}, headers=HTML, follow_redirects=False)
        assert res.status_code == 303 and res.headers["location"].startswith("/q/")
    phone = client.get(res.headers["location"], headers=HTML)
    assert phone.status_code == 200
    limited = client.post("/ticket?lang=en", data={"life_event": "move_in"}, headers=HTML)
    assert limited.status_code == 429 and "Too many tickets" in limited.text
    with clock.simulated(lambda: dt.datetime(2026, 12, 31, 10, 0, tzinfo=TZ)):
        closed = client.post("/ticket?lang=vi", data={"life_event": "move_in"}, headers=HTML)
        assert closed.status_code == 409 and "Hiện không phải giờ tiếp nhận" in closed.text
        assert "Hiện không phải giờ tiếp nhận" in client.get("/ticket?lang=vi", headers=HTML).text


def test_api_slots_booking_cancel_and_check_in(client: TestClient, counter_headers: dict[str, str]) -> None:
    slots = client.get("/api/v1/booking/slots", params={"queue": "kodomo", "day": "2026-12-01"}).json()
    assert slots[0]["start"] == "2026-12-01T09:00:00+09:00" and slots[0]["bookable"] is False  # started at NOW
    assert slots[1]["free"] == 1 and slots[1]["bookable"] is True
    assert client.get("/api/v1/booking/slots", params={"queue": "kodomo", "day": "2026-12-29"}).json() == []
    body = {"queue": "kodomo", "life_event": "childcare", "start": "2026-12-01T09:20:00+09:00"}
    made = client.post("/api/v1/booking", json=body)
    assert made.status_code == 201 and made.json()["status"] == "booked" and made.json()["channel"] == "web"
    code = made.json()["code"]
    assert client.post("/api/v1/booking", json=body).status_code == 409
    bad = client.post("/api/v1/booking", json={**body, "start": "2026-12-01T09:25:00+09:00"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "start"
    assert client.get(f"/api/v1/booking/{code}").json()["display_code"] == f"{code[:5]}-{code[5:]}"
    assert client.get("/api/v1/appointments").status_code == 401
    listed = client.get("/api/v1/appointments", params={"day": "2026-12-01"}, headers=counter_headers).json()
    assert [b["code"] for b in listed] == [code]
    checked = client.post(f"/api/v1/appointments/{code}/check-in", headers=counter_headers)
    assert checked.status_code == 200, checked.text
    assert checked.json()["on_time"] is True and checked.json()["priority_reason"] == "appointment"
    assert client.post(f"/api/v1/booking/{code}/cancel").status_code == 409  # checked in
    other = client.post("/api/v1/appointments", json={**body, "start": "2026-12-01T09:40:00+09:00"},
                        headers=counter_headers)
    assert other.status_code == 201 and other.json()["channel"] == "phone"
    cancelled = client.post(f"/api/v1/booking/{other.json()['code']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_a_caller_finds_the_booking_by_its_code_alone(client: TestClient) -> None:
    status, location = book(client)
    assert status == 303
    code = location.split("/")[2].split("?")[0]
    found = client.get(f"/booking?lang=en&code={code[:5].lower()}-{code[5:].lower()}", headers=HTML,
                       follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"] == f"/booking/{code}?lang=en"
    wrong = client.get("/booking?lang=en&code=12", headers=HTML)
    assert wrong.status_code == 422 and "This booking number was not found." in wrong.text
