"""Test fixtures: a migrated database (SQLite, or PostgreSQL with TEST_DATABASE_URL), one rolled-back
transaction per test, the app wired to it, and the model household."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from app.cli import migrate
from app.db import create_postgres_database, drop_postgres_database, make_engine
from app.main import create_app
from app.services import auth
from app.services.definitions import DefinitionRegistry
from app.settings import PROJECT_ROOT, Settings

# The repository keeps its own copy of the benchmark household; nothing outside the tree is read.
MODEL_CASE = PROJECT_ROOT / "bench" / "households" / "model_move_in_family.json"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session", autouse=True)
def test_keyring() -> None:
    """Every test starts from the test settings' key ring, never a key file the default settings would
    create under ./data (the app and the CLI install their own ring when they start)."""
    from app import crypto

    crypto.configure(Settings(env="test").keyring())


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database for this test session."""
    server = os.environ.get("TEST_DATABASE_URL")
    if server:
        url = create_postgres_database(server, prefix="kakanai_test")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    migrate(Settings(env="test", database_url=url, data_dir=tmp_path_factory.mktemp("data")))
    yield url
    if server:
        drop_postgres_database(url)


@pytest.fixture(scope="session")
def is_postgres(database_url: str) -> bool:
    """Whether the suite runs against PostgreSQL."""
    return database_url.startswith("postgresql")


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The engine of the test database."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at the test database and the shipped form definitions."""
    # live_poll_interval=0: no change watcher; requests share the rolled-back test connection.
    # instance_heartbeat_seconds=0: no instance row written beside the test transaction.
    # background_tasks=False: no notice/no-show round beside the test transaction.
    return Settings(env="test", database_url=database_url, data_dir=tmp_path_factory.mktemp("appdata"),
                    definitions_dir=PROJECT_ROOT / "form_definitions", live_poll_interval=0,
                    instance_heartbeat_seconds=0, background_tasks=False)


@pytest.fixture(scope="session")
def registry(settings: Settings) -> DefinitionRegistry:
    """The shipped form definitions, loaded once."""
    reg = DefinitionRegistry(settings.definitions_dir)
    reg.load()
    return reg


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    conn = engine.connect()
    trans = conn.begin()
    yield conn
    trans.rollback()
    conn.close()


@pytest.fixture
def db(connection: Connection) -> Iterator[Session]:
    """A session whose commits become savepoints of the test's transaction."""
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield session
    session.close()


@pytest.fixture
def app(settings: Settings, registry: DefinitionRegistry, connection: Connection) -> FastAPI:
    """The application with every request's session joined to the test transaction."""
    application = create_app(settings, definitions=registry)
    application.state.sessionmaker = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    return application


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """An HTTP client for the app (no network)."""
    with TestClient(app) as c:
        yield c


def make_user(db: Session, name: str, role: str, department: str | None = None) -> None:
    """Create a staff account with the shared test password."""
    auth.create_user(db, username=name, password=PASSWORD, role=role, department_id=department)
    db.commit()


def login(client: TestClient, name: str) -> dict[str, str]:
    """Authorization headers for a user created by make_user."""
    res = client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD})
    assert res.status_code == 200, res.text
    return {"Authorization": f"Bearer {res.json()['access_token']}"}


@pytest.fixture
def counter_headers(client: TestClient, db: Session) -> dict[str, str]:
    """A logged-in counter clerk."""
    make_user(db, "clerk", "counter")
    return login(client, "clerk")


@pytest.fixture(scope="session")
def model_case_raw() -> dict[str, Any]:
    """The benchmark household exactly as the repository keeps it (bench/households/)."""
    return json.loads(MODEL_CASE.read_text(encoding="utf-8"))


@pytest.fixture
def model_case(model_case_raw: dict[str, Any]) -> dict[str, Any]:
    """A copy of the benchmark household a test may modify."""
    return copy.deepcopy(model_case_raw)


def repo_path(*parts: str) -> Path:
    """A path inside the repository."""
    return PROJECT_ROOT.joinpath(*parts)


def page_login(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Log in through the counter's login form like a browser; returns the session's CSRF token."""
    import re

    form = client.get("/login", headers={"Accept": "text/html"})
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    res = client.post("/login", data={"username": name, "password": password, "csrf_token": token, "next": "/counter"},
                      headers={"Accept": "text/html"}, follow_redirects=False)
    assert res.status_code == 303, res.text
    page = client.get("/counter", headers={"Accept": "text/html"})
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def without_comments(doc: dict[str, Any]) -> dict[str, Any]:
    """An answers document as it is stored: its "$comment" annotations are checked, then dropped."""
    out = {k: v for k, v in doc.items() if not k.startswith("$")}
    if isinstance(out.get("survey_baseline"), dict):
        out["survey_baseline"] = {k: v for k, v in out["survey_baseline"].items() if not k.startswith("$")}
    return out
