"""Retention: personal data of old visits is purged; events, steps, queue rows and figures stay.

Policy (SECURITY.md): a visit whose last activity (created, updated, closed) is older than the
retention period loses its personal data, whatever its status — a closed visit and an abandoned
one alike. What is removed: the answers document (only `life_events` is kept, a category with no
person in it), the signature images, the satisfaction comment and every free-text note (event
notes, step notes and reasons). What stays: the case row with its ticket and timestamps, every
event (their `data` never holds personal data), routing steps, queue tickets, satisfaction scores
and the audit log, so the visit-time metrics can still be computed.

Purged means not recoverable from the database files: after the purge is committed,
`scrub_storage` checkpoints and truncates SQLite's write-ahead log and VACUUMs the file (with
`secure_delete` on for every connection), or on PostgreSQL rewrites the touched tables with
VACUUM FULL so that no dead row version keeps the old values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, or_, select, update
from sqlalchemy.orm import Session

from app.models import Case, CaseEvent, RoutingStep, SatisfactionResponse, Signature, utcnow
from app.services import audit

ACTOR = "retention"


@dataclass
class PurgeReport:
    """What a purge did (or, with dry_run, would do)."""

    cutoff: dt.datetime
    dry_run: bool
    case_ids: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many visits were purged."""
        return len(self.case_ids)


def due_for_purge(session: Session, *, cutoff: dt.datetime, limit: int | None = None) -> list[Case]:
    """Visits not yet purged whose last activity is before the cutoff."""
    query = (
        select(Case)
        .where(Case.purged_at.is_(None), Case.created_at < cutoff, Case.updated_at < cutoff,
               or_(Case.closed_at.is_(None), Case.closed_at < cutoff))
        .order_by(Case.created_at)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def purge_case(session: Session, case: Case, *, now: dt.datetime, reason: str) -> None:
    """Remove one visit's personal data and audit it; the anonymous record stays."""
    life_events = case.answers.get("life_events") if isinstance(case.answers, dict) else None
    case.answers = {"life_events": list(life_events)} if isinstance(life_events, list) else {}
    case.signature_png = None
    # Each signer's signature image (issue 12); which forms were signed (digests only) stays.
    session.execute(delete(Signature).where(Signature.case_id == case.id).execution_options(synchronize_session=False))
    case.purged_at = now
    # A tablet still holding the old version must not write the data back: its save gets 409.
    case.version = case.version + 1
    # Each signer's signature image is personal data too (the digests of signed forms are not).
    session.execute(update(Signature).where(Signature.case_id == case.id).values(png=None)
                    .execution_options(synchronize_session=False))
    session.execute(update(SatisfactionResponse).where(SatisfactionResponse.case_id == case.id)
                    .values(comment="").execution_options(synchronize_session=False))
    session.execute(update(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.note != "")
                    .values(note="").execution_options(synchronize_session=False))
    session.execute(update(RoutingStep).where(RoutingStep.case_id == case.id)
                    .values(note="", resident_reason="").execution_options(synchronize_session=False))
    audit.record(session, action=audit.PURGE, actor_name=ACTOR, case_id=case.id, target=reason)


def purge(session: Session, *, older_than_days: int, dry_run: bool = False, now: dt.datetime | None = None) -> PurgeReport:
    """Purge every visit whose last activity is more than `older_than_days` days ago."""
    if older_than_days < 0:
        raise ValueError("older_than_days must not be negative")
    now = now or utcnow()
    report = PurgeReport(cutoff=now - dt.timedelta(days=older_than_days), dry_run=dry_run)
    for case in due_for_purge(session, cutoff=report.cutoff):
        report.case_ids.append(case.id)
        if not dry_run:
            purge_case(session, case, now=now, reason=f"retention {older_than_days} days")
    if not dry_run:
        # Planned visits (転入予約) whose household never came hold personal data too.
        from app.services import planned_visits

        planned_visits.purge_stale(session, before=report.cutoff.date())
        # Pre-entry drafts live at most pre_entry_days (7) whatever the retention period.
        from app.services import pre_entry

        pre_entry.purge_expired(session, now=now)
    session.flush()
    return report


# Every table a purge rewrites rows of (and so leaves old row versions in).
PURGED_TABLES = ("cases", "case_events", "routing_steps", "satisfaction_responses", "signatures")


def scrub_storage(engine: Engine) -> None:
    """After a committed purge, leave no copy of the old values in the database files (outside any transaction)."""
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            # The connection runs in autocommit (isolation_level=None, see app/db.py); VACUUM needs that.
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.execute("VACUUM")  # rebuilds the file: no free page keeps an old row
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # and the WAL that VACUUM wrote is emptied
            cursor.close()
        elif engine.dialect.name == "postgresql":
            raw.driver_connection.autocommit = True  # VACUUM cannot run inside a transaction
            cursor = raw.cursor()
            for table in PURGED_TABLES:
                # FULL writes a new file (TOAST included) and drops the old one: plain VACUUM only
                # marks dead row versions reusable, and their bytes can stay in the page.
                cursor.execute(f"VACUUM (FULL) {table}")
            cursor.close()
    finally:
        raw.close()
