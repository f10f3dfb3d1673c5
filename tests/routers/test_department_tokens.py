"""Department API tokens expire (a year by default), can be rotated with a grace period and revoked;
an expired or revoked token gets 401 with a Japanese message."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound, ValidationFailed
from app.forms.loader import DefinitionSet
from app.models import AuditEntry, utcnow
from app.services import clock, departments
from app.services.definitions import DefinitionRegistry

STEPS = "/api/v1/departments/kodomo/steps"


@pytest.fixture
def defs(registry: DefinitionRegistry) -> DefinitionSet:
    return registry.current


def _at(moment: dt.datetime) -> Callable[[], dt.datetime]:
    return lambda: moment


def _get(client: TestClient, token: str, moment: dt.datetime | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if moment is None:
        res = client.get(STEPS, headers=headers)
    else:
        with clock.simulated(_at(moment)):
            res = client.get(STEPS, headers=headers)
    return res.status_code, res.json().get("message", "")


def test_tokens_expire_after_a_year_by_default(client: TestClient, db: Session, defs: DefinitionSet) -> None:
    issued = departments.create_token(db, defs=defs, department_id="kodomo", label="kodomo-system")
    db.commit()
    assert issued.expires_at is not None
    lifetime = issued.expires_at - utcnow()
    assert dt.timedelta(days=364) < lifetime <= dt.timedelta(days=365)
    assert _get(client, issued.token)[0] == 200
    assert _get(client, issued.token, issued.expires_at - dt.timedelta(minutes=1))[0] == 200
    status, message = _get(client, issued.token, issued.expires_at + dt.timedelta(seconds=1))
    assert status == 401
    assert message == "トークンの有効期限が切れています。管理者に課のトークンの更新を依頼してください"
    row = departments.list_tokens(db, defs=defs, department_id="kodomo")[-1]
    assert departments.token_state(row) == "active"
    assert departments.token_state(row, now=issued.expires_at) == "expired"
    with pytest.raises(ValidationFailed):
        departments.create_token(db, defs=defs, department_id="kodomo", expires_days=0)


def test_rotation_gives_a_new_token_and_the_old_one_stops_after_the_grace(client: TestClient, db: Session,
                                                                           defs: DefinitionSet) -> None:
    old = departments.create_token(db, defs=defs, department_id="kodomo", label="kodomo-system", expires_days=30)
    new, old_row = departments.rotate_token(db, defs=defs, token_id=old.id, grace_hours=2, by_name="cli:test")
    db.commit()
    assert new.token != old.token and new.department_id == "kodomo"
    assert old_row.revoked_at is None and old_row.expires_at is not None
    now = utcnow()
    assert _get(client, old.token)[0] == 200  # inside the grace period
    assert _get(client, new.token)[0] == 200
    assert _get(client, old.token, now + dt.timedelta(hours=2, minutes=1))[0] == 401
    assert _get(client, new.token, now + dt.timedelta(hours=2, minutes=1))[0] == 200
    # Without a grace the old token stops at once; a stopped token cannot be rotated again.
    newer, _ = departments.rotate_token(db, defs=defs, token_id=new.id, by_name="cli:test")
    db.commit()
    status, message = _get(client, new.token)
    assert status == 401 and message.startswith("このトークンは取り消されています")
    assert _get(client, newer.token)[0] == 200
    with pytest.raises(ValidationFailed):
        departments.rotate_token(db, defs=defs, token_id=new.id)
    with pytest.raises(ValidationFailed):
        departments.rotate_token(db, defs=defs, token_id=newer.id, grace_hours=24 * 31)
    with pytest.raises(NotFound):
        departments.rotate_token(db, defs=defs, token_id=10**9)
    actions = list(db.scalars(select(AuditEntry.action).where(AuditEntry.actor == "cli:test")))
    assert actions.count("token_rotated") == 2 and actions.count("token_created") == 2


def test_revoked_department_token_gets_401(client: TestClient, db: Session, defs: DefinitionSet) -> None:
    issued = departments.create_token(db, defs=defs, department_id="kodomo")
    departments.revoke_token(db, token_id=issued.id, by_name="cli:test")
    db.commit()
    status, message = _get(client, issued.token)
    assert status == 401 and message == "このトークンは取り消されています。管理者に新しい課のトークンの発行を依頼してください"
