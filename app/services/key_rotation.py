"""Re-encrypting stored answers under a new key without losing a save made meanwhile.

`kakanai keys rotate` runs this beside a live service, so it is a job over a session factory (many
short transactions of its own) rather than a request service:

1. Refuse unless every running instance (app.services.instances) encrypts with the new key: an
   instance that did not know it would fail on the re-encrypted cases, and one that still encrypted
   with the old key would keep writing cases the rotation has to chase.
2. Rewrite each case with a compare-and-set on its version
   (`UPDATE cases SET answers = ? WHERE id = ? AND version = ?`), a batch read in one query and written
   in one short transaction (no decryption while it is open): a save that lands between the read and
   the write bumps the version, the rotation's write matches no row, and the case is read again alone.
   The rotation never bumps the version itself (the plaintext is unchanged), so a tablet's next save
   is not refused as stale.
3. Verify that every stored value decrypts with the new key alone before reporting success;
   rows that do not (saved under the old key meanwhile) are rewritten again, a few passes at most.
4. The other encrypted columns (notice targets, booking e-mail addresses, phone pre-entry drafts and
   their copies kept with a visit, imported planned visits) are re-encrypted row by row: a whole-value
   ciphertext is replaced only if it is still the one read (compare-and-set on the ciphertext itself),
   a planned visit's answers under a row lock in a short transaction of their own. Those that do not
   decrypt with the new key afterwards are reported like cases (`table:id`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, select, type_coerce, update
from sqlalchemy.orm import Session, sessionmaker

from app import crypto
from app.errors import AppError
from app.models import (
    Appointment,
    Case,
    JSONType,
    NoticeSubscription,
    PlannedVisit,
    PreEntryDraft,
    PreEntryOriginal,
)
from app.services import instances

MAX_PASSES = 5
MAX_ROW_ATTEMPTS = 50
READ_BATCH = 50  # cases read per query; each is still written in its own transaction
_RAW = type_coerce(Case.answers, JSONType).label("answers")  # the stored JSON, ciphertexts as they are


class RotationRefused(AppError):
    """A running instance would not read (or would not write) the new key."""

    status = 409
    code = "rotation_refused"
    message = "稼働中のサービスが新しい鍵を使っていないため、鍵の切り替えを中止しました"


@dataclass
class RotationReport:
    """What a rotation did: rows rewritten, saves it had to re-read, passes, and what still fails."""

    key_id: str
    cases: int = 0
    rewritten: int = 0
    retried: int = 0
    passes: int = 0
    stale: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every stored value decrypts with the new key alone."""
        return not self.stale


def check_instances(session: Session, *, key_id: str, window: dt.timedelta) -> list[str]:
    """Why the running instances forbid a rotation to `key_id` (empty: none does)."""
    problems = []
    for inst in instances.list_running(session, window=window):
        if key_id not in inst.key_ids:
            problems.append(f"{inst.host} (pid {inst.pid}) does not know key {key_id} "
                            f"(knows {', '.join(inst.key_ids) or 'none'})")
        elif inst.current_key != key_id:
            problems.append(f"{inst.host} (pid {inst.pid}) still encrypts with key {inst.current_key}")
    return problems


def _ids(factory: sessionmaker[Session], batch: int) -> Iterator[str]:
    last = ""
    while True:
        with factory() as session:
            conn = session.connection(execution_options={"sqlite_begin": "DEFERRED"})
            ids = list(conn.scalars(select(Case.id).where(Case.id > last).order_by(Case.id).limit(batch)))
        yield from ids
        if len(ids) < batch:
            return
        last = ids[-1]


def _write(factory: sessionmaker[Session], case_id: str, version: int, answers: Any, ring: crypto.KeyRing,
           report: RotationReport) -> bool | None:
    """Re-encrypt stored answers read at `version` and write them if the case is still at that version.

    True: written (or nothing to do); False: a save overtook the read; None: a value this ring cannot
    decrypt (left as it is, reported by the verification)."""
    try:
        doc, changed = crypto.reencrypt(answers, ring)
    except crypto.KeyError_:
        return None
    if not changed:
        return True
    with factory.begin() as session:
        matched = session.execute(
            update(Case).where(Case.id == case_id, Case.version == version)
            .values({Case.answers: type_coerce(doc, JSONType)})
            .execution_options(synchronize_session=False)
        ).rowcount
    if matched == 1:
        report.rewritten += 1
        return True
    report.retried += 1
    return False


def rewrite_case(factory: sessionmaker[Session], case_id: str, ring: crypto.KeyRing, report: RotationReport) -> None:
    """Re-encrypt one case under the ring's current key, re-reading it while saves overtake the write.

    The read and the compare-and-set write are two short transactions, so no lock is held while the
    values are decrypted and encrypted again; the version check catches any save in between.
    """
    for _ in range(MAX_ROW_ATTEMPTS):
        with factory() as session:
            conn = session.connection(execution_options={"sqlite_begin": "DEFERRED"})
            row = conn.execute(select(Case.version, _RAW).where(Case.id == case_id)).one_or_none()
        if row is None:
            return  # deleted meanwhile
        if _write(factory, case_id, row.version, row.answers, ring, report) is not False:
            return
    raise RuntimeError(f"case {case_id} kept changing during the rotation")


