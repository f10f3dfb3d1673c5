"""No personal data in the logs: a whole model-household visit runs with every logger at DEBUG (SQL echo
included) and no name, kana, address part, phone, birth date, My Number or account number shows up."""

from __future__ import annotations

import copy
import logging
import re
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

_FORMATTER = logging.Formatter()


def _png() -> bytes:
    raw = b"".join(b"\x00" + bytes([0 if (x * y) % 3 == 0 else 255 for x in range(20)]) for y in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20, 8, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def secrets_of(model: dict[str, Any]) -> list[str]:
    """Every piece of personal data in the model household, as it could appear in a log line."""
    out: set[str] = set()
    for m in model["household"]["members"]:
        for key in ("family_name", "given_name", "family_name_kana", "given_name_kana", "birth_date", "my_number",
                    "employer"):
            if m.get(key):
                out.add(m[key])
        out.add(m["family_name"] + m["given_name"])
        out.add(m["birth_date"].replace("-", ""))
        if m.get("school"):
            out.add(m["school"]["previous_school"])
        for facility in (m.get("childcare") or {}).get("preferred_facilities", []):
            out.add(facility)
    for addr in (model["address"], model["move"]["previous_address"]):
        out |= {addr["postal_code"], addr["postal_code"].replace("-", ""), addr["town"], addr["block"], addr["building"]}
    out |= {model["phone"], model["phone"].replace("-", ""), model["bank_account"]["account_number"],
            model["bank_account"]["holder_kana"]}
    return sorted(out)


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: dict[int, logging.LogRecord] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.records[id(record)] = record


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[_Collector]:
    """Every logger (existing and new, SQLAlchemy's engine and uvicorn's included) at DEBUG into one collector."""
    caplog.set_level(logging.DEBUG)
    collector = _Collector()
    names = ["", "sqlalchemy.engine", "sqlalchemy.engine.Engine", "sqlalchemy.pool", "uvicorn", "uvicorn.access",
             "uvicorn.error", "fastapi", "app", *logging.root.manager.loggerDict]
    saved: list[tuple[logging.Logger, int]] = []
    for name in dict.fromkeys(names):
        logger = logging.getLogger(name)
        if isinstance(logger, logging.Logger):
            saved.append((logger, logger.level))
            logger.setLevel(logging.DEBUG)
            logger.addHandler(collector)  # also on non-propagating loggers (uvicorn.access)
    yield collector
    for logger, level in saved:
        logger.removeHandler(collector)
        logger.setLevel(level)


def _texts(record: logging.LogRecord) -> list[str]:
    out = [str(record.msg)]
    try:
        out.append(record.getMessage())
    except Exception:  # a bad format string is a bug of its own, but show the raw parts
        out.append(repr(record.args))
    out.append(repr(record.args))
    if record.exc_info:
        out.append(_FORMATTER.formatException(record.exc_info))
    if record.exc_text:
        out.append(record.exc_text)
    if record.stack_info:
        out.append(record.stack_info)
    return out


def _leaks(collector: _Collector, secrets: list[str]) -> list[str]:
    found = []
    for record in collector.records.values():
        text = "\n".join(_texts(record))
        for secret in secrets:
            pattern = re.escape(secret)
            if secret.isdigit():
                pattern = rf"(?<!\d){pattern}(?!\d)"
            if re.search(pattern, text):
                found.append(f"{record.name}: {secret!r} in {text[:200]!r}")
    return found


def _paths(app: FastAPI) -> set[str]:
    return {r.path for r in iter_route_contexts(app.routes) if r.path}


def test_a_whole_visit_logs_no_personal_data(all_logs: _Collector, app: FastAPI, client: TestClient,
                                             counter_headers: dict[str, str], model_case_raw: dict[str, Any]) -> None:
    # all_logs comes first: the test connection is opened with the SQL echo already on.
    secrets = secrets_of(model_case_raw)
    assert "123456789018" in secrets and "尼崎" in secrets and "南塚口町" in secrets and "1234567" in secrets
    h = counter_headers
    paths = _paths(app)

    created = client.post("/api/v1/cases", json=model_case_raw, headers=h)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    full = client.get(f"/api/v1/cases/{cid}?reveal=all", headers=h).json()
    answers = copy.deepcopy(full["answers"])
    answers["household"]["members"][1]["employer"] = "塚口ベーカリー本店"
    saved = client.put(f"/api/v1/cases/{cid}/answers", json={"version": full["version"], "answers": answers}, headers=h)
    assert saved.status_code == 200, saved.text
    assert client.get(f"/api/v1/cases/{cid}", headers=h).status_code == 200
    apps = client.get(f"/api/v1/cases/{cid}/applications", headers=h).json()["applications"]
    assert len(apps) >= 5
    assert client.put(f"/api/v1/cases/{cid}/signature", content=_png(),
                      headers={**h, "Content-Type": "image/png"}).status_code == 204
    for inst in apps:
        res = client.get(f"/api/v1/cases/{cid}/applications/{inst['id']}.pdf", headers=h)
        assert res.status_code == 200, inst["id"]
    assert client.get(f"/api/v1/cases/{cid}/bundle.pdf", headers=h).status_code == 200
    assert client.get(f"/api/v1/cases/{cid}/writing-saved", headers=h).status_code == 200
    if "/api/v1/cases/{case_id}/routing-slip" in paths:
        client.post(f"/api/v1/cases/{cid}/routing-slip", headers=h)
        client.get(f"/api/v1/cases/{cid}/routing-slip", headers=h)
        client.get(f"/api/v1/cases/{cid}/routing-slip.pdf", headers=h)

    # Failing requests: a 422 whose document is full of personal data, a 404, a 409 and a 500.
    broken = copy.deepcopy(model_case_raw)
    broken["phone"] = "090-1234-5678-9"
    broken["household"]["members"][0]["my_number"] = "123456789019"
    res = client.post("/api/v1/cases", json=broken, headers=h)
    assert res.status_code == 422
    assert client.get("/api/v1/cases/0123456789abcdef0123456789abcdef", headers=h).status_code == 404
    stale = client.put(f"/api/v1/cases/{cid}/answers", json={"version": 1, "answers": model_case_raw}, headers=h)
    assert stale.status_code == 409

    def explode() -> None:
        raise RuntimeError(" ".join(secrets))  # an exception whose message is all personal data

    app.add_api_route("/__explode", explode)
    with TestClient(app, raise_server_exceptions=False) as quiet:
        assert quiet.get("/__explode", headers=h).status_code == 500

    assert len(all_logs.records) > 20  # the capture works: SQL echo, app and library records were seen
    assert any(r.name.startswith("sqlalchemy.engine") for r in all_logs.records.values())
    assert any("unhandled error" in r.getMessage() for r in all_logs.records.values())
    assert _leaks(all_logs, secrets) == []


def test_the_scan_would_catch_a_leak(all_logs: _Collector, model_case_raw: dict[str, Any]) -> None:
    logging.getLogger("app.test").debug("saved %s", model_case_raw["household"]["members"][0]["my_number"])
    logging.getLogger("app.test").info("moved to %s", model_case_raw["address"]["town"])
    leaks = _leaks(all_logs, secrets_of(model_case_raw))
    assert len(leaks) == 2
