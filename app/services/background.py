"""The app's own background work, one task per process (lifespan): notices, booking confirmations, no-shows.

Every `background_interval` seconds each process runs one round in a worker thread, each part in its
own short transaction on the app's engine:
1. bookings whose check-in window has passed become no-shows (their places are released);
2. confirmation e-mails of new bookings are sent (the .ics attached) and the address is forgotten;
3. notices that became due are sent (`notify.claim` → `deliver` → `settle`).
What is to be sent is claimed and marked in one short transaction, sent with no transaction open, and
what failed is given back in another: at most once per notice, retried after a failure.
Several instances may run it at once: every part claims its rows with `FOR UPDATE SKIP LOCKED` on
PostgreSQL, and SQLite's IMMEDIATE transactions take turns, so nothing is sent or swept twice.
`background_tasks = false` turns it off; `kakanai notify run` runs the same round as a separate process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_sessionmaker
from app.forms.loader import DefinitionSet
from app.models import Appointment, utcnow
from app.services import appointment_invite, appointments, notify, remote_tickets
from app.services.notify import Notice, Sender
from app.services.notify.channels import from_settings
from app.services.wait_estimate import wait_defaults
from app.settings import Settings

log = logging.getLogger(__name__)
CONFIRMATIONS_PER_ROUND = 50


@dataclass(frozen=True)
class Round:
    """What one round did."""

    no_shows: int
    confirmations: int
    notices: int


def window(settings: Settings) -> appointments.Window:
    """The check-in window from the settings."""
    return appointments.Window(early_minutes=settings.appointment_checkin_early_minutes,
                               late_minutes=settings.appointment_checkin_late_minutes)


def claim_confirmations(session: Session, *, defs: DefinitionSet, settings: Settings,
                        now: dt.datetime | None = None) -> list[tuple[str, str, Notice]]:
    """Take the confirmations to send (booking id, address, message); the address is erased from the row."""
    now = now or utcnow()
    rows = list(session.scalars(
        select(Appointment).where(Appointment.email.is_not(None)).order_by(Appointment.created_at)
        .limit(CONFIRMATIONS_PER_ROUND).with_for_update(skip_locked=True)))
    out = []
    for row in rows:
        if row.status == "booked":
            out.append((row.id, row.email or "", appointment_invite.confirmation(
                row, defs=defs, city_name=settings.city_name, base_url=settings.public_base_url, tz=settings.tz,
                now=now)))
        row.email = None
    session.flush()
    return out


def send_confirmations(claimed: list[tuple[str, str, Notice]], sender: Sender) -> list[tuple[str, str]]:
    """Mail the claimed confirmations; returns the (booking id, address) of those that failed."""
    failed = []
    for booking_id, address, notice in claimed:
        try:
            sender(address, notice)
        except Exception as exc:  # retried next round; never log the address
            log.warning("booking confirmation failed: %s", type(exc).__name__)
            failed.append((booking_id, address))
    return failed


def restore_addresses(session: Session, failed: list[tuple[str, str]]) -> None:
    """Put back the addresses of confirmations that could not be sent (retried next round)."""
    for booking_id, address in failed:
        row = session.get(Appointment, booking_id, with_for_update=True)
        if row is not None and row.email is None and row.status == "booked":
            row.email = address
    session.flush()


def run_round(factory: sessionmaker[Session], *, settings: Settings, defs: DefinitionSet,
              senders: dict[str, Sender] | None = None) -> Round:
    """One round of the background work. Rows are claimed in short transactions and nothing is sent while
    a transaction is open, so a slow SMTP server or push service never holds a database lock."""
    senders = from_settings(settings) if senders is None else senders
    with factory.begin() as session:
        no_shows = appointments.sweep_no_shows(session, window=window(settings))
        remote_tickets.forget_old(session)
        appointments.forget_client_keys(session)
    confirmations = 0
    if "email" in senders:
        with factory.begin() as session:
            claimed = claim_confirmations(session, defs=defs, settings=settings)
        failed = send_confirmations(claimed, senders["email"])
        if failed:
            with factory.begin() as session:
                restore_addresses(session, failed)
        confirmations = len(claimed) - len(failed)
    notices = 0
    if senders:
        with factory.begin() as session:
            taken = notify.claim(session, defs=defs, defaults=wait_defaults(settings, defs),
                                 base_url=settings.public_base_url, channels=senders)
        outcomes = notify.deliver(taken, senders)
        with factory.begin() as session:
            notices = notify.settle(session, outcomes)
    return Round(no_shows=no_shows, confirmations=confirmations, notices=notices)


def _round(app: FastAPI) -> None:
    try:
        run_round(app.state.background_sessionmaker, settings=app.state.settings,
                  defs=app.state.definitions.current, senders=app.state.background_senders)
    except Exception as exc:  # a database outage must not stop the process; the next round retries
        log.warning("background round failed: %s", type(exc).__name__)


async def _run(app: FastAPI, interval: float) -> None:
    while True:
        await asyncio.to_thread(_round, app)
        await asyncio.sleep(interval)


async def start(app: FastAPI) -> None:
    """Start this process's background task unless the settings turn it off."""
    settings: Settings = app.state.settings
    if not settings.background_tasks:
        return
    app.state.background_sessionmaker = make_sessionmaker(app.state.engine)
    app.state.background_senders = from_settings(settings)
    app.state.background_task = asyncio.create_task(_run(app, settings.background_interval),
                                                    name="kakanai-background")


async def stop(app: FastAPI) -> None:
    """Stop the background task (a round in progress finishes in its thread)."""
    task: asyncio.Task[Any] | None = getattr(app.state, "background_task", None)
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    app.state.background_task = None
