"""Running instances publish the key ids they know; the rotation's refusal reads them."""

from __future__ import annotations

import base64
import datetime as dt

from sqlalchemy.orm import Session

from app.crypto import KeyRing
from app.models import ServiceInstance, utcnow
from app.services import instances, key_rotation


def _ring(spec_ids: str) -> KeyRing:
    return KeyRing.parse(",".join(f"{k}:{base64.b64encode(bytes([i]) * 32).decode()}"
                                  for i, k in enumerate(spec_ids.split(","))))


def test_running_instances_and_the_rotation_check(db: Session) -> None:
    now = utcnow()
    window = instances.live_window(30)
    instances.publish(db, instance_id="a", ring=_ring("k2,k1"), now=now)
    instances.publish(db, instance_id="b", ring=_ring("k1"), now=now)
    instances.publish(db, instance_id="gone", ring=_ring("k1"), now=now - dt.timedelta(minutes=5))
    db.flush()
    assert [i.id for i in instances.list_running(db, window=window, now=now)] == ["a", "b"]
    row = db.get(ServiceInstance, "a")
    assert row is not None and row.key_ids == ["k2", "k1"] and row.current_key == "k2"
    problems = key_rotation.check_instances(db, key_id="k2", window=window)
    assert len(problems) == 1 and "does not know key k2 (knows k1)" in problems[0]
    instances.publish(db, instance_id="b", ring=_ring("k1,k2"), now=now)
    db.flush()
    assert "still encrypts with key k1" in key_rotation.check_instances(db, key_id="k2", window=window)[0]
    instances.withdraw(db, instance_id="b")
    db.flush()
    assert key_rotation.check_instances(db, key_id="k2", window=window) == []
    # A row a day without heartbeat is dropped by the next publish.
    instances.publish(db, instance_id="a", ring=_ring("k2,k1"), now=now + dt.timedelta(days=1, minutes=10))
    db.flush()
    assert db.get(ServiceInstance, "gone") is None
