"""Admin API: the audit log of a whole visit, search and export; masking over the API; definitions reload."""

from __future__ import annotations

import csv
import io
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.services.definitions import DefinitionRegistry
from app.settings import PROJECT_ROOT, Settings
from tests.conftest import PASSWORD, login, make_user, without_comments


def png() -> bytes:
    """A tiny valid PNG."""
    raw = b"".join(b"\x00" + bytes([0 if (x + y) % 5 == 0 else 255 for x in range(30)]) for y in range(10))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30, 10, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def admin_headers(client: TestClient, db: Session) -> dict[str, str]:
    """A logged-in administrator."""
    make_user(db, "boss", "admin")
    return login(client, "boss")


def _audit(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    res = client.get("/api/v1/admin/audit", params={"limit": 500, **params}, headers=headers)
    assert res.status_code == 200, res.text
    return res.json()["entries"]


def test_a_whole_visit_is_audited(client: TestClient, counter_headers: dict[str, str], admin_headers: dict[str, str],
                                  model_case_raw: dict[str, Any]) -> None:
    agent = {"User-Agent": "counter-tablet-7"}
    h = {**counter_headers, **agent}
    case = client.post("/api/v1/cases", json=model_case_raw, headers=h).json()
    cid = case["id"]
    assert client.get(f"/api/v1/cases/{cid}", headers=h).status_code == 200
    assert client.get(f"/api/v1/cases/{cid}/applications", headers=h).status_code == 200
    assert client.get(f"/api/v1/cases/{cid}/applications/jumin_tennyu.pdf", headers=h).status_code == 200
    assert client.get(f"/api/v1/cases/{cid}/bundle.pdf", headers=h).status_code == 200
    assert client.put(f"/api/v1/cases/{cid}/signature", content=png(),
                      headers={**h, "Content-Type": "image/png"}).status_code == 204
    got = client.get(f"/api/v1/cases/{cid}", headers=h).json()
    assert client.put(f"/api/v1/cases/{cid}/answers", json={"version": got["version"], "answers": got["answers"]},
                      headers=h).status_code == 200

    entries = _audit(client, admin_headers, case_id=cid)
    actions = [(e["action"], e["target"]) for e in reversed(entries)]
    assert actions == [
        ("case_created", ""), ("case_read", ""), ("case_read", "applications"), ("pdf_download", "jumin_tennyu.pdf"),
        ("pdf_download", "bundle.pdf"), ("signature_saved", ""), ("case_read", ""), ("case_updated", "version 2"),
    ]
    assert {(e["actor"], e["user_agent"], e["outcome"]) for e in entries} == {("clerk", "counter-tablet-7", "ok")}
    assert all(e["ip"] for e in entries)  # the test client's address ("testclient")


def test_failed_and_successful_logins_are_kept(client: TestClient, db: Session, admin_headers: dict[str, str]) -> None:
    make_user(db, "typo", "counter")
    bad = client.post("/api/v1/auth/token", data={"username": "typo", "password": "wrong password!"})
    assert bad.status_code == 401
    ghost = client.post("/api/v1/auth/token", json={"username": "ghost", "password": "whatever123"})
    assert ghost.status_code == 401
    assert client.post("/api/v1/auth/token", data={"username": "typo", "password": PASSWORD}).status_code == 200
    failed = _audit(client, admin_headers, action="login_failed")
    assert {(e["actor"], e["outcome"]) for e in failed} >= {("typo", "bad_password"), ("ghost", "unknown_user")}
    ok = _audit(client, admin_headers, action="login", actor="typo")
    assert len(ok) == 1 and ok[0]["actor_id"] is not None


def test_lockout_attempts_are_audited(client: TestClient, db: Session, admin_headers: dict[str, str]) -> None:
    make_user(db, "forgetful", "counter")
    codes = [client.post("/api/v1/auth/token", data={"username": "forgetful", "password": f"nope{i}xxxxxx"}).status_code
             for i in range(6)]
    assert codes == [401] * 6  # a locked account answers like a wrong password
    outcomes = [e["outcome"] for e in reversed(_audit(client, admin_headers, actor="forgetful"))]
    assert outcomes == ["bad_password"] * 4 + ["locked_now", "locked"]


def test_search_filters_cursor_and_time_window(client: TestClient, counter_headers: dict[str, str],
                                               admin_headers: dict[str, str], model_case_raw: dict[str, Any]) -> None:
    cid = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers).json()["id"]
    for _ in range(4):
        client.get(f"/api/v1/cases/{cid}", headers=counter_headers)
    first = client.get("/api/v1/admin/audit", params={"case_id": cid, "action": "case_read", "limit": 3},
                       headers=admin_headers).json()
    assert len(first["entries"]) == 3 and first["next_cursor"] == first["entries"][-1]["id"]
    rest = client.get("/api/v1/admin/audit", params={"case_id": cid, "action": "case_read", "limit": 3,
                                                     "cursor": first["next_cursor"]}, headers=admin_headers).json()
    assert len(rest["entries"]) == 1 and rest["next_cursor"] is None
    assert _audit(client, admin_headers, case_id=cid, since="2000-01-01T00:00:00", until="2000-01-02T00:00:00") == []
    assert len(_audit(client, admin_headers, case_id=cid, since="2000-01-01T00:00:00+09:00")) == 5
    bad = client.get("/api/v1/admin/audit", params={"since": "yesterday"}, headers=admin_headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "since"


def test_export_is_csv_and_is_itself_audited(client: TestClient, counter_headers: dict[str, str],
                                             admin_headers: dict[str, str], model_case_raw: dict[str, Any]) -> None:
    cid = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers).json()["id"]
    res = client.get("/api/v1/admin/audit.csv", params={"case_id": cid}, headers=admin_headers)
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/csv")
    assert "attachment" in res.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(res.content.decode("utf-8-sig"))))
    assert [(r["action"], r["case_id"]) for r in rows] == [("case_created", cid)]
    exports = _audit(client, admin_headers, action="export")
    assert exports[0]["actor"] == "boss" and exports[0]["target"] == "audit.csv"


