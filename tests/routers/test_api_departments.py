"""Department API v1: token scoping, claims and races, needs_resident, data minimisation, paging, CLI tokens."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cli import main
from app.forms.loader import DefinitionSet
from app.models import AuditEntry, utcnow
from app.services import audit, departments
from app.services.definitions import DefinitionRegistry
from tests.conftest import login, make_user


@pytest.fixture
def defs(registry: DefinitionRegistry) -> DefinitionSet:
    return registry.current


def _token(db: Session, defs: DefinitionSet, department: str, **kwargs: Any) -> dict[str, str]:
    issued = departments.create_token(db, defs=defs, department_id=department, **kwargs)
    db.commit()
    return {"Authorization": f"Bearer {issued.token}"}


def _visit(client: TestClient, headers: dict[str, str], answers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    res = client.post("/api/v1/cases", json=answers, headers=headers)
    assert res.status_code == 201, res.text
    slip = client.post(f"/api/v1/cases/{res.json()['id']}/routing-slip", headers=headers)
    assert slip.status_code == 200, slip.text
    return {s["department"]: s for s in slip.json()["steps"]}


@pytest.fixture
def steps(client: TestClient, counter_headers: dict[str, str], model_case_raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return _visit(client, counter_headers, model_case_raw)


def _url(step: dict[str, Any], action: str = "") -> str:
    return f"/api/v1/departments/{step['department']}/steps/{step['id']}" + (f"/{action}" if action else "")


def test_a_department_sees_only_its_own_steps(client: TestClient, db: Session, defs: DefinitionSet,
                                              counter_headers: dict[str, str], steps: dict[str, dict[str, Any]]) -> None:
    kodomo = _token(db, defs, "kodomo")
    own = client.get("/api/v1/departments/kodomo/steps", headers=kodomo)
    assert own.status_code == 200
    assert [s["id"] for s in own.json()["steps"]] == [steps["kodomo"]["id"]]
    # Another department's path: 403, whatever follows it.
    for path in ("/api/v1/departments/shimin/steps", _url(steps["shimin"]), _url(steps["shimin"], "claim"),
                 "/api/v1/departments/shimin/steps/999999"):
        res = client.post(path, headers=kodomo) if path.endswith("claim") else client.get(path, headers=kodomo)
        assert res.status_code == 403, path
        assert "他の課" in res.json()["message"]
    # Another department's step id under one's own path: 404, as if it did not exist.
    other = steps["shimin"]["id"]
    for method, path in (("get", f"/api/v1/departments/kodomo/steps/{other}"),
                         ("post", f"/api/v1/departments/kodomo/steps/{other}/claim"),
                         ("post", f"/api/v1/departments/kodomo/steps/{other}/done"),
                         ("get", f"/api/v1/departments/kodomo/steps/{other}/applications/jumin_tennyu.pdf")):
        res = getattr(client, method)(path, headers=kodomo)
        assert res.status_code == 404, path
        assert res.json()["message"] == "この課の手続きにその番号はありません"
    # Unknown, revoked and expired tokens: 401.
    assert client.get("/api/v1/departments/kodomo/steps", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/v1/departments/kodomo/steps").status_code == 401
    revoked = _token(db, defs, "kodomo", label="old")
    token_id = departments.list_tokens(db, defs=defs, department_id="kodomo")[-1].id
    departments.revoke_token(db, token_id=token_id)
    db.commit()
    assert client.get("/api/v1/departments/kodomo/steps", headers=revoked).status_code == 401
    # Counter staff are not department clerks; an admin may look at every department.
    assert client.get("/api/v1/departments/kodomo/steps", headers=counter_headers).status_code == 403
    make_user(db, "root", "admin")
    admin = login(client, "root")
    assert client.get("/api/v1/departments/shimin/steps", headers=admin).status_code == 200
    assert client.get("/api/v1/departments/nowhere/steps", headers=admin).status_code == 404


def test_a_department_clerk_login_is_scoped_too(client: TestClient, db: Session,
                                                steps: dict[str, dict[str, Any]]) -> None:
    make_user(db, "hoiku_clerk", "department", "hoiku")
    headers = login(client, "hoiku_clerk")
    assert client.get(_url(steps["hoiku"]), headers=headers).status_code == 200
    assert client.get(_url(steps["kenko"]), headers=headers).status_code == 403
    assert client.get(f"/api/v1/departments/hoiku/steps/{steps['kenko']['id']}", headers=headers).status_code == 404


def test_claim_race_prerequisites_and_transitions(client: TestClient, db: Session, defs: DefinitionSet,
                                                  steps: dict[str, dict[str, Any]]) -> None:
    shimin, kodomo = _token(db, defs, "shimin"), _token(db, defs, "kodomo")
    early = client.post(_url(steps["kodomo"], "claim"), headers=kodomo)
    assert early.status_code == 409 and "市民課" in early.json()["message"]
    ready = client.get("/api/v1/departments/kodomo/steps?ready=true", headers=kodomo).json()
    assert ready["steps"] == []

    # Two 市民課 clerks claim with the version they both read: one wins, the other gets 409.
    version = steps["shimin"]["version"]
    first = client.post(_url(steps["shimin"], "claim"), json={"version": version}, headers=shimin)
    second = client.post(_url(steps["shimin"], "claim"), json={"version": version}, headers=_token(db, defs, "shimin"))
    assert first.status_code == 200 and first.json()["status"] == "in_progress"
    assert first.json()["claimed_by"] == "dept-shimin" and first.json()["version"] == version + 1
    assert second.status_code == 409 and second.json()["current_version"] == version + 1
    assert client.post(_url(steps["shimin"], "claim"), headers=shimin).status_code == 409
    done = client.post(_url(steps["shimin"], "done"), headers=shimin)
    assert done.status_code == 200 and done.json()["status"] == "done" and done.json()["done_at"]
    assert client.post(_url(steps["shimin"], "resume"), headers=shimin).status_code == 409

    ready = client.get("/api/v1/departments/kodomo/steps?ready=true&status=pending", headers=kodomo).json()
    assert [s["id"] for s in ready["steps"]] == [steps["kodomo"]["id"]] and ready["steps"][0]["ready"] is True
    assert client.post(_url(steps["kodomo"], "claim"), headers=kodomo).status_code == 200

    bad = client.post(_url(steps["kodomo"], "needs-resident"), json={"reason": " ", "counter": "3"}, headers=kodomo)
    assert bad.status_code == 422
    fields = {e["field"]: e["message"] for e in bad.json()["errors"]}
    assert set(fields) == {"reason", "counter"} and "8" in fields["counter"]
    assert client.post(_url(steps["kodomo"], "needs-resident"), json={}, headers=kodomo).status_code == 422
    needs = client.post(_url(steps["kodomo"], "needs-resident"),
                        json={"reason": "振込先の口座を確認させてください", "counter": "8"}, headers=kodomo)
    assert needs.status_code == 200, needs.text
    assert needs.json()["status"] == "needs_resident" and needs.json()["counter"] == "8"
    assert client.post(_url(steps["kodomo"], "done"), headers=kodomo).status_code == 409
    assert client.post(_url(steps["kodomo"], "resume"), headers=kodomo).json()["status"] == "in_progress"
    assert client.post(_url(steps["kodomo"], "done"), headers=kodomo).json()["status"] == "done"

    actions = [e.target for e in db.scalars(select(AuditEntry).where(AuditEntry.action == audit.STEP_UPDATED))]
    assert f"step:kodomo:{steps['kodomo']['id']}:needs_resident" in actions
    assert f"step:shimin:{steps['shimin']['id']}:claim" in actions


def test_step_detail_shares_only_what_the_applications_need(client: TestClient, db: Session, defs: DefinitionSet,
                                                           steps: dict[str, dict[str, Any]],
                                                           model_case_raw: dict[str, Any]) -> None:
    head = model_case_raw["household"]["members"][0]
    kodomo = client.get(_url(steps["kodomo"]), headers=_token(db, defs, "kodomo")).json()
    assert kodomo["case_number"] and kodomo["ticket_number"] >= 1
    assert kodomo["answers"]["household"]["members"][0]["my_number"] == head["my_number"]
    assert kodomo["answers"]["bank_account"]["account_number"] == model_case_raw["bank_account"]["account_number"]
    assert set(kodomo["unmasked"]) == {"my_number", "account_number"}
    assert "survey_baseline" not in kodomo["answers"]

    gakumu = client.get(_url(steps["gakumu"]), headers=_token(db, defs, "gakumu")).json()
    # 転入学届 prints no My Number: the department gets the household and address, numbers masked.
    assert gakumu["unmasked"] == []
    assert gakumu["answers"]["household"]["members"][0]["my_number"] == "********" + head["my_number"][-4:]
    assert gakumu["answers"]["address"] == model_case_raw["address"]
    assert "bank_account" not in gakumu["answers"]
    fetches = [e for e in db.scalars(select(AuditEntry).where(AuditEntry.action == audit.DEPARTMENT_FETCH))
               if e.case_id == kodomo["case_id"]]
    assert len(fetches) == 2 and any("unmasked=" in e.target for e in fetches)


def test_step_pdfs_only_for_the_steps_own_applications(client: TestClient, db: Session, defs: DefinitionSet,
                                                      steps: dict[str, dict[str, Any]]) -> None:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils not installed")
    headers = _token(db, defs, "kodomo")
    res = client.get(_url(steps["kodomo"], "applications/kodomo_iryo-m4.pdf"), headers=headers)
    assert res.status_code == 200 and res.content.startswith(b"%PDF")
    assert client.get(_url(steps["kodomo"], "applications/jumin_tennyu.pdf"), headers=headers).status_code == 404
    downloads = list(db.scalars(select(AuditEntry).where(AuditEntry.action == audit.PDF_DOWNLOAD)))
    assert any("kodomo_iryo-m4" in e.target for e in downloads)


def test_cursor_and_since_over_the_api(client: TestClient, db: Session, defs: DefinitionSet,
                                       counter_headers: dict[str, str], model_case_raw: dict[str, Any]) -> None:
    visits = [_visit(client, counter_headers, model_case_raw) for _ in range(4)]
    headers = _token(db, defs, "kodomo")
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        query = "limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/api/v1/departments/kodomo/steps?{query}", headers=headers).json()
        seen += [s["id"] for s in page["steps"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == sorted(seen) and sorted(seen) == sorted(v["kodomo"]["id"] for v in visits)
    # こども福祉課 has a hard gate on 市民課 (the 医療証): 市民課 finishing makes its steps ready, so they show up again.
    mark = utcnow() - dt.timedelta(microseconds=1)
    shimin = _token(db, defs, "shimin")
    for v in visits[:1]:
        client.post(_url(v["shimin"], "claim"), headers=shimin)
        client.post(_url(v["shimin"], "done"), headers=shimin)
    since = quote(mark.astimezone(dt.timezone(dt.timedelta(hours=9))).isoformat())
    changed = client.get(f"/api/v1/departments/kodomo/steps?since={since}", headers=headers).json()
    assert [s["id"] for s in changed["steps"]] == [visits[0]["kodomo"]["id"]]
    polled = client.get(f"/api/v1/departments/kodomo/steps?cursor={cursor}", headers=headers).json()
    assert [s["id"] for s in polled["steps"]] == [visits[0]["kodomo"]["id"]]
    bad = client.get("/api/v1/departments/kodomo/steps?cursor=%%%", headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
    assert client.get("/api/v1/departments/kodomo/steps?status=finished", headers=headers).status_code == 422
    assert client.get("/api/v1/departments/kodomo/steps?limit=0", headers=headers).status_code == 422


def test_openapi_documents_the_department_api_in_japanese(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    base = "/api/v1/departments/{department}/steps"
    for path, method in ((base, "get"), (base + "/{step_id}", "get"), (base + "/{step_id}/claim", "post"),
                         (base + "/{step_id}/done", "post"), (base + "/{step_id}/needs-resident", "post"),
                         (base + "/{step_id}/resume", "post"),
                         (base + "/{step_id}/applications/{instance_id}.pdf", "get"),
                         ("/api/v1/cases/{case_id}/routing-slip", "get"), ("/api/v1/cases/{case_id}/close", "post")):
        op = paths[path][method]
        assert any("\u3040" <= ch <= "\u9fff" for ch in op["summary"]), path
        assert "403" in op["responses"] or path.startswith("/api/v1/cases"), path
    listing = paths[base]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listing["$ref"].endswith("DepartmentStepList")


def test_cli_creates_lists_and_revokes_department_tokens(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KAKANAI_DATABASE_URL", f"sqlite:///{tmp_path / 'tokens.db'}")
    monkeypatch.setenv("KAKANAI_DATA_DIR", str(tmp_path))
    from app.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 0
        capsys.readouterr()
        assert main(["departments", "token", "create", "kodomo", "--label", "kodomo-system", "--expires-days", "30"]) == 0
        out = capsys.readouterr().out.splitlines()
        token = out[-1]
        assert out[0].startswith("token id 1 for department kodomo (user dept-kodomo)") and len(token) >= 40
        assert main(["departments", "token", "create", "kodomo"]) == 0
        capsys.readouterr()
        assert main(["departments", "token", "list", "kodomo"]) == 0
        listing = capsys.readouterr().out
        assert "1\tkodomo-system" in listing and "active" in listing and token not in listing
        assert main(["departments", "token", "revoke", "1"]) == 0
        assert "revoked token 1" in capsys.readouterr().out
        main(["departments", "token", "list", "kodomo"])
        rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()[1:]]
        assert [(r[0], r[-1]) for r in rows] == [("1", "revoked"), ("2", "active")]
        assert main(["departments", "token", "create", "nowhere"]) == 1
        assert "departments.yaml にない課です: nowhere" in capsys.readouterr().err
        assert main(["departments", "token", "create", "kodomo", "--expires-days", "0"]) == 1
        assert "有効日数" in capsys.readouterr().err
        assert main(["departments", "token", "revoke", "99"]) == 1
        assert main(["departments", "token", "list", "nowhere"]) == 1
        # The stored token is a hash, never the token itself.
        from sqlalchemy import create_engine, text

        engine = create_engine(f"sqlite:///{tmp_path / 'tokens.db'}")
        with engine.connect() as conn:
            hashes = [row[0] for row in conn.execute(text("SELECT token_hash FROM api_tokens"))]
        engine.dispose()
        assert token not in hashes and all(len(h) == 64 for h in hashes)
    finally:
        get_settings.cache_clear()


def test_each_department_receives_only_the_members_its_forms_concern(
    client: TestClient, db: Session, defs: DefinitionSet, steps: dict[str, dict[str, Any]],
    model_case_raw: dict[str, Any]
) -> None:
    everyone = [m["id"] for m in model_case_raw["household"]["members"]]
    seen: dict[str, list[str]] = {}
    for dep, step in steps.items():
        detail = client.get(_url(step), headers=_token(db, defs, dep)).json()
        seen[dep] = [m["id"] for m in detail["answers"]["household"]["members"]]
    # 転入学 is about the schoolchild (m3) and the parent who files; the toddler (m4) is none of its business.
    assert "m3" in seen["gakumu"] and "m4" not in seen["gakumu"], seen
    # Not every department gets the whole household any more.
    assert any(ids != everyone for ids in seen.values()), seen
    assert all(ids for ids in seen.values()), seen
    print(seen)


def test_ready_filter_follows_hard_gates_and_confirmation(client: TestClient, db: Session, defs: DefinitionSet,
                                                          counter_headers: dict[str, str],
                                                          steps: dict[str, dict[str, Any]]) -> None:
    from app.services import answer_sources

    hoiku, kodomo = _token(db, defs, "hoiku"), _token(db, defs, "kodomo")

    def listed(headers: dict[str, str], department: str, ready: str) -> list[int]:
        res = client.get(f"/api/v1/departments/{department}/steps?status=pending&ready={ready}", headers=headers)
        assert res.status_code == 200, res.text
        return [s["id"] for s in res.json()["steps"]]

    # 保育課 has an ordering hint only: ready at once. こども福祉課 waits for 市民課 (hard gate).
    assert listed(hoiku, "hoiku", "true") == [steps["hoiku"]["id"]]
    assert listed(kodomo, "kodomo", "true") == [] and listed(kodomo, "kodomo", "false") == [steps["kodomo"]["id"]]
    detail = client.get(_url(steps["kodomo"]), headers=kodomo).json()
    assert detail["ready"] is False and detail["waiting_for"] == ["shimin"]
    assert detail["not_ready_reasons"] == ["市民課の完了待ち"]
    # An answer the resident pre-entered and the clerk has not confirmed holds every step.
    answer_sources.record(db, case_id=steps["hoiku"]["case_id"], paths=["phone"], source="resident")
    db.commit()
    assert listed(hoiku, "hoiku", "true") == []
    refused = client.post(_url(steps["hoiku"], "claim"), headers=hoiku)
    assert refused.status_code == 409 and "窓口で確認していない回答" in refused.json()["message"]
    confirmed = client.post(f"/api/v1/cases/{steps['hoiku']['case_id']}/answer-sources/confirm", headers=counter_headers)
    assert confirmed.status_code == 200 and confirmed.json() == {"confirmed": 1}
    assert listed(hoiku, "hoiku", "true") == [steps["hoiku"]["id"]]
    assert client.post(_url(steps["hoiku"], "claim"), headers=hoiku).status_code == 200
