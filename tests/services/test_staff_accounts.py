"""Staff account operations: disable / enable, unlock, reset password, revoke tokens and sessions.

Each is checked through what a member of staff then experiences (login, a bearer token, a page session)
and through the audit log."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound, ValidationFailed
from app.models import AuditEntry, User, utcnow
from app.services import auth
from tests.conftest import PASSWORD, login, make_user, page_login


def _user(db: Session, name: str) -> User:
    return auth.get_user_or_raise(db, name)


def _actions(db: Session, target: str) -> list[str]:
    return list(db.scalars(select(AuditEntry.action).where(AuditEntry.target.startswith(target)).order_by(AuditEntry.id)))


def test_disabled_user_cannot_log_in_nor_use_an_existing_token_or_session(client: TestClient, db: Session) -> None:
    make_user(db, "tanaka", "counter")
    headers = login(client, "tanaka")
    page_login(client, "tanaka")
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert client.get("/counter", headers={"Accept": "text/html"}, follow_redirects=False).status_code == 200

    auth.disable_user(db, user=_user(db, "tanaka"), by_name="cli:test")
    db.commit()
    res = client.get("/api/v1/auth/me", headers=headers)
    assert res.status_code == 401 and "取り消されています" in res.json()["message"]
    page = client.get("/counter", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert client.post("/api/v1/auth/token", data={"username": "tanaka", "password": PASSWORD}).status_code == 401
    assert auth.account_state(_user(db, "tanaka")) == "disabled"

    auth.enable_user(db, user=_user(db, "tanaka"), by_name="cli:test")
    db.commit()
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401  # old tokens stay revoked
    fresh = login(client, "tanaka")
    assert client.get("/api/v1/auth/me", headers=fresh).json()["username"] == "tanaka"
    assert _actions(db, "user:tanaka") == ["user_disabled", "user_enabled"]
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "user_disabled"))
    assert entry is not None and entry.actor == "cli:test"


def test_unlock_lifts_the_lock_out(client: TestClient, db: Session) -> None:
    make_user(db, "suzuki", "counter")
    for _ in range(auth.MAX_FAILED_LOGINS):
        client.post("/api/v1/auth/token", data={"username": "suzuki", "password": "wrong-password!"})
    db.expire_all()
    assert auth.account_state(_user(db, "suzuki")) == "locked"
    # (423 today; 401 if locked accounts are made to answer like wrong passwords: either way, no token)
    assert client.post("/api/v1/auth/token", data={"username": "suzuki", "password": PASSWORD}).status_code in (401, 423)
    auth.unlock_user(db, user=_user(db, "suzuki"), by_name="cli:test")
    db.commit()
    assert auth.account_state(_user(db, "suzuki")) == "active"
    assert client.post("/api/v1/auth/token", data={"username": "suzuki", "password": PASSWORD}).status_code == 200
    assert _user(db, "suzuki").last_login_at is not None
    assert "user_unlocked" in _actions(db, "user:suzuki")


def test_reset_password_generates_or_takes_one_and_signs_everybody_out(client: TestClient, db: Session) -> None:
    make_user(db, "sato", "counter")
    headers = login(client, "sato")
    generated = auth.reset_password(db, user=_user(db, "sato"), by_name="cli:test")
    db.commit()
    assert len(generated) >= 16
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    assert client.post("/api/v1/auth/token", data={"username": "sato", "password": PASSWORD}).status_code == 401
    assert client.post("/api/v1/auth/token", data={"username": "sato", "password": generated}).status_code == 200
    assert auth.reset_password(db, user=_user(db, "sato"), password="typed-new-password") == "typed-new-password"
    db.commit()
    assert client.post("/api/v1/auth/token", data={"username": "sato", "password": "typed-new-password"}).status_code == 200
    with pytest.raises(ValidationFailed) as info:
        auth.reset_password(db, user=_user(db, "sato"), password="short")
    assert info.value.details[0]["message"] == "パスワードは10文字以上にしてください"
    assert _actions(db, "user:sato") == ["password_reset", "password_reset"]
    # The new password never reaches the audit log.
    assert not db.scalar(select(AuditEntry.id).where(AuditEntry.target.contains(generated)))


def test_revoke_ends_tokens_and_sessions_of_one_user_or_everybody(client: TestClient, db: Session) -> None:
    make_user(db, "ito", "counter")
    make_user(db, "kato", "counter")
    ito, kato = login(client, "ito"), login(client, "kato")
    tokens, ended = auth.revoke_credentials(db, user=_user(db, "ito"), by_name="cli:test")
    db.commit()
    assert (tokens, ended) == (1, 0)
    assert client.get("/api/v1/auth/me", headers=ito).status_code == 401
    assert client.get("/api/v1/auth/me", headers=kato).status_code == 200
    auth.revoke_all_credentials(db, by_name="cli:test")
    db.commit()
    assert client.get("/api/v1/auth/me", headers=kato).status_code == 401
    assert _actions(db, "all") == ["tokens_revoked"]


def test_the_last_admin_and_oneself_cannot_be_disabled(db: Session) -> None:
    make_user(db, "boss", "admin")
    boss = _user(db, "boss")
    others = db.scalars(select(User).where(User.role == "admin", User.active.is_(True), User.id != boss.id)).all()
    for other in others:  # this test's transaction only: leave boss as the one active admin
        other.active = False
    db.flush()
    with pytest.raises(ValidationFailed) as info:
        auth.disable_user(db, user=boss, by_name="cli:test")
    assert "有効な管理者が他にいない" in info.value.details[0]["message"]
    make_user(db, "boss2", "admin")
    with pytest.raises(ValidationFailed) as info:
        auth.disable_user(db, user=boss, by=boss)
    assert "自分自身" in info.value.details[0]["message"]
    auth.disable_user(db, user=boss, by=_user(db, "boss2"))
    assert not boss.active
    with pytest.raises(NotFound):
        auth.get_user_or_raise(db, "nobody")


def test_expired_api_token_gets_401_in_japanese(client: TestClient, db: Session) -> None:
    make_user(db, "mori", "counter")
    token = auth.issue_token(db, user=_user(db, "mori"), ttl=dt.timedelta(minutes=5))
    db.commit()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    from app.services import clock

    later = utcnow() + dt.timedelta(minutes=6)
    with clock.simulated(lambda: later):
        res = client.get("/api/v1/auth/me", headers=headers)
    assert res.status_code == 401
    assert res.json()["message"] == "トークンの有効期限が切れています。もう一度ログインしてください"