def test_only_admins_read_the_log_and_nothing_can_change_it(client: TestClient, app: Any,
                                                           counter_headers: dict[str, str]) -> None:
    assert client.get("/api/v1/admin/audit").status_code == 401
    assert client.get("/api/v1/admin/audit", headers=counter_headers).status_code == 403
    assert client.get("/api/v1/admin/audit.csv", headers=counter_headers).status_code == 403
    audit_routes = [r for r in iter_route_contexts(app.routes) if isinstance(r.original_route, APIRoute)
                    and "audit" in r.path]
    assert {r.path for r in audit_routes} == {"/api/v1/admin/audit", "/api/v1/admin/audit.csv",
                                              "/admin/audit", "/admin/audit.csv"}  # the API and the admin page
    assert {m for r in audit_routes for m in r.methods} == {"GET"}
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)("/api/v1/admin/audit", headers=counter_headers).status_code == 405


# --- masking over the API ---------------------------------------------------------------------------

def test_numbers_are_masked_unless_revealed_and_reveal_is_audited(
    client: TestClient, counter_headers: dict[str, str], admin_headers: dict[str, str], model_case_raw: dict[str, Any]
) -> None:
    created = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers).json()
    assert created["answers"]["household"]["members"][0]["my_number"] == "********9018"
    assert created["answers"]["bank_account"]["account_number"] == "****567"
    cid = created["id"]
    shown = client.get(f"/api/v1/cases/{cid}", params={"reveal": "my_number"}, headers=counter_headers).json()
    assert [m["my_number"] for m in shown["answers"]["household"]["members"]] == [
        m["my_number"] for m in model_case_raw["household"]["members"]]
    assert shown["answers"]["bank_account"]["account_number"] == "****567"
    both = client.get(f"/api/v1/cases/{cid}?reveal=all", headers=admin_headers).json()
    assert both["answers"] == without_comments(model_case_raw)
    bad = client.get(f"/api/v1/cases/{cid}", params={"reveal": "family_name"}, headers=counter_headers)
    assert bad.status_code == 422 and bad.json()["errors"] == [
        {"field": "reveal", "message": "my_number, account_number, all のいずれかを指定してください"}]
    reveals = _audit(client, admin_headers, case_id=cid, action="reveal")
    assert [(e["actor"], e["target"]) for e in reversed(reveals)] == [
        ("clerk", "my_number"), ("boss", "account_number,my_number")]


