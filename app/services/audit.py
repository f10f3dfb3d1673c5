"""The audit log: who read or changed which case's personal data, downloaded which PDF, signed in.

Append-only from the application's point of view: this module only inserts and reads. There is no
update or delete function anywhere in app/ (tests/services/test_audit.py checks the source).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.models import AuditEntry, User

# Actions written to the log (AuditEntry.action).
LOGIN = "login"
LOGIN_FAILED = "login_failed"
LOGOUT = "logout"
CASE_READ = "case_read"
CASE_CREATED = "case_created"
CASE_UPDATED = "case_updated"
PDF_DOWNLOAD = "pdf_download"
SIGNATURE_SAVED = "signature_saved"
DEPARTMENT_FETCH = "department_fetch"
STEP_UPDATED = "step_updated"
EXPORT = "export"
PURGE = "purge"
# A caller asked to see My Numbers / account numbers unmasked (target names which).
REVEAL = "reveal"
DEFINITIONS_RELOAD = "definitions_reload"
# A change to the answers altered what a signed form prints: that form's signature no longer counts.
SIGNATURE_VOIDED = "signature_voided"
# マイナンバーカード read-in and 転入予約 import (issue 16).
CARD_PAIRING = "card_pairing"
CARD_READING = "card_reading"
CARD_PAIRING_FAILED = "card_pairing_failed"
PLANNED_IMPORT = "planned_import"

# Operations on staff accounts and tokens (target names the account or token, actor who did it).
USER_DISABLED = "user_disabled"
USER_ENABLED = "user_enabled"
USER_UNLOCKED = "user_unlocked"
PASSWORD_RESET = "password_reset"  # noqa: S105 - an action name, not a password
TOKENS_REVOKED = "tokens_revoked"
TOKEN_CREATED = "token_created"  # noqa: S105
TOKEN_REVOKED = "token_revoked"  # noqa: S105
TOKEN_ROTATED = "token_rotated"  # noqa: S105
KEYS_ROTATED = "keys_rotated"

ACTIONS = (LOGIN, LOGIN_FAILED, LOGOUT, CASE_READ, CASE_CREATED, CASE_UPDATED, PDF_DOWNLOAD, SIGNATURE_SAVED,
           DEPARTMENT_FETCH, STEP_UPDATED, EXPORT, PURGE, REVEAL, DEFINITIONS_RELOAD, USER_DISABLED, USER_ENABLED,
           USER_UNLOCKED, PASSWORD_RESET, TOKENS_REVOKED, TOKEN_CREATED, TOKEN_REVOKED, TOKEN_ROTATED, KEYS_ROTATED,
           CARD_PAIRING, CARD_READING, CARD_PAIRING_FAILED, PLANNED_IMPORT, SIGNATURE_VOIDED)
# What the administrators' audit page calls each action.
ACTION_LABELS = {
    LOGIN: "ログイン", LOGIN_FAILED: "ログイン失敗", LOGOUT: "ログアウト", CASE_READ: "案件の閲覧",
    CASE_CREATED: "案件の作成", CASE_UPDATED: "案件の更新", PDF_DOWNLOAD: "PDFの取得", SIGNATURE_SAVED: "署名の保存",
    DEPARTMENT_FETCH: "課による取得", STEP_UPDATED: "手続きの更新", EXPORT: "書き出し", PURGE: "保存期間経過の削除",
    REVEAL: "番号の表示", DEFINITIONS_RELOAD: "様式定義の再読込", USER_DISABLED: "アカウント無効化",
    USER_ENABLED: "アカウント有効化", USER_UNLOCKED: "ロック解除", PASSWORD_RESET: "パスワード再設定",
    TOKENS_REVOKED: "トークン・セッションの取消", TOKEN_CREATED: "課のトークン発行", TOKEN_REVOKED: "課のトークン取消",
    TOKEN_ROTATED: "課のトークン更新", KEYS_ROTATED: "暗号鍵の切り替え",
    CARD_PAIRING: "カード読み取りコード発行", CARD_READING: "カード読み取り", CARD_PAIRING_FAILED: "カード読み取りコード誤り",
    PLANNED_IMPORT: "転入予約の取り込み", SIGNATURE_VOIDED: "署名の無効化",
}
CSV_COLUMNS = ("id", "at", "actor", "actor_id", "action", "case_id", "target", "outcome", "ip", "user_agent")
MAX_PAGE = 500


@dataclass(frozen=True)
class Client:
    """Where a request came from (address and user agent), as far as the app can tell."""

    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class AuditFilter:
    """What an administrator searches the log for; empty fields match everything."""

    actor: str | None = None
    action: str | None = None
    case_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def record(
    session: Session, *, action: str, actor: User | None = None, actor_name: str = "", case_id: str | None = None,
    target: str = "", outcome: str = "ok", client: Client | None = None, at: dt.datetime | None = None,
) -> AuditEntry:
    """Append one entry; `target` names the thing touched (a PDF, a step), never personal data."""
    client = client or Client()
    entry = AuditEntry(
        action=action, actor_id=actor.id if actor else None, actor=(actor.username if actor else actor_name)[:64],
        case_id=case_id, target=target[:200], outcome=outcome[:20], ip=client.ip[:64],
        user_agent=client.user_agent[:200], **({"at": at} if at is not None else {}),
    )
    session.add(entry)
    return entry


def _filtered(flt: AuditFilter) -> Select[tuple[AuditEntry]]:
    query = select(AuditEntry)
    if flt.actor:
        query = query.where(AuditEntry.actor == flt.actor)
    if flt.action:
        query = query.where(AuditEntry.action == flt.action)
    if flt.case_id:
        query = query.where(AuditEntry.case_id == flt.case_id)
    if flt.since is not None:
        query = query.where(AuditEntry.at >= flt.since)
    if flt.until is not None:
        query = query.where(AuditEntry.at < flt.until)
    return query


def search(session: Session, *, flt: AuditFilter, cursor: int | None = None, limit: int = 100) -> list[AuditEntry]:
    """Entries matching the filter, newest first; `cursor` is the id of the last entry of the previous page."""
    query = _filtered(flt)
    if cursor is not None:
        query = query.where(AuditEntry.id < cursor)
    return list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(max(1, min(limit, MAX_PAGE)))))


def iter_entries(session: Session, *, flt: AuditFilter, batch: int = 1000) -> Iterator[AuditEntry]:
    """Every matching entry, oldest first, read in batches (for the export)."""
    last = 0
    while True:
        rows = list(session.scalars(_filtered(flt).where(AuditEntry.id > last).order_by(AuditEntry.id).limit(batch)))
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1].id


def as_dict(entry: AuditEntry) -> dict[str, object]:
    """An entry as the API and the export show it."""
    return {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor, "actor_id": entry.actor_id,
            "action": entry.action, "case_id": entry.case_id, "target": entry.target, "outcome": entry.outcome,
            "ip": entry.ip, "user_agent": entry.user_agent}


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A user agent or attempted user name is caller-controlled: never let a spreadsheet run it as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_csv(session: Session, *, flt: AuditFilter, tz: dt.tzinfo | None = None) -> str:
    """The matching entries as CSV (UTF-8 with BOM so that Excel opens Japanese text correctly); with `tz`,
    a last column `at_local` gives each time in that zone (the city's local time)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = (*CSV_COLUMNS, "at_local") if tz is not None else CSV_COLUMNS
    writer.writerow(columns)
    for entry in iter_entries(session, flt=flt):
        row = as_dict(entry)
        if tz is not None:
            row["at_local"] = entry.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        writer.writerow([_csv_cell(row[c]) for c in columns])
    return "\ufeff" + out.getvalue()


def failed_login_times(session: Session, *, ip: str, since: dt.datetime,
                       match: Callable[[str], bool]) -> list[dt.datetime]:
    """When logins from one address failed since a moment, for user names `match` accepts, oldest first.

    Refused (rate-limited) attempts are not failures of a password and are left out.
    """
    rows = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == LOGIN_FAILED, AuditEntry.ip == ip, AuditEntry.at >= since,
               AuditEntry.outcome != "rate_limited")
        .order_by(AuditEntry.at, AuditEntry.id)
    )
    return [row.at for row in rows if match(row.actor)]


def count_failed_logins(session: Session, *, ip: str, since: dt.datetime) -> int:
    """Failed logins from one address since a moment (the per-address login limit; all instances agree)."""
    return session.scalar(
        select(func.count()).select_from(AuditEntry)
        .where(AuditEntry.action == LOGIN_FAILED, AuditEntry.ip == ip, AuditEntry.at >= since)
    ) or 0


def count_failed(session: Session, *, action: str, ip: str, since: dt.datetime) -> int:
    """Entries of one failure action from one address since a moment (rate limits that all instances agree on)."""
    return session.scalar(
        select(func.count()).select_from(AuditEntry)
        .where(AuditEntry.action == action, AuditEntry.ip == ip, AuditEntry.at >= since)
    ) or 0