def _rewrite_batch(factory: sessionmaker[Session], ids: list[str], ring: crypto.KeyRing, report: RotationReport) -> None:
    """Read a batch in one query, re-encrypt outside any transaction, then write the batch in one short
    transaction where every UPDATE carries its own version check; overtaken cases go one by one."""
    with factory() as session:
        conn = session.connection(execution_options={"sqlite_begin": "DEFERRED"})
        rows = conn.execute(select(Case.id, Case.version, _RAW).where(Case.id.in_(ids))).all()
    pending = []
    for row in rows:
        try:
            doc, changed = crypto.reencrypt(row.answers, ring)
        except crypto.KeyError_:
            continue  # reported by the verification
        if changed:
            pending.append((row.id, row.version, doc))
    overtaken = []
    with factory.begin() as session:
        for case_id, version, doc in pending:
            matched = session.execute(
                update(Case).where(Case.id == case_id, Case.version == version)
                .values({Case.answers: type_coerce(doc, JSONType)})
                .execution_options(synchronize_session=False)
            ).rowcount
            if matched == 1:
                report.rewritten += 1
            else:
                overtaken.append(case_id)
    report.retried += len(overtaken)
    for case_id in overtaken:
        rewrite_case(factory, case_id, ring, report)


def stale_cases(factory: sessionmaker[Session], ring: crypto.KeyRing, *, batch: int = 200) -> list[str]:
    """Ids of cases holding a value that does not decrypt with the ring's current key alone."""
    stale = []
    last = ""
    while True:
        with factory() as session:
            conn = session.connection(execution_options={"sqlite_begin": "DEFERRED"})
            rows = conn.execute(select(Case.id, _RAW).where(Case.id > last).order_by(Case.id).limit(batch)).all()
        stale += [r.id for r in rows if crypto.stale_values(r.answers, ring)]
        if len(rows) < batch:
            return stale
        last = rows[-1].id


# Columns encrypted as one whole value under one field name: (model, primary key, column, field).
SEALED_COLUMNS = (
    (NoticeSubscription, NoticeSubscription.id, NoticeSubscription.target, "notice_target"),
    (Appointment, Appointment.id, Appointment.email, "notice_target"),
    (PreEntryDraft, PreEntryDraft.id, PreEntryDraft.answers, "pre_entry_answers"),
    (PreEntryOriginal, PreEntryOriginal.case_id, PreEntryOriginal.answers, "pre_entry_original"),
)


def _rotate_sealed(factory: sessionmaker[Session], ring: crypto.KeyRing, report: RotationReport) -> list[str]:
    """Re-encrypt the whole-value columns; returns `table:id` of the values still not under the new key."""
    only = ring.only_current()
    stale: list[str] = []
    for model, pk, column, field_name in SEALED_COLUMNS:
        raw = type_coerce(column, Text)
        with factory() as session:
            conn = session.connection(execution_options={"sqlite_begin": "DEFERRED"})
            rows = conn.execute(select(pk, raw).where(column.is_not(None))).all()
        for key, token in rows:
            try:
                only.decrypt(token, field=field_name)
                continue  # already under the new key
            except crypto.KeyError_:
                pass
            try:
                fresh = ring.encrypt(ring.decrypt(token, field=field_name), field=field_name)
            except crypto.KeyError_:
                stale.append(f"{model.__tablename__}:{key}")
                continue
            with factory.begin() as session:
                # Only if nobody replaced the value meanwhile (a new value is written under the new key).
                report.rewritten += session.execute(
                    update(model).where(pk == key, raw == token).values({column: type_coerce(fresh, Text)})
                    .execution_options(synchronize_session=False)
                ).rowcount
    return stale


def _rotate_planned(factory: sessionmaker[Session], ring: crypto.KeyRing, report: RotationReport) -> list[str]:
    """Re-encrypt imported planned visits' answers (each under a row lock); returns the stale ones."""
    raw = type_coerce(PlannedVisit.answers, JSONType)
    with factory() as session:
        conn = session.connection(execution_options={"sqlite_begin": "DEFERRED"})
        ids = list(conn.scalars(select(PlannedVisit.id)))
    stale: list[str] = []
    for visit_id in ids:
        with factory.begin() as session:
            doc = session.execute(select(raw).where(PlannedVisit.id == visit_id).with_for_update()).scalar_one_or_none()
            if doc is None:
                continue
            try:
                fresh, changed = crypto.reencrypt(doc, ring)
            except crypto.KeyError_:
                stale.append(f"planned_visits:{visit_id}")
                continue
            if changed:
                session.execute(update(PlannedVisit).where(PlannedVisit.id == visit_id)
                                .values({PlannedVisit.answers: type_coerce(fresh, JSONType)})
                                .execution_options(synchronize_session=False))
                report.rewritten += 1
    return stale


def rotate(
    factory: sessionmaker[Session], *, ring: crypto.KeyRing, window: dt.timedelta, batch: int = 200,
    progress: Callable[[RotationReport], None] | None = None,
) -> RotationReport:
    """Re-encrypt every case and every other encrypted column under `ring.current` and verify; raises
    RotationRefused (see the module)."""
    with factory() as session:
        session.connection(execution_options={"sqlite_begin": "DEFERRED"})
        problems = check_instances(session, key_id=ring.current, window=window)
    if problems:
        raise RotationRefused(details=[{"field": "instances", "message": p} for p in problems])
    report = RotationReport(key_id=ring.current)
    todo: Iterator[str] | list[str] = _ids(factory, batch)
    while report.passes < MAX_PASSES:
        report.passes += 1
        chunk: list[str] = []
        for case_id in [*todo, None]:
            if case_id is not None:
                chunk.append(case_id)
            if chunk and (case_id is None or len(chunk) == READ_BATCH):
                _rewrite_batch(factory, chunk, ring, report)
                if report.passes == 1:
                    report.cases += len(chunk)
                    if progress is not None and report.cases % 1000 < len(chunk):
                        progress(report)
                chunk = []
        report.stale = stale_cases(factory, ring, batch=batch)
        if not report.stale:
            break
        todo = list(report.stale)
    report.stale += _rotate_sealed(factory, ring, report) + _rotate_planned(factory, ring, report)
    return report