def test_masked_round_trip_keeps_the_stored_numbers(
    client: TestClient, counter_headers: dict[str, str], model_case_raw: dict[str, Any]
) -> None:
    cid = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers).json()["id"]
    got = client.get(f"/api/v1/cases/{cid}", headers=counter_headers).json()
    answers = got["answers"]
    answers["phone"] = "090-9999-0000"
    res = client.put(f"/api/v1/cases/{cid}/answers", json={"version": got["version"], "answers": answers},
                     headers=counter_headers)
    assert res.status_code == 200, res.text
    full = client.get(f"/api/v1/cases/{cid}?reveal=all", headers=counter_headers).json()["answers"]
    assert full["phone"] == "090-9999-0000"
    assert full["household"] == model_case_raw["household"]
    assert full["bank_account"]["account_number"] == "1234567"
    # A mask that is not the stored number's mask is refused with a field message, nothing changes.
    answers["household"]["members"][0]["my_number"] = "********0000"
    res = client.put(f"/api/v1/cases/{cid}/answers", json={"version": got["version"] + 1, "answers": answers},
                     headers=counter_headers)
    assert res.status_code == 422
    assert res.json()["errors"][0]["field"] == "household.members[0].my_number"
    again = client.get(f"/api/v1/cases/{cid}?reveal=my_number", headers=counter_headers).json()
    assert again["version"] == got["version"] + 1
    assert again["answers"]["household"]["members"][0]["my_number"] == "123456789018"


# --- definitions reload -----------------------------------------------------------------------------

@pytest.fixture
def defs_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped form definitions that a test may break."""
    target = tmp_path / "form_definitions"
    shutil.copytree(PROJECT_ROOT / "form_definitions", target)
    return target


@pytest.fixture
def reload_client(settings: Settings, defs_dir: Path, connection: Connection) -> Iterator[TestClient]:
    """An app serving the private definitions copy, on the test transaction."""
    registry = DefinitionRegistry(defs_dir)
    registry.load()
    application = create_app(settings.model_copy(update={"definitions_dir": defs_dir}), definitions=registry)
    application.state.sessionmaker = sessionmaker(bind=connection, join_transaction_mode="create_savepoint",
                                                  expire_on_commit=False)
    with TestClient(application) as c:
        yield c


def test_broken_definitions_are_refused_and_the_last_good_set_stays(
    reload_client: TestClient, db: Session, defs_dir: Path, model_case_raw: dict[str, Any]
) -> None:
    make_user(db, "clerk2", "counter")
    make_user(db, "boss2", "admin")
    clerk, boss = login(reload_client, "clerk2"), login(reload_client, "boss2")
    cid = reload_client.post("/api/v1/cases", json=model_case_raw, headers=clerk).json()["id"]
    before = reload_client.get(f"/api/v1/cases/{cid}/applications", headers=clerk).json()

    target = defs_dir / "applications" / "jido_teate.yaml"
    good = target.read_text(encoding="utf-8")
    lines = good.splitlines()
    line_no = next(i for i, line in enumerate(lines, 1) if line.startswith("department: kodomo"))
    target.write_text(good.replace("department: kodomo", "department: nowhere"), encoding="utf-8")
    assert reload_client.post("/api/v1/admin/definitions/reload", headers=clerk).status_code == 403
    res = reload_client.post("/api/v1/admin/definitions/reload", headers=boss)
    assert res.status_code == 422
    body = res.json()
    assert body["error"] == "definitions_invalid"
    report = body["report"].splitlines()
    assert any(r.startswith(f"applications/jido_teate.yaml:{line_no}: department: ") for r in report), report
    assert len(body["errors"]) == len(report)
    # The service still uses the last good set.
    after = reload_client.get(f"/api/v1/cases/{cid}/applications", headers=clerk)
    assert after.status_code == 200 and after.json() == before
    pdf = reload_client.get(f"/api/v1/cases/{cid}/applications/jido_teate.pdf", headers=clerk)
    assert pdf.status_code == 200

    target.write_text(good.replace("title: 児童手当 認定請求書", "title: 児童手当 認定請求書（新様式）"), encoding="utf-8")
    res = reload_client.post("/api/v1/admin/definitions/reload", headers=boss)
    assert res.status_code == 200, res.text
    assert res.json()["fingerprint"] != before["definitions_fingerprint"]
    titles = {a["id"]: a["title"] for a in
              reload_client.get(f"/api/v1/cases/{cid}/applications", headers=clerk).json()["applications"]}
    assert titles["jido_teate"] == "児童手当 認定請求書（新様式）"
    log = reload_client.get("/api/v1/admin/audit", params={"action": "definitions_reload"}, headers=boss).json()
    assert [e["outcome"] for e in reversed(log["entries"])] == ["rejected", "ok"]
