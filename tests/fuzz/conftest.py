"""The fuzz run's own database and app: a throw-away SQLite file (or PostgreSQL with TEST_DATABASE_URL),
real commits, staff accounts of every role and a few model-household visits to aim the path parameters at."""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI

from app.cli import migrate
from app.db import create_postgres_database, drop_postgres_database, make_engine, make_sessionmaker
from app.main import create_app
from app.services import auth, cases
from app.settings import PROJECT_ROOT, Settings
from tests.conftest import MODEL_CASE

ENABLED = os.environ.get("KAKANAI_FUZZ") == "1"
BUDGET_SECONDS = float(os.environ.get("KAKANAI_FUZZ_SECONDS", "180"))
MAX_EXAMPLES = int(os.environ.get("KAKANAI_FUZZ_EXAMPLES", "25"))


@dataclass
class FuzzRun:
    """What the fuzz tests share: the app, a token per role, real ids, and counters for the report."""

    app: FastAPI
    tokens: dict[str, str]
    case_ids: list[str]
    status_tokens: list[str]
    started: float = field(default_factory=time.monotonic)
    calls: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    operations: set[str] = field(default_factory=set)
    out_of_time: int = 0

    def over_budget(self) -> bool:
        """Whether the run's time budget is spent."""
        return time.monotonic() - self.started > BUDGET_SECONDS


_RUN: list[FuzzRun] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fuzz tests run only when asked (KAKANAI_FUZZ=1, as .ci/run does): the normal suite stays fast."""
    skip = pytest.mark.skip(reason="fuzzing is a separate, time-bounded step: KAKANAI_FUZZ=1 (see .ci/run)")
    for item in items:
        if "tests/fuzz/" in item.nodeid:
            item.add_marker(pytest.mark.fuzz)
            if not ENABLED:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def fuzz_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzRun]:
    """A migrated database with accounts and visits, and the app serving it."""
    server = os.environ.get("TEST_DATABASE_URL")
    url = create_postgres_database(server) if server else f"sqlite:///{tmp_path_factory.mktemp('fuzzdb') / 'fuzz.db'}"
    settings = Settings(env="test", database_url=url, data_dir=tmp_path_factory.mktemp("fuzzdata"),
                        definitions_dir=PROJECT_ROOT / "form_definitions", live_poll_interval=0,
                        live_stream_max_seconds=0.2)  # event streams end at once instead of after minutes
    migrate(settings)
    app = create_app(settings)
    engine = make_engine(url)
    model = json.loads(MODEL_CASE.read_text(encoding="utf-8"))
    tokens: dict[str, str] = {}
    case_ids: list[str] = []
    status_tokens: list[str] = []
    with make_sessionmaker(engine).begin() as session:
        for name, role, dep in (("fz_counter", "counter", None), ("fz_admin", "admin", None),
                                ("fz_kodomo", "department", "kodomo")):
            user = auth.create_user(session, username=name, password="fuzz-password-123", role=role, department_id=dep)
            tokens[role] = auth.issue_token(session, user=user, ttl=None, label="fuzz")
        for _ in range(3):
            case = cases.create_case(session, defs=app.state.definitions.current, answers=copy.deepcopy(model), user=None,
                                     office=settings.office_code, today=__import__("datetime").date.fromisoformat(
                                         model["visit_date"]))
            case_ids.append(case.id)
            status_tokens.append(case.status_token)
    engine.dispose()
    run = FuzzRun(app=app, tokens=tokens, case_ids=case_ids, status_tokens=status_tokens)
    _RUN.append(run)
    yield run
    app.state.engine.dispose()
    if server:
        drop_postgres_database(url)


@pytest.fixture(scope="session")
def fuzz_schema(fuzz_run: FuzzRun) -> Any:
    """The app's OpenAPI document, as schemathesis sees it."""
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_run.app)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Report how many requests the fuzzer sent and what came back."""
    if not _RUN:
        return
    run = _RUN[0]
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(run.by_status.items()))
    terminalreporter.write_line(
        f"fuzz: {run.calls} generated requests over {len(run.operations)} operations in "
        f"{time.monotonic() - run.started:.0f} s (budget {BUDGET_SECONDS:.0f} s, up to {MAX_EXAMPLES} examples each; "
        f"{run.out_of_time} operations cut by the budget); statuses {statuses}")
