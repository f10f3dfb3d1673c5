"""Browser tests: a real uvicorn serving a fresh database, and Debian's headless Chromium via Playwright."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.cli import migrate
from app.db import create_postgres_database, drop_postgres_database, make_engine
from app.main import create_app
from app.services import auth
from app.settings import PROJECT_ROOT, Settings
from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-extensions", "--mute-audio",
]
TABLET = {"width": 1180, "height": 820}
# Set KAKANAI_SCREENSHOTS=docs/screens to refresh the README's screenshots from a test run.
SCREENSHOT_DIR = os.environ.get("KAKANAI_SCREENSHOTS")


@dataclass
class LiveServer:
    """A running server: its base URL, the app inside it, its settings and database engine."""

    url: str
    app: FastAPI
    settings: Settings
    engine: Engine

    def session(self) -> Session:
        """A session on the server's database (commit what you change)."""
        return Session(bind=self.engine, expire_on_commit=False)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(tmp_path_factory: pytest.TempPathFactory, name: str, **overrides: Any) -> Iterator[LiveServer]:
    """uvicorn in a thread on a free port, on its own migrated database (SQLite, or PostgreSQL with
    TEST_DATABASE_URL), with a counter clerk and an admin whose password is the tests' PASSWORD."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    url = create_postgres_database(server_url) if server_url else f"sqlite:///{tmp_path_factory.mktemp(name) / 'live.db'}"
    settings = Settings(database_url=url, data_dir=tmp_path_factory.mktemp(f"{name}-data"),
                        definitions_dir=PROJECT_ROOT / "form_definitions", **{"env": "test", **overrides})
    migrate(settings)
    engine = make_engine(url)
    with Session(bind=engine) as s:
        auth.create_user(s, username="clerk", password=PASSWORD, role="counter", display_name="窓口 職員")
        auth.create_user(s, username="admin", password=PASSWORD, role="admin", display_name="管理者")
        s.commit()
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", app=app, settings=settings, engine=engine)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
        if server_url:
            drop_postgres_database(url)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server for the module's browser tests."""
    with running_server(tmp_path_factory, "live") as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless, with background networking off; never a downloaded browser."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian packages chromium and chromium-driver")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def screenshot(page: object, name: str) -> None:
    """Save a full-page screenshot when KAKANAI_SCREENSHOTS names a directory."""
    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOT_DIR) / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def screenshot_of(page: Any, locator: Any, name: str, *, margin: int = 12) -> None:
    """Save a screenshot of one part of the page (scrolled to the middle, clear of sticky bars)."""
    if SCREENSHOT_DIR:
        locator.evaluate("(e) => e.scrollIntoView({block: 'center'})")
        box = locator.bounding_box()
        clip = {"x": max(box["x"] - margin, 0), "y": max(box["y"] - margin, 0),
                "width": box["width"] + 2 * margin, "height": box["height"] + 2 * margin}
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOT_DIR) / f"{name}.png"), clip=clip)
