"""/docs and /redoc are pages over packaged assets (nothing from a CDN), on by default in development
and tests, off in production unless KAKANAI_API_DOCS=true."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Connection
from sqlalchemy.orm import sessionmaker

from app.main import create_app
from app.services.definitions import DefinitionRegistry
from app.settings import Settings

PROD = {"env": "production", "secret_key": SecretStr("s" * 40), "encryption_keys": SecretStr("k1:" + "A" * 43 + "=")}


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(client: TestClient, path: str) -> None:
    res = client.get(path)
    assert res.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', res.text)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    for src in sources:
        asset = client.get(src)
        assert asset.status_code == 200, src
        assert len(asset.content) > 100
    assert "<script>" not in res.text  # no inline script: the policy allows only 'self'
    assert "script-src 'self';" in res.headers["content-security-policy"]


def test_vendored_licences_are_shipped(client: TestClient) -> None:
    for path in ("/static/vendor/swagger-ui/LICENSE", "/static/vendor/redoc/LICENSE"):
        assert client.get(path).status_code == 200


def _app(settings: Settings, registry: DefinitionRegistry, connection: Connection, **update: object) -> TestClient:
    application = create_app(settings.model_copy(update=update), definitions=registry)
    application.state.sessionmaker = sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
    return TestClient(application)


def test_production_has_no_docs_unless_enabled(settings: Settings, registry: DefinitionRegistry,
                                               connection: Connection) -> None:
    with _app(settings, registry, connection, **PROD) as c:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert c.get(path).status_code == 404, path
    with _app(settings, registry, connection, **PROD, api_docs=True) as c:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert c.get(path).status_code == 200, path


def test_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAKANAI_API_DOCS", "true")
    assert Settings(**PROD).docs_enabled is True
    monkeypatch.delenv("KAKANAI_API_DOCS")
    assert Settings(**PROD).docs_enabled is False
    assert Settings(env="development").docs_enabled is True
