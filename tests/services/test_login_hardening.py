"""Login answers that leak nothing, look-alike user names, and the per-(address, user name) limit (issue 13)."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import ValidationFailed
from app.models import AuditEntry, User
from app.services import audit, auth
from app.settings import Settings
from tests.conftest import PASSWORD, make_user


def _token(client: TestClient, name: str, password: str, **headers: str) -> Any:
    return client.post("/api/v1/auth/token", data={"username": name, "password": password}, headers=headers)


def test_locked_disabled_and_unknown_accounts_answer_exactly_like_a_wrong_password(client: TestClient,
                                                                                   db: Session) -> None:
    make_user(db, "locked-one", "counter")
    make_user(db, "disabled-one", "counter")
    make_user(db, "plain-one", "counter")
    db.scalar(select(User).where(User.username == "disabled-one")).active = False
    db.scalar(select(User).where(User.username == "locked-one")).locked_until = auth.utcnow() + dt.timedelta(minutes=10)
    db.commit()
    answers = [
        _token(client, "plain-one", "wrong password!"),          # exists, wrong password
        _token(client, "locked-one", PASSWORD),                   # right password, but locked
        _token(client, "disabled-one", PASSWORD),                 # right password, but disabled
        _token(client, "nobody-at-all", PASSWORD),                # does not exist
    ]
    assert {(r.status_code, r.json()["message"], r.json()["error"]) for r in answers} == {
        (401, "ユーザー名またはパスワードが違います", "unauthorized")}
    # The audit log still says why.
    outcomes = {(e.actor, e.outcome) for e in db.scalars(select(AuditEntry).where(AuditEntry.action == "login_failed"))}
    assert {("plain-one", "bad_password"), ("locked-one", "locked"), ("disabled-one", "unknown_user"),
            ("nobody-at-all", "unknown_user")} <= outcomes


@pytest.mark.parametrize("look_alike", ["Tanaka", "TANAKA", "ｔａｎａｋａ", "ＴＡＮＡＫＡ", "tanaKa"])
def test_look_alike_user_names_cannot_be_created(db: Session, look_alike: str) -> None:
    auth.create_user(db, username="tanaka", password=PASSWORD, role="counter")
    with pytest.raises(ValidationFailed) as info:
        auth.create_user(db, username=look_alike, password=PASSWORD, role="counter")
    assert "既に使われています" in info.value.details[0]["message"]


def test_a_look_alike_spelling_logs_into_the_same_account(client: TestClient, db: Session) -> None:
    make_user(db, "suzuki", "counter")
    assert _token(client, "ＳＵＺＵＫＩ", PASSWORD).status_code == 200


def test_one_person_cannot_lock_every_clerk_out_behind_one_address(client: TestClient, db: Session) -> None:
    for name in ("clerk-a", "clerk-b", "clerk-c"):
        make_user(db, name, "counter")
    # Someone at the shared address tries 16 user names, 2 passwords each (over the old limit of 30).
    for i in range(16):
        for j in range(2):
            assert _token(client, f"guess{i}", f"wrong-password-{j}").status_code == 401
    for name in ("clerk-a", "clerk-b", "clerk-c"):
        assert _token(client, name, PASSWORD).status_code == 200, name


def test_failures_per_address_and_user_name_are_limited_and_decay(db: Session) -> None:
    make_user(db, "target", "counter")
    client = audit.Client(ip="192.0.2.7")
    start = auth.utcnow() - dt.timedelta(hours=1)
    now = start
    # The account itself locks after 5; keep it unlocked to look at the address limit alone.
    for _ in range(auth.LOGIN_BURST):
        with pytest.raises(auth.LoginFailed):
            auth.authenticate(db, username="ghost-user", password="x" * 12, now=now, client=client)
    with pytest.raises(auth.TooManyAttempts):
        auth.authenticate(db, username="ghost-user", password="x" * 12, now=now, client=client)
    # A different user name from the same address is not affected.
    assert auth.authenticate(db, username="target", password=PASSWORD, now=now, client=client).username == "target"
    # Look-alike spellings share the bucket.
    with pytest.raises(auth.TooManyAttempts):
        auth.authenticate(db, username="GHOST-USER", password="x" * 12, now=now, client=client)
    # Refused attempts do not keep the block alive: hammering it every 5 seconds for a minute is all
    # refused, and still the budget refills at its own pace and the next attempt is let through.
    for tick in range(12):
        with pytest.raises(auth.TooManyAttempts):
            auth.authenticate(db, username="ghost-user", password="x" * 12,
                              now=start + dt.timedelta(seconds=5 * tick), client=client)
    later = start + auth.LOGIN_LEAK * 2
    with pytest.raises(auth.LoginFailed):  # let through (and wrong): not TooManyAttempts
        auth.authenticate(db, username="ghost-user", password="x" * 12, now=later, client=client)


def test_rotating_x_forwarded_for_from_an_untrusted_peer_does_not_bypass_the_limit(client: TestClient,
                                                                                    db: Session) -> None:
    codes = [_token(client, "rotating", "wrong-password", **{"X-Forwarded-For": f"203.0.113.{i}"}).status_code
             for i in range(auth.LOGIN_BURST + 3)]
    assert codes[: auth.LOGIN_BURST] == [401] * auth.LOGIN_BURST
    assert set(codes[auth.LOGIN_BURST:]) == {429}
    ips = {e.ip for e in db.scalars(select(AuditEntry).where(AuditEntry.actor == "rotating"))}
    assert ips == {"testclient"}


def test_forwarded_addresses_are_believed_only_from_configured_proxies() -> None:
    from app.client_address import client_address

    proxies = Settings(env="test", trusted_proxies="10.0.0.0/8, 192.0.2.1").trusted_proxy_networks()
    assert client_address("10.1.2.3", "198.51.100.9", proxies) == "198.51.100.9"
    assert client_address("192.0.2.1", "198.51.100.9, 10.0.0.4", proxies) == "198.51.100.9"
    # A client cannot prepend its own story: the rightmost untrusted hop is the client.
    assert client_address("10.1.2.3", "1.2.3.4, 198.51.100.9", proxies) == "198.51.100.9"
    assert client_address("198.51.100.9", "1.2.3.4", proxies) == "198.51.100.9"
    assert client_address("10.1.2.3", "garbage", proxies) == "10.1.2.3"
    assert client_address("127.0.0.1", "1.2.3.4", Settings(env="test").trusted_proxy_networks()) == "127.0.0.1"
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        Settings(env="test", trusted_proxies="not-an-address")


def test_kakanai_serve_passes_the_trusted_proxies_to_uvicorn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    from app import cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.setattr(cli, "migrate", lambda settings: None)
    monkeypatch.setattr(cli, "ensure_bootstrap_admin", lambda settings: None)
    args = type("Args", (), {"host": "127.0.0.1", "port": 0, "workers": 1})()
    assert cli.cmd_serve(args, Settings(env="test", data_dir=tmp_path)) == 0
    assert seen["forwarded_allow_ips"] == "" and seen["proxy_headers"] is False
    assert cli.cmd_serve(args, Settings(env="test", data_dir=tmp_path, trusted_proxies="10.0.0.1")) == 0
    assert seen["forwarded_allow_ips"] == "10.0.0.1/32" and seen["proxy_headers"] is True


def test_users_create_refuses_a_department_that_does_not_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main
    from app.settings import get_settings

    monkeypatch.setenv("KAKANAI_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("KAKANAI_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 0
        monkeypatch.setattr("sys.stdin", io.StringIO("a-very-long-password\n"))
        assert main(["users", "create", "k1", "--role", "department", "--department", "kodomoo",
                     "--password-stdin"]) == 1
        assert "課「kodomoo」は departments.yaml にありません" in capsys.readouterr().err
        monkeypatch.setattr("sys.stdin", io.StringIO("a-very-long-password\n"))
        assert main(["users", "create", "k1", "--role", "department", "--department", "kodomo",
                     "--password-stdin"]) == 0
    finally:
        get_settings.cache_clear()
