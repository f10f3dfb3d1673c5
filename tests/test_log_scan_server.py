"""No personal data in the log of a REAL server process: uvicorn at DEBUG with its access log on, a whole
model-household visit, one forced unexpected error whose message is all personal data, an odd stored
value, and the resident page (its status token must not reach the access log either)."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import PROJECT_ROOT
from tests.test_bad_input import _real_png
from tests.test_log_scan import secrets_of

sys.path.insert(0, str(PROJECT_ROOT / "scripts" / "faults"))
import faultlib


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        yield faultlib.sqlite_url(tmp_path)
        return
    with faultlib.pg_database(server) as url:
        yield url


class _Uvicorn:
    def __init__(self, url: str, workdir: Path, secrets: list[str]):
        self.port = faultlib.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        explode = workdir / "explode.json"
        explode.write_text(json.dumps(secrets, ensure_ascii=False), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAKANAI_")}
        env.update({"KAKANAI_ENV": "test", "KAKANAI_DATABASE_URL": url, "KAKANAI_DATA_DIR": str(workdir),
                    "KAKANAI_LOG_LEVEL": "DEBUG", "KAKANAI_TEST_EXPLODE_FILE": str(explode), "PYTHONUNBUFFERED": "1"})
        # Everything at DEBUG, SQL echo included (what an operator chasing a problem would switch on).
        config = workdir / "logging.json"
        config.write_text(json.dumps({
            "version": 1, "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
            "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
            "root": {"level": "DEBUG", "handlers": ["out"]},
            "loggers": {name: {"level": "DEBUG", "handlers": [], "propagate": True}
                        for name in ("sqlalchemy.engine", "sqlalchemy.pool", "uvicorn", "uvicorn.error",
                                     "uvicorn.access", "uvicorn.asgi", "fastapi", "app")},
        }), encoding="utf-8")
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tests.servers.explode_app:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-config", str(config), "--log-level", "trace", "--access-log",
             "--timeout-graceful-shutdown", "2"],
            cwd=PROJECT_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("uvicorn did not become ready")

    def stop(self) -> str:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _leaks(text: str, secrets: list[str]) -> list[str]:
    found = []
    for secret in secrets:
        pattern = re.escape(secret)
        if secret.isdigit():
            pattern = rf"(?<!\d){pattern}(?!\d)"
        for m in re.finditer(pattern, text):
            found.append(f"{secret!r}: ...{text[max(0, m.start() - 80):m.end() + 40]!r}")
    return found


def test_a_real_server_at_debug_logs_no_personal_data(server_url: str, tmp_path: Path,
                                                      model_case_raw: dict[str, Any]) -> None:
    tokens = faultlib.prepare_database(server_url, tmp_path)
    model = copy.deepcopy(model_case_raw)
    secrets = secrets_of(model)
    server = _Uvicorn(server_url, tmp_path, secrets)
    try:
        server.wait_ready()
        h = {"Authorization": f"Bearer {tokens['counter']}"}
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        with httpx.Client(base_url=server.base, timeout=60) as c:
            created = c.post("/api/v1/cases", json=model, headers=h)
            assert created.status_code == 201, created.text
            cid, status_token = created.json()["id"], created.json()["status_token"]
            full = c.get(f"/api/v1/cases/{cid}?reveal=all", headers=h).json()
            answers = copy.deepcopy(full["answers"])
            answers["household"]["members"][1]["employer"] = "塚口ベーカリー本店"
            assert c.put(f"/api/v1/cases/{cid}/answers", json={"version": full["version"], "answers": answers},
                         headers=h).status_code == 200
            apps = c.get(f"/api/v1/cases/{cid}/applications", headers=h).json()["applications"]
            assert c.put(f"/api/v1/cases/{cid}/signature", content=_real_png(),
                         headers={**h, "Content-Type": "image/png"}).status_code == 204
            for inst in apps:
                assert c.get(f"/api/v1/cases/{cid}/applications/{inst['id']}.pdf", headers=h).status_code == 200
            assert c.get(f"/api/v1/cases/{cid}/bundle.pdf", headers=h).status_code == 200
            assert c.post(f"/api/v1/cases/{cid}/routing-slip", headers=h).status_code in (200, 201)
            assert c.get(f"/api/v1/cases/{cid}/routing-slip.pdf", headers=h).status_code == 200
            assert c.get(f"/q/{status_token}").status_code == 200
            assert c.get(f"/api/v1/status/{status_token}").status_code == 200
            assert c.get("/counter/postal?code=6610012").status_code in (200, 401, 303)
            assert c.get("/dashboard", headers=admin).status_code in (200, 401, 303)
            assert c.get("/api/v1/metrics/visits", headers=admin).status_code == 200
            # A 422 full of personal data (with a birth date 100 years early), a 404, a 409 and a 401.
            broken = copy.deepcopy(model)
            broken["household"]["members"][0]["birth_date"] = "1890-06-15"
            broken["household"]["members"][1]["my_number"] = "123456789019"
            assert c.post("/api/v1/cases", json=broken, headers=h).status_code == 422
            assert c.get("/api/v1/cases/0123456789abcdef0123456789abcdef", headers=h).status_code == 404
            assert c.put(f"/api/v1/cases/{cid}/answers", json={"version": 1, "answers": model},
                         headers=h).status_code == 409
            assert c.post("/api/v1/auth/token", data={"username": "尼崎太郎", "password": "1990-06-15"}).status_code == 401
            # The forced unexpected error: its message is every secret of the household.
            res = c.get("/__explode", headers=h)
            assert res.status_code == 500 and "システムエラー" in res.json()["message"]
    finally:
        log = server.stop()
    assert "unhandled error on GET /__explode: RuntimeError" in log, log[-2000:]
    assert "SELECT" in log and "uvicorn" in log.lower()  # DEBUG really was on (SQL echo, uvicorn's own lines)
    assert _leaks(log, [*secrets, "1890-06-15", "6610012", "尼崎太郎"]) == []
    assert f"/q/{status_token}" not in log and status_token not in log
    assert "/q/***" in log and "/api/v1/status/***" in log  # the access log was on, with tokens redacted
