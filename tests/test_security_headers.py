"""Security headers on every response; a relaxed policy only for the API docs; HSTS in production."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import sessionmaker

from app.main import create_app
from app.security import CSP, DOCS_CSP
from app.services.definitions import DefinitionRegistry
from app.settings import Settings


def test_api_responses_carry_the_strict_headers(client: TestClient, counter_headers: dict[str, str]) -> None:
    for res in (client.get("/healthz"), client.get("/api/v1/cases", headers=counter_headers),
                client.get("/api/v1/cases/nope", headers=counter_headers), client.get("/api/v1/cases")):
        h = res.headers
        assert h["content-security-policy"] == CSP
        assert "frame-ancestors 'none'" in CSP and "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "same-origin"
        assert "camera=()" in h["permissions-policy"]
        assert h["cache-control"] == "no-store"
        assert "strict-transport-security" not in h  # only in production


def test_resident_pages_send_no_referrer(client: TestClient) -> None:
    res = client.get("/q/some-token")
    assert res.headers["referrer-policy"] == "no-referrer"
    assert res.headers["cache-control"] in ("no-store", "no-cache") or "no-store" in res.headers["cache-control"]


def test_docs_get_their_own_policy_and_still_load(client: TestClient) -> None:
    res = client.get("/docs")
    assert res.status_code == 200
    assert res.headers["content-security-policy"] == DOCS_CSP
    assert client.get("/openapi.json").headers["content-security-policy"] == CSP


def test_static_files_may_be_cached(client: TestClient, app: Any) -> None:
    paths = [r.path for r in app.routes if getattr(r, "path", "") == "/static"]
    if not paths:
        return
    res = client.get("/static/does-not-exist.css")
    assert res.headers.get("cache-control") != "no-store"
    assert res.headers["x-content-type-options"] == "nosniff"


def test_pdf_keeps_its_own_cache_control_and_gets_the_rest(client: TestClient, counter_headers: dict[str, str],
                                                           model_case_raw: dict[str, Any]) -> None:
    cid = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers).json()["id"]
    res = client.get(f"/api/v1/cases/{cid}/applications/jumin_tennyu.pdf", headers=counter_headers)
    assert res.status_code == 200
    assert res.headers["cache-control"] == "no-store"
    assert res.headers["content-security-policy"] == CSP


def test_production_adds_hsts_and_can_switch_the_docs_off(settings: Settings, registry: DefinitionRegistry,
                                                          connection: Connection) -> None:
    prod = settings.model_copy(update={"env": "production", "api_docs": False})
    application = create_app(prod, definitions=registry)
    application.state.sessionmaker = sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
    with TestClient(application) as c:
        res = c.get("/healthz")
        assert res.headers["strict-transport-security"].startswith("max-age=31536000")
        assert c.get("/docs").status_code == 404
        assert c.get("/redoc").status_code == 404
