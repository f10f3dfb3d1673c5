"""The audit log service: append, search, export; and no code path that changes or deletes entries."""

from __future__ import annotations

import ast
import csv
import datetime as dt
import io
import re
from pathlib import Path

from sqlalchemy.orm import Session

from app.models import AuditEntry, User
from app.services import audit
from app.settings import PROJECT_ROOT
from tests.conftest import make_user

APP = PROJECT_ROOT / "app"


def _user(db: Session, name: str, role: str = "counter") -> User:
    make_user(db, name, role)
    return db.query(User).filter_by(username=name).one()


def test_record_and_search_by_every_filter(db: Session) -> None:
    clerk = _user(db, "audit_clerk")
    t0 = dt.datetime(2026, 4, 6, 0, 0, tzinfo=dt.UTC)
    client = audit.Client(ip="192.0.2.10", user_agent="tablet/1.0")
    for i, action in enumerate([audit.CASE_READ, audit.PDF_DOWNLOAD, audit.CASE_READ]):
        entry = audit.record(db, action=action, actor=clerk, case_id=f"case{i % 2}", target="x" * 300, client=client)
        entry.at = t0 + dt.timedelta(minutes=i)  # set before the first flush: inserted once, never updated
    audit.record(db, action=audit.LOGIN_FAILED, actor_name="nobody", outcome="unknown_user")
    db.flush()

    mine = audit.search(db, flt=audit.AuditFilter(actor="audit_clerk"))
    assert [e.action for e in mine] == [audit.CASE_READ, audit.PDF_DOWNLOAD, audit.CASE_READ]  # newest first
    assert mine[0].ip == "192.0.2.10" and mine[0].user_agent == "tablet/1.0" and mine[0].actor_id == clerk.id
    assert len(mine[0].target) == 200
    assert len(audit.search(db, flt=audit.AuditFilter(actor="audit_clerk", action=audit.CASE_READ))) == 2
    assert {e.case_id for e in audit.search(db, flt=audit.AuditFilter(case_id="case1"))} == {"case1"}
    window = audit.AuditFilter(actor="audit_clerk", since=t0 + dt.timedelta(minutes=1),
                               until=t0 + dt.timedelta(minutes=2))
    assert [e.action for e in audit.search(db, flt=window)] == [audit.PDF_DOWNLOAD]
    failed = audit.search(db, flt=audit.AuditFilter(action=audit.LOGIN_FAILED, actor="nobody"))
    assert failed[0].actor_id is None and failed[0].outcome == "unknown_user"


def test_cursor_pages_through_everything_once(db: Session) -> None:
    for i in range(7):
        audit.record(db, action=audit.CASE_READ, actor_name="pager", case_id=f"p{i}")
    db.flush()
    flt = audit.AuditFilter(actor="pager")
    seen: list[str | None] = []
    cursor = None
    while True:
        page = audit.search(db, flt=flt, cursor=cursor, limit=3)
        seen += [e.case_id for e in page]
        if len(page) < 3:
            break
        cursor = page[-1].id
    assert seen == [f"p{i}" for i in reversed(range(7))]


def test_export_is_csv_with_bom_and_defused_formulas(db: Session) -> None:
    audit.record(db, action=audit.LOGIN_FAILED, actor_name="=HYPERLINK(\"http://x\")",
                 client=audit.Client(ip="198.51.100.1", user_agent="+cmd|' /C calc'!A0"))
    audit.record(db, action=audit.LOGIN_FAILED, actor_name="plain", client=audit.Client(ip="198.51.100.1"))
    db.flush()
    text = audit.export_csv(db, flt=audit.AuditFilter(action=audit.LOGIN_FAILED))
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert [r["actor"] for r in rows][-2:] == ["'=HYPERLINK(\"http://x\")", "plain"]
    assert rows[-2]["user_agent"].startswith("'+cmd")
    assert list(rows[0].keys()) == list(audit.CSV_COLUMNS)


def test_iter_entries_reads_in_batches(db: Session) -> None:
    for i in range(5):
        audit.record(db, action=audit.EXPORT, actor_name="batcher", target=str(i))
    db.flush()
    got = [e.target for e in audit.iter_entries(db, flt=audit.AuditFilter(actor="batcher"), batch=2)]
    assert got == ["0", "1", "2", "3", "4"]


# --- append-only -----------------------------------------------------------------------------------

def _sources() -> list[Path]:
    return sorted(APP.rglob("*.py"))


def test_no_code_in_app_updates_or_deletes_audit_entries() -> None:
    forbidden = [
        re.compile(r"\b(update|delete)\(\s*AuditEntry\b"),
        re.compile(r"\b(UPDATE|DELETE\s+FROM|TRUNCATE)\s+\"?audit_log\b", re.IGNORECASE),
        re.compile(r"AuditEntry\.__table__\.(update|delete)"),
    ]
    offenders = [f"{p.relative_to(PROJECT_ROOT)}: {rx.pattern}" for p in _sources()
                 for rx in forbidden if rx.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
    # Only the model and the audit service touch AuditEntry: everyone else goes through audit.record().
    users = {str(p.relative_to(APP)) for p in _sources() if re.search(r"\bAuditEntry\b", p.read_text(encoding="utf-8"))}
    assert users <= {"models.py", "services/audit.py"}, users


def test_audit_service_only_inserts_and_reads() -> None:
    source = (APP / "services" / "audit.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert not {f for f in functions if re.search(r"update|delete|remove|edit|purge|truncate", f)}
    called = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
              for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not called & {"update", "delete", "merge", "execute"}, called
    # Nothing assigns to an entry's attributes after it was built.
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Attribute) for t in n.targets)]
    assert {"record", "search", "iter_entries", "export_csv"} <= functions
    assert AuditEntry.__tablename__ == "audit_log"
