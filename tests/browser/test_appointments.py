"""Appointments in real headless Chromium against a real uvicorn: a resident books on a phone (390×844),
reception checks the booking in by its code (typed like a USB scanner: the code, then Enter), and the
counter's 「次の方を呼ぶ」 calls the booking's ticket before two walk-ins who came earlier. axe-core on the
booking page, the confirmation and the staff bookings screen. The service clock is pinned (the server
runs in this process) so that the slot is in the future at booking and inside its window at check-in."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Appointment, QueueTicket
from app.services import clock, queue
from app.services.definitions import DefinitionRegistry
from tests.browser.axe import assert_clean
from tests.browser.conftest import TABLET, LiveServer, free_port, running_server, screenshot
from tests.browser.test_accessibility import small_targets
from tests.browser.test_rooms import context, log_in

pytestmark = pytest.mark.browser

TZ = ZoneInfo("Asia/Tokyo")
PHONE = {"width": 390, "height": 844}
DAY = dt.date(2026, 12, 2)  # a Wednesday


def at(hm: str) -> dt.datetime:
    h, m = hm.split(":")
    return dt.datetime(DAY.year, DAY.month, DAY.day, int(h), int(m), tzinfo=TZ)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # An SMTP host (nobody listens there) makes the booking page offer the optional e-mail field.
    with running_server(tmp_path_factory, "appointments", smtp_host="127.0.0.1", smtp_port=free_port()) as live:
        yield live


def test_a_booking_checked_in_goes_first(server: LiveServer, browser: Any) -> None:
    now = [at("08:40")]
    phone_ctx = context(browser, PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    tablet_ctx = context(browser, TABLET, has_touch=True)
    with clock.simulated(lambda: now[0]):
        try:
            # The resident books 10:00 at the one-stop counter on the phone.
            phone = phone_ctx.new_page()
            phone.goto(f"{server.url}/booking?lang=ja")
            phone.locator("label.choice", has_text="引っ越してきた（転入）").click()
            phone.get_by_role("button", name="次へ").click()
            phone.get_by_label("2. 日にち").select_option(DAY.isoformat())
            phone.get_by_role("button", name="空いている時間を見る").click()
            phone.locator("label.slot", has_text="10:00").click()
            assert_clean(phone, "booking page")
            assert small_targets(phone, "main") == []
            screenshot(phone, "booking_phone")
            phone.get_by_role("button", name="予約する").click()
            phone.wait_for_url("**/booking/*")
            expect(phone.get_by_role("heading", level=1)).to_have_text("予約しました")
            code = phone.locator(".facts .code").inner_text()
            assert phone.locator(".qr svg").count() == 1
            assert_clean(phone, "booking confirmation")
            screenshot(phone, "booking_confirmation")
            with Session(server.engine) as s:
                booking = s.scalar(select(Appointment).where(Appointment.code == code.replace("-", "")))
                assert booking is not None and booking.status == "booked"

            # Two walk-ins take tickets at 09:30 and 09:35.
            registry = DefinitionRegistry(server.settings.definitions_dir)
            registry.load()
            walk_ins = []
            with Session(server.engine) as s:
                for hm in ("09:30", "09:35"):
                    now[0] = at(hm)
                    _case, ticket = queue.open_visit(s, defs=registry.current, life_events=["birth"], user=None,
                                                     office=server.settings.office_code, today=DAY, now=at(hm))
                    walk_ins.append(ticket.case_id)
                s.commit()

            # Reception, 09:45: the scanner types the code and Enter.
            now[0] = at("09:45")
            desk = tablet_ctx.new_page()
            desk.add_init_script("window.print = function () { window.printed = (window.printed || 0) + 1; };")
            log_in(desk, server.url, "clerk", "/counter")
            desk.goto(f"{server.url}/reception/bookings?day={DAY.isoformat()}")
            expect(desk.locator("#bookings")).to_contain_text(code)
            assert_clean(desk, "staff bookings screen")
            # Book a second slot for a caller on the phone, so the screen shows both channels.
            desk.get_by_label("ご用件と窓口").select_option("kodomo:childcare")
            desk.get_by_role("button", name="次へ").click()
            desk.get_by_label("予約日（開庁日のみ）").select_option(DAY.isoformat())
            desk.get_by_role("button", name="空き時間を見る").click()
            desk.locator("label.slot-button", has_text="13:30").click()
            desk.get_by_role("button", name="この時間で予約する").click()
            expect(desk.locator("#booked-code")).to_be_visible()
            expect(desk.locator("#bookings")).to_contain_text("電話（職員）")
            assert_clean(desk, "staff bookings screen after a phone booking")
            screenshot(desk, "reception_bookings")

            desk.goto(f"{server.url}/reception")
            desk.locator("#checkin-code").fill(code.lower())
            desk.locator("#checkin-code").press("Enter")
            desk.wait_for_url("**/reception/tickets/*")
            expect(desk.locator("#checkin-message")).to_have_text("予約の受付をしました。優先してお呼びします")
            expect(desk.locator(".priority")).to_have_text("予約")
            booked_case = desk.url.split("/reception/tickets/")[1].split("?")[0]

            # The counter calls the next: the booking's ticket, though it was issued last.
            desk.goto(f"{server.url}/counter")
            desk.get_by_role("button", name="次の方を呼ぶ").click()
            desk.wait_for_url(f"**/counter/visits/{booked_case}*")
            with Session(server.engine) as s:
                statuses = {t.case_id: t.status for t in s.scalars(select(QueueTicket))}
            assert statuses[booked_case] == "called"
            assert [statuses[c] for c in walk_ins] == ["waiting", "waiting"]
            # The next press calls the first walk-in.
            desk.goto(f"{server.url}/counter")
            desk.get_by_role("button", name="次の方を呼ぶ").click()
            desk.wait_for_url(f"**/counter/visits/{walk_ins[0]}*")

            # A web ticket from the phone (opening hours): it lands on the ordinary phone page.
            phone.goto(f"{server.url}/ticket?lang=vi")
            assert_clean(phone, "web ticket page")
            assert small_targets(phone, "main") == []
            phone.locator("label.choice").first.click()
            phone.get_by_role("button", name="Lấy số").click()
            phone.wait_for_url("**/q/*")
            expect(phone.locator("#ticket-number")).to_have_text(re.compile(r"\d{3}"))
        finally:
            phone_ctx.close()
            tablet_ctx.close()
