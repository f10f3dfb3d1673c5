"""`kakanai users disable|enable|unlock|reset-password|revoke|list` and `departments token rotate` on a
real database, checked through what the accounts can then do and through the audit log."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cli import main
from app.db import make_engine
from app.errors import AppError
from app.models import AuditEntry, User, utcnow
from app.services import auth
from app.settings import get_settings

PASSWORD = "a-very-long-password"


@pytest.fixture
def cli_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    monkeypatch.setenv("KAKANAI_DATABASE_URL", url)
    monkeypatch.setenv("KAKANAI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KAKANAI_ENV", "test")
    get_settings.cache_clear()
    assert main(["migrate"]) == 0
    for name, role in (("tanaka", "counter"), ("boss", "admin")):
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        assert main(["users", "create", name, "--role", role, "--password-stdin"]) == 0
    yield url
    get_settings.cache_clear()


def _login(url: str, name: str, password: str = PASSWORD) -> str:
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            user = auth.authenticate(s, username=name, password=password)
            token = auth.issue_token(s, user=user, ttl=dt.timedelta(hours=1))
            s.commit()
            return token
    finally:
        engine.dispose()


def _works(url: str, token: str) -> bool:
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            auth.resolve_token(s, token)
            return True
    except AppError:
        return False
    finally:
        engine.dispose()


def _audit(url: str) -> list[tuple[str, str, str]]:
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            return [(e.actor, e.action, e.target) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))
                    if e.action not in ("login", "login_failed")]
    finally:
        engine.dispose()


def test_users_disable_enable_unlock_reset_revoke(cli_db: str, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    token = _login(cli_db, "tanaka")
    capsys.readouterr()
    assert main(["users", "disable", "tanaka"]) == 0
    assert "disabled tanaka" in capsys.readouterr().out
    assert not _works(cli_db, token)
    with pytest.raises(AppError):
        _login(cli_db, "tanaka")
    main(["users", "list"])
    listing = capsys.readouterr().out
    assert listing.splitlines()[0].startswith("user\trole\tdepartment\tstate\tlocked until\tlast login")
    row = next(line.split("\t") for line in listing.splitlines() if line.startswith("tanaka\t"))
    assert row[3] == "disabled" and row[5] != "-"  # last login (local time) is shown
    assert main(["users", "enable", "tanaka"]) == 0
    token = _login(cli_db, "tanaka")
    assert _works(cli_db, token)

    # Locked after failed logins, unlocked by the CLI.
    engine = make_engine(cli_db)
    with Session(engine) as s:
        s.scalar(select(User).where(User.username == "tanaka")).locked_until = utcnow() + dt.timedelta(minutes=10)  # type: ignore[union-attr]
        s.commit()
    engine.dispose()
    main(["users", "list"])
    assert "tanaka\tcounter\t-\tlocked\t" in capsys.readouterr().out
    assert main(["users", "unlock", "tanaka"]) == 0
    main(["users", "list"])
    assert "tanaka\tcounter\t-\tactive\t-\t" in capsys.readouterr().out

    # A generated password is printed once; a typed one is read from stdin. Either signs everybody out.
    assert main(["users", "reset-password", "tanaka"]) == 0
    generated = capsys.readouterr().out.strip().splitlines()[-1].rsplit(": ", 1)[1]
    assert not _works(cli_db, token) and len(generated) >= 16
    token = _login(cli_db, "tanaka", generated)
    monkeypatch.setattr("sys.stdin", io.StringIO("typed-password-123\n"))
    assert main(["users", "reset-password", "tanaka", "--password-stdin"]) == 0
    assert "typed-password-123" not in capsys.readouterr().out
    assert not _works(cli_db, token)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "reset-password", "tanaka", "--password-stdin"]) == 1
    assert "10文字以上" in capsys.readouterr().err

    token = _login(cli_db, "tanaka", "typed-password-123")
    boss = _login(cli_db, "boss")
    assert main(["users", "revoke", "tanaka"]) == 0
    assert "revoked 1 tokens" in capsys.readouterr().out
    assert not _works(cli_db, token) and _works(cli_db, boss)
    assert main(["users", "revoke", "--all"]) == 0
    assert not _works(cli_db, boss)
    assert main(["users", "revoke"]) == 2
    assert main(["users", "disable", "nobody"]) == 1
    assert "nobody" in capsys.readouterr().err
    assert main(["users", "disable", "boss"]) == 1  # the only administrator
    assert "有効な管理者が他にいない" in capsys.readouterr().err

    actions = [(a, t) for _, a, t in _audit(cli_db)]
    assert [a for a, _ in actions] == ["user_disabled", "user_enabled", "user_unlocked", "password_reset",
                                       "password_reset", "tokens_revoked", "tokens_revoked"]
    assert actions[0][1] == "user:tanaka" and actions[-1][1].startswith("all")
    assert all(actor.startswith("cli") for actor, _, _ in _audit(cli_db))


def test_departments_token_rotate_prints_the_new_token_once(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["departments", "token", "create", "kodomo", "--label", "kodomo-system"]) == 0
    first = capsys.readouterr().out.splitlines()
    old_token = first[-1]
    assert "expires " in first[0]
    assert main(["departments", "token", "rotate", "1", "--grace-hours", "12"]) == 0
    out = capsys.readouterr().out.splitlines()
    new_token = out[-1]
    assert out[0].startswith("token id 2 replaces 1 for department kodomo") and new_token != old_token
    assert _works(cli_db, old_token) and _works(cli_db, new_token)  # inside the grace period
    main(["departments", "token", "list", "kodomo"])
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()[1:]]
    assert [(r[0], r[1], r[-1]) for r in rows] == [("1", "kodomo-system", "active"), ("2", "kodomo-system", "active")]
    expiry_old = dt.datetime.strptime(rows[0][3], "%Y-%m-%d %H:%M")
    expiry_new = dt.datetime.strptime(rows[1][3], "%Y-%m-%d %H:%M")
    assert dt.timedelta(days=364) < expiry_new - expiry_old < dt.timedelta(days=365)
    assert main(["departments", "token", "rotate", "2"]) == 0
    assert not _works(cli_db, new_token)
    assert main(["departments", "token", "rotate", "2"]) == 1
    assert "更新できません" in capsys.readouterr().err
    assert [a for _, a, _ in _audit(cli_db)].count("token_rotated") == 2
