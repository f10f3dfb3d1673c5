"""Notices to residents, over real protocols: a local push endpoint that decrypts the RFC 8291 payload
(aes128gcm, with the subscription's private key) and a local SMTP server (aiosmtpd)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.orm import Session

from app import i18n
from app.errors import ValidationFailed
from app.models import NoticeSubscription, RoutingStep
from app.services import cases, notify, queue
from app.services.definitions import DefinitionRegistry
from app.services.notify import mail, webpush
from app.services.wait_estimate import WaitDefaults
from tests.browser.conftest import free_port

DEFAULTS = WaitDefaults(service_minutes={"": 20.0}, open_counters={"": 2})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class PushEndpoint:
    """A push service on 127.0.0.1 that decrypts what it receives, as the browser would."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.status = 201
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.headers.append({k.lower(): v for k, v in self.headers.items()})
                plain = http_ece.decrypt(body, private_key=endpoint.private, auth_secret=endpoint.auth,
                                         version="aes128gcm")
                endpoint.received.append(json.loads(plain))
                self.send_response(endpoint.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def subscription(self) -> dict[str, Any]:
        public = self.private.public_key().public_bytes(serialization.Encoding.X962,
                                                        serialization.PublicFormat.UncompressedPoint)
        port = self.server.server_address[1]
        return {"endpoint": f"http://127.0.0.1:{port}/push/abc", "keys": {"p256dh": b64(public), "auth": b64(self.auth)}}


@pytest.fixture
def push() -> Iterator[PushEndpoint]:
    endpoint = PushEndpoint()
    endpoint.thread.start()
    try:
        yield endpoint
    finally:
        endpoint.server.shutdown()
        endpoint.server.server_close()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def visit(db: Session, registry: DefinitionRegistry, ahead: int) -> Any:
    office = f"n{os.urandom(4).hex()}"
    today = dt.date.today()
    for _ in range(ahead):
        other = cases.create_case(db, defs=registry.current, answers={"life_events": ["birth"]}, user=None,
                                  office=office, today=today, draft=True)
        queue.issue_ticket(db, case=other, defaults=DEFAULTS)
    case = cases.create_case(db, defs=registry.current, answers={"life_events": ["move_in"]}, user=None, office=office,
                             today=today, draft=True)
    queue.issue_ticket(db, case=case, defaults=DEFAULTS)
    return case, office, today


def dispatch(db: Session, registry: DefinitionRegistry, senders: dict[str, Any]) -> int:
    return notify.dispatch(db, defs=registry.current, defaults=DEFAULTS, base_url="https://city.example",
                           senders=senders)


def test_web_push_is_encrypted_for_the_subscription_and_in_the_residents_language(
    db: Session, registry: DefinitionRegistry, push: PushEndpoint,
) -> None:
    case, office, today = visit(db, registry, ahead=4)
    notify.subscribe(db, token=case.status_token, channel="webpush", target=push.subscription(), language="vi")
    private, public = webpush.generate_keys()
    senders = {"webpush": webpush.sender(private_key=private, subject="mailto:test@example.invalid")}
    assert dispatch(db, registry, senders) == 0  # 4 ahead: nothing yet
    queue.call_next(db, office=office, day=today, counter="1")
    assert dispatch(db, registry, senders) == 1  # 3 ahead now
    vi = i18n.gettext_for("vi")
    assert push.received[-1] == {"title": vi(notify.TITLE) % {"number": f"{case.ticket_number:03d}"},
                                 "body": vi(notify.NEAR), "url": f"https://city.example/q/{case.status_token}?lang=vi"}
    assert push.received[-1]["body"] != notify.NEAR  # Vietnamese, not the Japanese source
    assert push.headers[-1]["content-encoding"] == "aes128gcm" and push.headers[-1]["authorization"].startswith("vapid ")
    assert public in push.headers[-1]["authorization"]
    assert dispatch(db, registry, senders) == 0  # sent once
    for _ in range(3):
        queue.call_next(db, office=office, day=today, counter="1")
    ticket = queue.call_next(db, office=office, day=today, counter="4")
    assert ticket is not None and ticket.case_id == case.id
    assert dispatch(db, registry, senders) == 1
    assert push.received[-1]["body"] == vi("%(counter)s番窓口へお越しください") % {"counter": "4"}
    assert "Vui lòng" in push.received[-1]["body"]
    # A department needs the resident, then everything is done.
    step = RoutingStep(case_id=case.id, department_id="kodomo", applications=["jido_teate"], status="needs_resident",
                       counter="8", resident_reason="追加の書類が必要です")
    db.add(step)
    queue.start_service(db, case_id=case.id)
    db.flush()
    assert dispatch(db, registry, senders) == 1
    assert push.received[-1]["body"].startswith("Vui lòng đến Phòng Phúc lợi Trẻ em")
    step.status = "done"
    db.flush()
    assert dispatch(db, registry, senders) == 1
    assert push.received[-1]["body"] == vi("手続きはすべて終わりました。お帰りいただけます")
    # Nothing personal in any notice: a number, places and instructions only.
    assert all(set(m) == {"title", "body", "url"} for m in push.received)
    # The push service says the subscription is gone: it is forgotten.
    push.status = 410
    row = db.query(NoticeSubscription).filter_by(case_id=case.id).one()
    row.sent = [k for k in row.sent if k != "done"]
    db.flush()
    dispatch(db, registry, senders)
    assert db.query(NoticeSubscription).filter_by(case_id=case.id).count() == 0


def test_email_notice_reaches_a_local_smtp_server(db: Session, registry: DefinitionRegistry,
                                                 smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    case, office, today = visit(db, registry, ahead=0)
    notify.subscribe(db, token=case.status_token, channel="email", target=" resident@example.org ", language="en")
    senders = {"email": mail.sender(host="127.0.0.1", port=port, from_address="city@example.org")}
    assert dispatch(db, registry, senders) == 1  # nobody ahead: near
    queue.call_next(db, office=office, day=today, counter="2")
    assert dispatch(db, registry, senders) == 1
    (to, message) = inbox.messages[-1]
    assert to == ["resident@example.org"]
    assert str(make_header(decode_header(message["Subject"]))) == f"Ticket number {case.ticket_number:03d}"
    body = message.get_payload(decode=True).decode(message.get_content_charset() or "utf-8")
    assert "Please come to counter 2." in body and f"/q/{case.status_token}?lang=en" in body


def test_subscribe_refuses_bad_input(db: Session, registry: DefinitionRegistry) -> None:
    case, _office, _today = visit(db, registry, ahead=0)
    for channel, target, field in [("email", "not an address", "email"), ("sms", "x", "channel"),
                                   ("webpush", {"endpoint": "ftp://x"}, "subscription")]:
        with pytest.raises(ValidationFailed) as err:
            notify.subscribe(db, token=case.status_token, channel=channel, target=target, language="ja")
        assert err.value.details[0]["field"] == field
    assert db.query(NoticeSubscription).filter_by(case_id=case.id).count() == 0


def test_cli_prints_a_vapid_key_pair_pywebpush_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    from py_vapid import Vapid

    from app.cli import main

    assert main(["notify", "keys"]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    vapid = Vapid.from_string(lines["KAKANAI_VAPID_PRIVATE_KEY"])
    public = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert b64(public) == lines["KAKANAI_VAPID_PUBLIC_KEY"]
