"""The app's own background work, one task per process (lifespan): notices, booking confirmations, no-shows.

Every `background_interval` seconds each process runs one round in a worker thread, each part in its
own short transaction on the app's engine:
1. bookings whose check-in window has passed become no-shows (their places are released);
2. confirmation e-mails of new bookings are sent (the .ics attached) and the address is forgotten;
3. notices that became due are sent (`notify.dispatch`).
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
from app.services import appointment_invite, appointments, notify
from app.services.notify import Sender
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


def send_confirmations(session: Session, *, defs: DefinitionSet, settings: Settings, sender: Sender,
                       now: dt.datetime | None = None) -> int:
    """Mail each new booking that left an address its confirmation; the address is then erased."""
    now = now or utcnow()
    rows = list(session.scalars(
        select(Appointment).where(Appointment.email.is_not(None)).order_by(Appointment.created_at)
        .limit(CONFIRMATIONS_PER_ROUND).with_for_update(skip_locked=True)))
    sent = 0
    for row in rows:
        if row.status != "booked":
            row.email = None
            continue
        notice = appointment_invite.confirmation(row, defs=defs, city_name=settings.city_name,
                                                 base_url=settings.public_base_url, tz=settings.tz, now=now)
        try:
            sender(row.email or "", notice)
        except Exception as exc:  # retried next round; never log the address
            log.warning("booking confirmation failed: %s", type(exc).__name__)
            continue
        row.email = None
        sent += 1
    session.flush()
    return sent


def run_round(factory: sessionmaker[Session], *, settings: Settings, defs: DefinitionSet,
              senders: dict[str, Sender] | None = None) -> Round:
    """One round of the background work, each part in its own transaction."""
    senders = from_settings(settings) if senders is None else senders
    with factory.begin() as session:
        no_shows = appointments.sweep_no_shows(session, window=window(settings))
    confirmations = 0
    if "email" in senders:
        with factory.begin() as session:
            confirmations = send_confirmations(session, defs=defs, settings=settings, sender=senders["email"])
    notices = 0
    if senders:
        with factory.begin() as session:
            notices = notify.dispatch(session, defs=defs, defaults=wait_defaults(settings, defs),
                                      base_url=settings.public_base_url, senders=senders)
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
