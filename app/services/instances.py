"""Running service instances and the encryption key ids each of them knows.

Every process of the service (each uvicorn worker, each container) publishes a row at start and
refreshes it while it runs; `kakanai keys rotate` reads the rows and refuses to re-encrypt while a
running instance would not be able to read the result, or would keep writing under the old key.
Only key ids are published (`k2`), never key material.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import socket
from typing import Any

from fastapi import FastAPI
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app import crypto
from app.db import make_sessionmaker
from app.models import ServiceInstance, utcnow

log = logging.getLogger(__name__)
# An instance is running while its heartbeat is younger than this many heartbeat intervals.
LIVE_INTERVALS = 3
FORGET_AFTER = dt.timedelta(days=1)


def new_instance_id() -> str:
    """A unique id for this process: host, pid and a random suffix."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"


def publish(session: Session, *, instance_id: str, ring: crypto.KeyRing, now: dt.datetime | None = None) -> None:
    """Insert or refresh this instance's row with the key ids it knows and the one it encrypts with."""
    now = now or utcnow()
    row = session.get(ServiceInstance, instance_id)
    if row is None:
        row = ServiceInstance(id=instance_id, host=socket.gethostname()[:100], pid=os.getpid(), started_at=now)
        session.add(row)
    row.key_ids = ring.key_ids
    row.current_key = ring.current
    row.heartbeat_at = now
    # Rows of processes that died without withdrawing: kept a day for the curious, then dropped.
    session.execute(delete(ServiceInstance).where(ServiceInstance.heartbeat_at < now - FORGET_AFTER))


def withdraw(session: Session, *, instance_id: str) -> None:
    """Remove this instance's row (clean shutdown)."""
    session.execute(delete(ServiceInstance).where(ServiceInstance.id == instance_id))


def live_window(heartbeat_seconds: float) -> dt.timedelta:
    """How recent a heartbeat must be for its instance to count as running."""
    return dt.timedelta(seconds=LIVE_INTERVALS * (heartbeat_seconds if heartbeat_seconds > 0 else 30.0))


def list_running(session: Session, *, window: dt.timedelta, now: dt.datetime | None = None) -> list[ServiceInstance]:
    """Instances whose heartbeat is recent enough, oldest first."""
    since = (now or utcnow()) - window
    return list(session.scalars(select(ServiceInstance).where(ServiceInstance.heartbeat_at >= since)
                                .order_by(ServiceInstance.started_at)))


# --- The per-process heartbeat (lifespan) -----------------------------------------------------------------


def _beat(app: FastAPI, *, first: bool = False) -> None:
    factory = app.state.instance_sessionmaker
    try:
        with factory.begin() as session:
            publish(session, instance_id=app.state.instance_id, ring=crypto.keyring())
    except Exception as exc:  # a database outage must not stop the process; the next beat retries
        log.warning("could not publish the instance's key ids%s: %s", " at start" if first else "",
                    type(exc).__name__)


async def _run(app: FastAPI, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(_beat, app)


async def start(app: FastAPI) -> None:
    """Publish this process's key ids before it serves, then refresh them; off when the interval is 0."""
    interval = float(app.state.settings.instance_heartbeat_seconds)
    if interval <= 0:
        return
    app.state.instance_id = new_instance_id()
    app.state.instance_sessionmaker = make_sessionmaker(app.state.engine)
    await asyncio.to_thread(_beat, app, first=True)
    app.state.instance_task = asyncio.create_task(_run(app, interval), name="kakanai-instance-heartbeat")


async def stop(app: FastAPI) -> None:
    """Stop the heartbeat and remove this instance's row."""
    task: asyncio.Task[Any] | None = getattr(app.state, "instance_task", None)
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    app.state.instance_task = None

    def _withdraw() -> None:
        try:
            with app.state.instance_sessionmaker.begin() as session:
                withdraw(session, instance_id=app.state.instance_id)
        except Exception as exc:  # the row simply ages out
            log.warning("could not withdraw the instance's row: %s", type(exc).__name__)

    await asyncio.to_thread(_withdraw)
