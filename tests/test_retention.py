"""Retention: personal data of old visits is purged, the anonymous record and metrics stay."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cli import main
from app.models import AuditEntry, Case, CaseEvent, QueueTicket, RoutingStep, SatisfactionResponse, utcnow
from app.services import cases, retention
from app.services.definitions import DefinitionRegistry
from tests.conftest import without_comments

NOW = dt.datetime(2026, 8, 1, 3, 0, tzinfo=dt.UTC)


def _visit(db: Session, registry: DefinitionRegistry, answers: dict[str, Any], *, days_ago: int,
           status: str = "closed") -> Case:
    when = NOW - dt.timedelta(days=days_ago)
    case = cases.create_case(db, defs=registry.current, answers=answers, user=None, office="honcho",
                             today=when.date(), now=when, client_date=True)
    case.status = status
    case.closed_at = when + dt.timedelta(hours=2) if status == "closed" else None
    case.signature_png = b"\x89PNG\r\n\x1a\nfake"
    case.signed_at = when + dt.timedelta(minutes=30)
    db.add(SatisfactionResponse(case_id=case.id, score=5, comment="尼崎太郎です。とても早かった", at=when))
    db.add(RoutingStep(case_id=case.id, department_id="kodomo", status="done", note="尼崎花子さんに電話済み",
                       resident_reason="通帳をお持ちください", done_at=when))
    db.add(QueueTicket(case_id=case.id, office="honcho", day=when.date(), number=case.ticket_number, status="done",
                       issued_at=when, finished_at=when + dt.timedelta(hours=1)))
    db.add(CaseEvent(case_id=case.id, kind="departure", at=when + dt.timedelta(hours=2), note="尼崎様 お帰り"))
    db.flush()
    return case


def test_old_visits_lose_personal_data_and_keep_their_figures(
    db: Session, registry: DefinitionRegistry, model_case_raw: dict[str, Any]
) -> None:
    old_closed = _visit(db, registry, model_case_raw, days_ago=120)
    abandoned = _visit(db, registry, model_case_raw, days_ago=95, status="interviewing")
    recent = _visit(db, registry, model_case_raw, days_ago=30)
    db.expire_all()

    dry = retention.purge(db, older_than_days=90, dry_run=True, now=NOW)
    assert set(dry.case_ids) >= {old_closed.id, abandoned.id} and recent.id not in dry.case_ids
    assert db.get(Case, old_closed.id).purged_at is None  # a dry run changes nothing

    report = retention.purge(db, older_than_days=90, now=NOW)
    assert set(report.case_ids) == set(dry.case_ids)
    db.expire_all()
    for cid in (old_closed.id, abandoned.id):
        case = db.get(Case, cid)
        assert case.answers == {"life_events": ["move_in", "childcare"]}
        assert case.signature_png is None and case.purged_at == NOW
        assert case.version == 2  # a stale tablet's save now gets 409 instead of writing the data back
        # Figures stay: timestamps, ticket, events, steps, queue, satisfaction score.
        assert case.signed_at is not None and case.ticket_number >= 1
        kinds = [e.kind for e in db.scalars(select(CaseEvent).where(CaseEvent.case_id == cid).order_by(CaseEvent.id))]
        assert kinds == ["arrival", "interview_started", "departure"]
        assert all(e.note == "" for e in db.scalars(select(CaseEvent).where(CaseEvent.case_id == cid)))
        step = db.scalar(select(RoutingStep).where(RoutingStep.case_id == cid))
        assert (step.status, step.note, step.resident_reason, step.done_at is not None) == ("done", "", "", True)
        assert db.get(QueueTicket, cid).finished_at is not None
        sat = db.get(SatisfactionResponse, cid)
        assert (sat.score, sat.comment) == (5, "")
        purge_log = db.scalars(select(AuditEntry).where(AuditEntry.case_id == cid, AuditEntry.action == "purge")).all()
        assert [(e.actor, e.target) for e in purge_log] == [("retention", "retention 90 days")]
    kept = db.get(Case, recent.id)
    assert kept.purged_at is None and kept.answers == without_comments(model_case_raw)
    assert db.get(SatisfactionResponse, recent.id).comment.startswith("尼崎")
    # Running again purges nothing more.
    assert retention.purge(db, older_than_days=90, now=NOW).count == 0


def test_a_visit_still_active_is_kept_even_if_it_began_long_ago(
    db: Session, registry: DefinitionRegistry, model_case_raw: dict[str, Any]
) -> None:
    case = _visit(db, registry, model_case_raw, days_ago=110, status="interviewing")
    case.updated_at = NOW - dt.timedelta(days=3)
    db.flush()
    assert case.id not in retention.purge(db, older_than_days=90, now=NOW).case_ids
    with pytest.raises(ValueError):
        retention.purge(db, older_than_days=-1, now=NOW)


def test_cli_purges_with_the_configured_period(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str], registry: DefinitionRegistry,
                                               model_case_raw: dict[str, Any]) -> None:
    from app.db import make_engine, make_sessionmaker
    from app.settings import get_settings

    url = f"sqlite:///{tmp_path / 'retention.db'}"
    monkeypatch.setenv("KAKANAI_DATABASE_URL", url)
    monkeypatch.setenv("KAKANAI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KAKANAI_RETENTION_DAYS", "10")
    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 0
        engine = make_engine(url)
        with make_sessionmaker(engine).begin() as session:
            old = utcnow() - dt.timedelta(days=11)
            case = cases.create_case(session, defs=registry.current, answers=model_case_raw, user=None,
                                     office="honcho", today=old.date(), now=old)
            case_id = case.id
        capsys.readouterr()
        assert main(["retention", "purge", "--dry-run"]) == 0
        assert capsys.readouterr().out.startswith("would purge 1 visits")
        assert main(["retention", "purge", "--older-than-days", "30"]) == 0
        assert capsys.readouterr().out.startswith("purged 0 visits")
        assert main(["retention", "purge"]) == 0
        assert capsys.readouterr().out.startswith("purged 1 visits")
        with make_sessionmaker(engine)() as session:
            assert session.get(Case, case_id).answers == {"life_events": ["move_in", "childcare"]}
        engine.dispose()
    finally:
        get_settings.cache_clear()


# --- purged means not recoverable from the database files (issue 13) ---------------------------------

MARKERS = ("消去確認用ビル九八七号室", "消去確認用商事株式会社", "消去確認のための感想です")


def _marked(model: dict[str, Any]) -> dict[str, Any]:
    import copy

    doc = copy.deepcopy(model)
    doc["address"]["building"] = MARKERS[0]
    doc["household"]["members"][0]["employer"] = MARKERS[1]
    return doc


def _old_marked_visit(url: str, registry: DefinitionRegistry, model: dict[str, Any]) -> None:
    from app import crypto
    from app.db import make_engine, make_sessionmaker
    from app.settings import Settings

    crypto.configure(Settings(env="test", database_url=url).keyring())  # what the purge CLI reads with
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as session:
        old = utcnow() - dt.timedelta(days=200)
        case = cases.create_case(session, defs=registry.current, answers=_marked(model), user=None,
                                 office="honcho", today=old.date(), now=old)
        session.add(SatisfactionResponse(case_id=case.id, score=4, comment=MARKERS[2], at=old))
    engine.dispose()


def _purge_with_cli(monkeypatch: pytest.MonkeyPatch, url: str, tmp_path: Path) -> None:
    from app import crypto
    from app.settings import get_settings

    monkeypatch.setenv("KAKANAI_DATABASE_URL", url)
    monkeypatch.setenv("KAKANAI_DATA_DIR", str(tmp_path))
    # The same key ring as the data was written with (env "test"); the CLI installs its own process-wide
    # ring, so the suite's is put back afterwards.
    monkeypatch.setenv("KAKANAI_ENV", "test")
    previous = crypto.keyring()
    get_settings.cache_clear()
    try:
        assert main(["retention", "purge", "--older-than-days", "90"]) == 0
    finally:
        get_settings.cache_clear()
        crypto.configure(previous)


def _found(data: bytes) -> list[str]:
    import json

    forms = {m: (m.encode("utf-8"), m.encode("utf-16-le"), json.dumps(m)[1:-1].encode()) for m in MARKERS}
    return [m for m, encoded in forms.items() if any(e in data for e in encoded)]


def test_sqlite_files_hold_no_purged_string(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           registry: DefinitionRegistry, model_case_raw: dict[str, Any]) -> None:
    from app.cli import migrate
    from app.settings import Settings

    path = tmp_path / "purge.db"
    url = f"sqlite:///{path}"
    migrate(Settings(env="test", database_url=url, data_dir=tmp_path))
    _old_marked_visit(url, registry, model_case_raw)
    files = [path, path.with_name(path.name + "-wal")]
    before = b"".join(f.read_bytes() for f in files if f.exists())
    assert _found(before) == list(MARKERS)  # the scan can see them
    _purge_with_cli(monkeypatch, url, tmp_path)
    after = {f.name: f.read_bytes() for f in files if f.exists()}
    assert {name: _found(data) for name, data in after.items()} == {name: [] for name in after}
    assert len(after[path.name]) > 0


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="PostgreSQL only (TEST_DATABASE_URL)")
def test_postgres_keeps_no_dead_row_version_of_purged_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                           registry: DefinitionRegistry,
                                                           model_case_raw: dict[str, Any]) -> None:
    import sys

    from sqlalchemy import text

    from app.cli import migrate
    from app.db import make_engine
    from app.settings import PROJECT_ROOT, Settings

    sys.path.insert(0, str(PROJECT_ROOT / "scripts" / "faults"))
    import faultlib

    with faultlib.pg_database(os.environ["TEST_DATABASE_URL"]) as url:
        migrate(Settings(env="test", database_url=url, data_dir=tmp_path))
        _old_marked_visit(url, registry, model_case_raw)
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
        _purge_with_cli(monkeypatch, url, tmp_path)
        with engine.begin() as conn:
            conn.execute(text("CHECKPOINT"))
            data_dir = conn.execute(text("SHOW data_directory")).scalar_one()
            relations = []
            for table in ("cases", "case_events", "routing_steps", "satisfaction_responses"):
                relations.append(table)
                toast = conn.execute(text("SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                                     {"t": table}).scalar_one()
                if toast and toast != "-":
                    relations.append(toast)
            for rel in relations:
                pages = conn.execute(text("SELECT pg_relation_size(CAST(:r AS regclass)) / current_setting('block_size')::int"),
                                     {"r": rel}).scalar_one()
                for blkno in range(pages):
                    rows = conn.execute(text(
                        "SELECT lp_flags, t_xmax, t_data FROM heap_page_items(get_raw_page(:r, :b))"),
                        {"r": rel, "b": blkno}).all()
                    dead = [r for r in rows if r.lp_flags == 1 and r.t_xmax not in (None, "0", 0)]
                    assert dead == [], (rel, blkno, len(dead))
                    for r in rows:
                        assert _found(bytes(r.t_data or b"")) == [], (rel, blkno)
                # The relation's files themselves, where the test can read the data directory (root).
                filepath = conn.execute(text("SELECT pg_relation_filepath(CAST(:r AS regclass))"), {"r": rel}).scalar_one()
                target = Path(data_dir) / filepath
                if os.access(target, os.R_OK):
                    for segment in target.parent.glob(target.name + "*"):
                        assert _found(segment.read_bytes()) == [], (rel, segment)
        engine.dispose()
