"""In production the login cookies are Secure: a browser on plain http never sends them back, so the
login form could only say 「画面の有効期限が切れています」. Instead the clerk gets a Japanese page saying
to open the service over https; over https (or through a trusted TLS proxy) the same login works."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.services.definitions import DefinitionRegistry
from app.settings import Settings
from tests.conftest import PASSWORD, make_user

PROD = {"env": "production", "secret_key": SecretStr("s" * 40), "encryption_keys": SecretStr("k1:" + "A" * 43 + "=")}


@pytest.fixture
def make_client(settings: Settings, registry: DefinitionRegistry, connection: Connection,
                db: Session) -> Iterator[object]:
    make_user(db, "clerk_https", "counter")
    clients: list[TestClient] = []

    def build(base_url: str, **update: object) -> TestClient:
        application = create_app(settings.model_copy(update={**PROD, **update}), definitions=registry)
        application.state.sessionmaker = sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
        client = TestClient(application, base_url=base_url)
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def _submit(client: TestClient) -> object:
    form = client.get("/login", headers={"Accept": "text/html"})
    assert form.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    return client.post("/login", data={"username": "clerk_https", "password": PASSWORD, "csrf_token": token,
                                       "next": "/counter"}, headers={"Accept": "text/html"}, follow_redirects=False)


def test_production_login_over_http_explains_https(make_client: object) -> None:
    client = make_client("http://madoguchi.city.example")  # type: ignore[operator]
    res = _submit(client)  # httpx, like a browser, keeps a Secure cookie off plain http
    assert res.status_code == 400
    assert "https で開いてください" in res.text
    assert "https://madoguchi.city.example/login" in res.text
    assert "画面の有効期限が切れています" not in res.text
    assert "kakanai_session" not in res.headers.get("set-cookie", "")


def test_the_https_link_is_the_public_base_url_when_set(make_client: object) -> None:
    client = make_client("http://10.0.0.5:8000", public_base_url="https://madoguchi.city.example/")  # type: ignore[operator]
    res = _submit(client)
    assert res.status_code == 400
    assert 'href="https://madoguchi.city.example/login"' in res.text


def test_production_login_over_https_works(make_client: object) -> None:
    client = make_client("https://madoguchi.city.example")  # type: ignore[operator]
    res = _submit(client)
    assert res.status_code == 303
    assert "kakanai_session=" in res.headers["set-cookie"]
    assert "secure" in res.headers["set-cookie"].lower()


def test_a_forged_post_over_https_is_still_a_csrf_failure(make_client: object) -> None:
    client = make_client("https://madoguchi.city.example")  # type: ignore[operator]
    res = client.post("/login", data={"username": "clerk_https", "password": PASSWORD, "csrf_token": "x"},
                      headers={"Accept": "text/html"}, follow_redirects=False)
    assert res.status_code == 403
    assert "https で開いてください" not in res.text


def test_development_over_http_is_unchanged(client: TestClient, db: Session) -> None:
    make_user(db, "clerk_http_dev", "counter")
    res = client.post("/login", data={"username": "clerk_http_dev", "password": PASSWORD, "csrf_token": "x"},
                      headers={"Accept": "text/html"}, follow_redirects=False)
    assert res.status_code == 403
    assert "https で開いてください" not in res.text
