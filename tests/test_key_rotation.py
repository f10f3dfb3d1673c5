"""`kakanai keys rotate` beside a running service: never loses a save, refuses while the service does
not use the new key, verifies every row, and leaves no case unreadable.

The live test runs the real service as a separate process (uvicorn, its keys from KAKANAI_ENCRYPTION_KEYS
as in production) on SQLite or, with TEST_DATABASE_URL, PostgreSQL; threads keep saving through the API
while the rotation runs in this process through the CLI entry point.
"""

from __future__ import annotations

import base64
import copy
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, type_coerce
from sqlalchemy.orm import Session

from app import crypto
from app.cli import main
from app.crypto import KeyRing
from app.db import create_postgres_database, drop_postgres_database, make_engine, make_sessionmaker
from app.migrate import migrate
from app.models import Case, JSONType
from app.services import auth, instances, key_rotation
from app.settings import PROJECT_ROOT, Settings, get_settings
from tests.conftest import PASSWORD

SERVER = os.environ.get("TEST_DATABASE_URL", "")
OLD = f"old:{base64.b64encode(os.urandom(32)).decode()}"
NEW = f"new:{base64.b64encode(os.urandom(32)).decode()}"
CASES = 24
SAVERS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """The service as its own process, with the given keys; stopped (SIGTERM, then kill) by `stop`."""

    def __init__(self, url: str, data_dir: Path, keys: str) -> None:
        self.base = f"http://127.0.0.1:{_free_port()}"
        env = {**os.environ, "KAKANAI_ENV": "test", "KAKANAI_DATABASE_URL": url, "KAKANAI_DATA_DIR": str(data_dir),
               "KAKANAI_LOG_LEVEL": "WARNING", "KAKANAI_LIVE_POLL_INTERVAL": "0",
               "KAKANAI_ENCRYPTION_KEYS": keys, "KAKANAI_INSTANCE_HEARTBEAT_SECONDS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", self.base.rsplit(":", 1)[1],
             "--log-level", "warning", "--timeout-graceful-shutdown", "2"],
            cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.proc.stderr.read().decode(errors='replace')[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the service did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    """A fresh migrated database with a counter clerk (PostgreSQL with TEST_DATABASE_URL, else SQLite)."""
    url = create_postgres_database(SERVER) if SERVER else f"sqlite:///{tmp_path / 'rotate.db'}"
    try:
        migrate(Settings(env="test", database_url=url, data_dir=tmp_path))
        engine = make_engine(url)
        with Session(engine) as s:
            auth.create_user(s, username="clerk", password=PASSWORD, role="counter")
            s.commit()
        engine.dispose()
        yield url
    finally:
        if SERVER:
            drop_postgres_database(url)


@pytest.fixture
def keep_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI configures this process's key ring and reads the environment: both restored afterwards."""
    before = crypto.keyring()
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    crypto.configure(before)


def _rotate_cli(monkeypatch: pytest.MonkeyPatch, url: str, data_dir: Path, keys: str) -> int:
    for name, value in (("KAKANAI_ENV", "test"), ("KAKANAI_DATABASE_URL", url), ("KAKANAI_DATA_DIR", str(data_dir)),
                        ("KAKANAI_ENCRYPTION_KEYS", keys), ("KAKANAI_INSTANCE_HEARTBEAT_SECONDS", "1")):
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return main(["keys", "rotate"])


def _raw_answers(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {r.id: r.answers for r in conn.execute(select(Case.id, type_coerce(Case.answers, JSONType).label("answers")))}
    finally:
        engine.dispose()


def _login(base: str) -> dict[str, str]:
    res = httpx.post(f"{base}/api/v1/auth/token", data={"username": "clerk", "password": PASSWORD}, timeout=10)
    assert res.status_code == 200, res.text
    return {"Authorization": f"Bearer {res.json()['access_token']}"}


def _variant(model: dict[str, Any], n: int) -> dict[str, Any]:
    """The model household with save number n in it: a phone number and the first two My Numbers swapped on odd n."""
    doc = copy.deepcopy(model)
    doc["phone"] = f"090-{n // 10000 % 10000:04d}-{n % 10000:04d}"
    if n % 2:
        members = doc["household"]["members"]
        members[0]["my_number"], members[1]["my_number"] = members[1]["my_number"], members[0]["my_number"]
    return doc


class Saver(threading.Thread):
    """Saves its cases again and again through the API; remembers the last save the service acknowledged."""

    def __init__(self, base: str, headers: dict[str, str], cases: dict[str, int], model: dict[str, Any], seed: int):
        super().__init__(daemon=True)
        self.base, self.headers, self.model = base, headers, model
        self.versions = dict(cases)
        self.acked: dict[str, dict[str, Any]] = {}
        self.statuses: list[int] = []
        self.saves = 0
        self.n = seed * 100_000
        self.stop = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                for case_id, version in list(self.versions.items()):
                    self.n += 1
                    doc = _variant(self.model, self.n)
                    try:
                        res = client.put(f"{self.base}/api/v1/cases/{case_id}/answers", headers=self.headers,
                                         json={"version": version, "answers": doc})
                    except httpx.HTTPError as exc:
                        self.errors.append(type(exc).__name__)
                        continue
                    self.statuses.append(res.status_code)
                    if res.status_code == 200:
                        self.versions[case_id] = res.json()["version"]
                        self.acked[case_id] = doc
                        self.saves += 1


def test_rotation_during_concurrent_saves_loses_nothing_and_leaves_every_row_under_the_new_key(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_keyring: None,
    model_case_raw: dict[str, Any], capsys: pytest.CaptureFixture[str],
) -> None:
    url = database
    # 1. Cases saved by a service that only knows the old key.
    old_service = Service(url, tmp_path, OLD)
    try:
        headers = _login(old_service.base)
        created = {}
        for _ in range(CASES):
            res = httpx.post(f"{old_service.base}/api/v1/cases", json=model_case_raw, headers=headers, timeout=30)
            assert res.status_code == 201, res.text
            created[res.json()["id"]] = res.json()["version"]
        # 2. Rotating to a key the running service does not know is refused, and changes nothing.
        before = _raw_answers(url)
        assert _rotate_cli(monkeypatch, url, tmp_path, f"{NEW},{OLD}") == 1
        err = capsys.readouterr().err
        assert "rotation refused" in err and "does not know key new" in err
        assert _raw_answers(url) == before
    finally:
        old_service.stop()
    assert all("enc:v1:old:" in str(doc) and "enc:v1:new:" not in str(doc) for doc in _raw_answers(url).values())

    # 3. The service restarted with the new key first (old after it); clerks keep saving during the rotation.
    service = Service(url, tmp_path, f"{NEW},{OLD}")
    savers: list[Saver] = []
    try:
        headers = _login(service.base)
        # Half of the cases are saved again and again, the other half only the rotation rewrites.
        busy = sorted(created)[::2]
        savers = [Saver(service.base, headers, {c: created[c] for c in busy[i::SAVERS]}, model_case_raw, i + 1)
                  for i in range(SAVERS)]
        for saver in savers:
            saver.start()
        deadline = time.monotonic() + 30
        while sum(s.saves for s in savers) < SAVERS and time.monotonic() < deadline:
            time.sleep(0.02)
        saves_before = sum(s.saves for s in savers)
        assert _rotate_cli(monkeypatch, url, tmp_path, f"{NEW},{OLD}") == 0
        saves_during = sum(s.saves for s in savers) - saves_before
        out = capsys.readouterr().out
        assert f"of {CASES} cases with key new" in out and "verified" in out
        rewritten = int(out.split("re-encrypted ", 1)[1].split(" ", 1)[0])
        assert rewritten >= CASES // 2  # at least the cases nobody saved meanwhile
        print(f"rotation: {out.strip()}; saves during it: {saves_during}")
        time.sleep(0.5)  # a few more saves after the rotation
        for saver in savers:
            saver.stop.set()
        for saver in savers:
            saver.join(timeout=30)
        assert saves_during > 0, "no save overlapped the rotation"
        assert all(not s.errors for s in savers), [s.errors for s in savers]
        statuses = [code for s in savers for code in s.statuses]
        assert statuses and set(statuses) == {200}, sorted(set(statuses))

        # 4. Every acknowledged save is what the service returns now (no 500, nothing older).
        for saver in savers:
            for case_id, doc in saver.acked.items():
                res = httpx.get(f"{service.base}/api/v1/cases/{case_id}", params={"reveal": "all"}, headers=headers,
                                timeout=30)
                assert res.status_code == 200, res.text
                got = res.json()
                assert got["version"] == saver.versions[case_id]
                assert got["answers"]["phone"] == doc["phone"]
                members = [m["my_number"] for m in got["answers"]["household"]["members"]]
                assert members == [m["my_number"] for m in doc["household"]["members"]]
                assert got["answers"]["bank_account"]["account_number"] == doc["bank_account"]["account_number"]
    finally:
        for saver in savers:
            saver.stop.set()
        service.stop()

    # 5. Every stored value is under the new key and decrypts with it alone.
    new_only = KeyRing.parse(NEW)
    raw = _raw_answers(url)
    assert len(raw) == CASES
    for doc in raw.values():
        text_doc = str(doc)
        assert "enc:v1:old:" not in text_doc and text_doc.count("enc:v1:new:") == 5
        assert crypto.stale_values(doc, new_only) == 0
    # The service that shut down withdrew its row: nothing stale blocks the next rotation.
    engine = make_engine(url)
    with Session(engine) as s:
        assert instances.list_running(s, window=instances.live_window(1)) == []
    engine.dispose()


def test_a_save_between_read_and_write_is_kept_and_the_case_re_read(
    database: str, monkeypatch: pytest.MonkeyPatch, keep_keyring: None, model_case_raw: dict[str, Any],
) -> None:
    """The compare-and-set: a save that lands while the rotation re-encrypts a case wins; the rotation
    reads the case again and re-encrypts the saved content (not the content it had read)."""
    import datetime as dt

    from app.services import cases
    from app.services.definitions import DefinitionRegistry

    engine = make_engine(database)
    factory = make_sessionmaker(engine)
    defs = DefinitionRegistry(PROJECT_ROOT / "form_definitions")
    defs.load()
    old_ring, ring = KeyRing.parse(OLD), KeyRing.parse(f"{NEW},{OLD}")
    crypto.configure(old_ring)
    with factory.begin() as s:
        case_id = cases.create_case(s, defs=defs.current, answers=model_case_raw, user=None, office="rot",
                                    today=dt.date(2026, 4, 6)).id
    crypto.configure(ring)  # the service now encrypts with the new key
    real = crypto.reencrypt
    saved = {}

    def save_in_between(answers: Any, r: KeyRing) -> tuple[Any, int]:
        if not saved:  # first attempt: a clerk's save lands after the rotation read the row
            with factory.begin() as s:
                changed = _variant(model_case_raw, 7)
                saved["version"] = cases.update_answers(s, defs=defs.current, case_id=case_id, answers=changed,
                                                        expected_version=1, user=None,
                                                        today=dt.date(2026, 4, 6)).version
                saved["answers"] = changed
        return real(answers, r)

    monkeypatch.setattr(crypto, "reencrypt", save_in_between)
    try:
        report = key_rotation.rotate(factory, ring=ring, window=instances.live_window(1))
        assert report.ok and report.cases == 1
        assert report.retried == 1 and report.rewritten == 0  # the saved content was already under the new key
        with factory() as s:
            case = s.get(Case, case_id)
            assert case is not None and case.version == saved["version"] == 2
            assert case.answers["phone"] == saved["answers"]["phone"]
            assert case.answers["household"]["members"][0]["my_number"] == "234567890121"
        raw = _raw_answers(database)[case_id]
        assert crypto.stale_values(raw, KeyRing.parse(NEW)) == 0
    finally:
        engine.dispose()


def test_rotation_reports_rows_it_cannot_decrypt(database: str, keep_keyring: None,
                                                 model_case_raw: dict[str, Any]) -> None:
    """A row under a key the rotation was not given is reported, not declared rotated."""
    import datetime as dt

    from app.services import cases
    from app.services.definitions import DefinitionRegistry

    engine = make_engine(database)
    factory = make_sessionmaker(engine)
    defs = DefinitionRegistry(PROJECT_ROOT / "form_definitions")
    defs.load()
    crypto.configure(KeyRing.parse(OLD))
    with factory.begin() as s:
        cases.create_case(s, defs=defs.current, answers=model_case_raw, user=None, office="rot", today=dt.date(2026, 4, 6))
    try:
        report = key_rotation.rotate(factory, ring=KeyRing.parse(NEW), window=instances.live_window(1))
        assert not report.ok and len(report.stale) == 1 and report.passes == key_rotation.MAX_PASSES
        with engine.connect() as conn:
            assert "enc:v1:old:" in str(conn.execute(text("SELECT answers FROM cases")).scalar_one())
    finally:
        engine.dispose()


def test_rotation_re_encrypts_every_other_encrypted_column(database: str, keep_keyring: None,
                                                           model_case_raw: dict[str, Any]) -> None:
    """Notice targets, booking e-mails, pre-entry drafts and their kept copies, planned visits: all end
    up under the new key, with their values intact; a value under an unknown key is reported by table."""
    import datetime as dt

    from app.models import Appointment, NoticeSubscription, PlannedVisit, PreEntryDraft, PreEntryOriginal
    from app.services import cases
    from app.services.definitions import DefinitionRegistry

    engine = make_engine(database)
    factory = make_sessionmaker(engine)
    defs = DefinitionRegistry(PROJECT_ROOT / "form_definitions")
    defs.load()
    crypto.configure(KeyRing.parse(OLD))
    start = dt.datetime(2026, 4, 6, 1, 0, tzinfo=dt.UTC)
    with factory.begin() as s:
        case = cases.create_case(s, defs=defs.current, answers=model_case_raw, user=None, office="rot",
                                 today=dt.date(2026, 4, 6))
        s.add(NoticeSubscription(case_id=case.id, channel="email", target="resident@example.test"))
        s.add(Appointment(code="ROT12345", office="rot", day=start.date(), start_at=start,
                          end_at=start + dt.timedelta(minutes=30), email="booker@example.test"))
        s.add(PreEntryDraft(code_hash="c" * 64, token_hash="t" * 64, client_key="k" * 64,
                            answers={"household": {"members": [{"id": "p1", "family_name": "試験"}]}},
                            expires_at=start + dt.timedelta(days=7)))
        s.add(PreEntryOriginal(case_id=case.id, answers={"household": {"members": [{"id": "p1", "given_name": "花子"}]}}))
        s.add(PlannedVisit(office="rot", planned_on=start.date(), source="test", reference="R1",
                           answers={"household": {"members": [{"id": "p1", "my_number": "234567890121"}]}}))
    both = KeyRing.parse(f"{NEW},{OLD}")
    try:
        report = key_rotation.rotate(factory, ring=both, window=instances.live_window(1))
        assert report.ok, report.stale
        with engine.connect() as conn:
            for table, column in (("notice_subscriptions", "target"), ("appointments", "email"),
                                  ("pre_entry_drafts", "answers"), ("pre_entry_originals", "answers"),
                                  ("planned_visits", "answers")):
                stored = str(conn.execute(text(f"SELECT {column} FROM {table}")).scalar_one())
                assert "enc:v1:old:" not in stored and "enc:v1:new:" in stored, table
        crypto.configure(KeyRing.parse(NEW))  # the old key is gone: everything still reads
        with factory() as s:
            assert s.scalars(select(NoticeSubscription.target)).one() == "resident@example.test"
            assert s.scalars(select(Appointment.email)).one() == "booker@example.test"
            assert s.scalars(select(PreEntryDraft.answers)).one()["household"]["members"][0]["family_name"] == "試験"
            assert s.scalars(select(PreEntryOriginal.answers)).one()["household"]["members"][0]["given_name"] == "花子"
            member = s.scalars(select(PlannedVisit.answers)).one()["household"]["members"][0]
            assert member["my_number"] == "234567890121"
        # A value under a key the rotation does not know is reported by its table, not declared rotated.
        crypto.configure(KeyRing.parse(f"other:{base64.b64encode(os.urandom(32)).decode()}"))
        with factory.begin() as s:
            s.add(NoticeSubscription(case_id=case.id, channel="email", target="late@example.test"))
        report = key_rotation.rotate(factory, ring=KeyRing.parse(NEW), window=instances.live_window(1))
        assert [r for r in report.stale if r.startswith("notice_subscriptions:")], report.stale
    finally:
        engine.dispose()
