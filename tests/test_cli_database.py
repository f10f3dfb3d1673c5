"""`kakanai serve`, `migrate` and `check` on a wrong or missing database: one clear sentence on standard
error and exit status 1, never a traceback, never the password. Run as a real process, as an operator would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from app.settings import PROJECT_ROOT


def _kakanai(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KAKANAI_")}
    base.update({"KAKANAI_DATA_DIR": str(tmp_path), "KAKANAI_LOG_LEVEL": "WARNING", **env})
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=PROJECT_ROOT, env=base, capture_output=True,
                          text=True, timeout=60, check=False)


def _one_sentence(res: subprocess.CompletedProcess[str], *, status: int = 1) -> str:
    assert res.returncode == status, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", ["migrate", "serve", "check"])
def test_postgres_scheme_is_named_and_the_password_is_not(tmp_path: Path, command: str) -> None:
    res = _kakanai(tmp_path, command, KAKANAI_DATABASE_URL="postgres://kakanai:s3cret-pw@db.city.example:5432/kakanai")
    line = _one_sentence(res)
    assert "postgresql+psycopg://" in line and "postgres://" in line
    assert "s3cret-pw" not in res.stderr + res.stdout


def test_psycopg2_style_url_is_refused_with_the_same_advice(tmp_path: Path) -> None:
    line = _one_sentence(_kakanai(tmp_path, "migrate", KAKANAI_DATABASE_URL="postgresql://u@127.0.0.1/kakanai"))
    assert "postgresql+psycopg://" in line


def test_garbage_url(tmp_path: Path) -> None:
    line = _one_sentence(_kakanai(tmp_path, "migrate", KAKANAI_DATABASE_URL="not a url"))
    assert "URL として読み取れません" in line


@pytest.mark.parametrize("command", ["migrate", "serve", "check"])
def test_server_down(tmp_path: Path, command: str) -> None:
    url = f"postgresql+psycopg://postgres:pw-not-shown@127.0.0.1:{_closed_port()}/kakanai"
    line = _one_sentence(_kakanai(tmp_path, command, KAKANAI_DATABASE_URL=url))
    assert "接続できません" in line and "127.0.0.1" in line
    assert "pw-not-shown" not in line


def test_sqlite_file_that_cannot_be_opened(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = _one_sentence(_kakanai(tmp_path, "migrate", KAKANAI_DATABASE_URL=f"sqlite:///{blocker}/kakanai.db"))
    assert "SQLite のデータベースファイル" in line


def test_database_not_created(tmp_path: Path) -> None:
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        pytest.skip("needs a PostgreSQL server (TEST_DATABASE_URL)")
    name = f"kakanai_missing_{uuid.uuid4().hex[:8]}"
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    for command in ("migrate", "serve", "check"):
        line = _one_sentence(_kakanai(tmp_path, command, KAKANAI_DATABASE_URL=url))
        assert f"データベース {name} がありません" in line and "createdb" in line


def test_check_says_ok_for_a_working_database(tmp_path: Path) -> None:
    res = _kakanai(tmp_path, "check", KAKANAI_DATABASE_URL=f"sqlite:///{tmp_path / 'ok.db'}")
    assert res.returncode == 0, res.stderr
    assert "OK: データベース" in res.stdout


def test_production_without_secrets_is_one_sentence_per_problem(tmp_path: Path) -> None:
    res = _kakanai(tmp_path, "migrate", KAKANAI_ENV="production")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().startswith("設定エラー: KAKANAI_SECRET_KEY")
