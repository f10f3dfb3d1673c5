"""Health probes."""

from fastapi.testclient import TestClient


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    res = client.get("/readyz")
    assert res.status_code == 200
    assert res.json()["checks"] == {"database": "ok", "definitions": "ok"}


def test_openapi_documents_the_case_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/auth/token", "/api/v1/cases", "/api/v1/cases/{case_id}", "/api/v1/cases/{case_id}/answers"} <= set(paths)
