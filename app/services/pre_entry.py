"""Resident pre-entry: answers typed on the resident's own phone, handed over at the counter by a code.

A draft lives only in the database, its answers encrypted as a whole (app.models.SealedJSON), for at
most `pre_entry_days` days. The phone holds an opaque token (it authorises writes); the counter
needs the hand-off code (QR or XXXX-XXXX). Hand-off creates a draft visit, marks every pre-entered
answer 本人入力 until the clerk confirms it, keeps a sealed copy of what the resident entered for
the review, and empties the draft: a code works once.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app import crypto
from app.errors import AppError, NotFound, ValidationFailed
from app.forms.answers import PASSTHROUGH_KEYS
from app.forms.loader import DefinitionSet
from app.forms.paths import get_path
from app.models import Case, PreEntryDraft, PreEntryOriginal, User, utcnow
from app.services import answer_sources, cases, counter, masking

log = logging.getLogger(__name__)
RESIDENT_SOURCE = "resident"
# No 0/O, 1/I/L: the code is read out and typed at the counter PC.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
MAX_STRING = 500
# The phone's screen posts one question at a time; the counter's QR scanner types this prefix + code.
QR_PREFIX = "KAKANAI-PRE:"
HANDED_OVER = "pre_entry_handed_over"  # CaseEvent kind; data: answered (a count), lang


class DraftNotFound(NotFound):
    """Unknown or expired code (which one is not told); an expired draft found on read is deleted."""

    keep_changes = True
    message = "この事前入力コードは見つかりません。コードを確かめるか、有効期限（7日）が過ぎていないか確認してください"


class DraftUsed(DraftNotFound):
    """The code was already handed over at a counter."""

    message = "この事前入力コードはすでに窓口で使われています（コードは1回だけ使えます）"


class DraftTokenInvalid(AppError):
    """The write token does not belong to this draft."""

    status = 403
    code = "forbidden"
    message = "この下書きを書き換える権限がありません（最初から入力し直してください）"


class TooManyDrafts(AppError):
    """Too many drafts started from one address within an hour."""

    status = 429
    code = "too_many_requests"
    message = "この端末からの事前入力の開始が多すぎます。1時間ほど待ってからお試しください"


@dataclass(frozen=True)
class Limits:
    """What one draft may hold and how many drafts one address may start (from the settings)."""

    days: int = 7
    per_hour: int = 10
    max_members: int = 10


@dataclass(frozen=True)
class Written:
    """The outcome of one write: the paths stored and the field errors of what was not."""

    stored: list[str]
    errors: list[dict[str, str]]
    answers: dict[str, Any]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def normalise_code(code: Any) -> str:
    """'abcd-efgh', 'KAKANAI-PRE:ABCD-EFGH' or a URL ending in the code → 'ABCDEFGH' ('' if not a code)."""
    if not isinstance(code, str) or len(code) > 300:
        return ""
    text = code.strip().upper()
    match = re.search(r"([0-9A-Z]{4})-?([0-9A-Z]{4})\s*$", text)
    return (match.group(1) + match.group(2)) if match else ""


def format_code(code: str) -> str:
    """ABCDEFGH → ABCD-EFGH."""
    return f"{code[:4]}-{code[4:]}"


def qr_content(code: str) -> str:
    """What the QR encodes: a USB scanner types it into the counter's 事前入力コード field."""
    return QR_PREFIX + format_code(code)


def client_key(ip: str, *, secret: str) -> str:
    """A keyed hash of the client's address (the address itself is not stored with the draft)."""
    return hmac.new(secret.encode(), f"pre-entry:{ip}".encode(), hashlib.sha256).hexdigest()


def create_draft(session: Session, *, lang: str, ip: str, secret: str, limits: Limits,
                 now: dt.datetime | None = None) -> tuple[str, str, PreEntryDraft]:
    """A new empty draft; returns (code, token, row). TooManyDrafts past the hourly limit per address."""
    now = now or utcnow()
    key = client_key(ip or "-", secret=secret)
    recent = session.scalar(select(func.count()).select_from(PreEntryDraft).where(
        PreEntryDraft.client_key == key, PreEntryDraft.created_at > now - dt.timedelta(hours=1))) or 0
    if recent >= limits.per_hour:
        raise TooManyDrafts()
    for _ in range(5):
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        if session.scalar(select(PreEntryDraft.id).where(PreEntryDraft.code_hash == _sha(code))) is None:
            break
    token = secrets.token_urlsafe(32)
    row = PreEntryDraft(code_hash=_sha(code), token_hash=_sha(token), lang=lang[:16], answers={}, client_key=key,
                        created_at=now, updated_at=now, expires_at=now + dt.timedelta(days=min(limits.days, 7)))
    session.add(row)
    session.flush()
    return code, token, row


def find_draft(session: Session, *, code: Any, now: dt.datetime | None = None, lock: bool = False) -> PreEntryDraft:
    """The draft of a code, open or handed over; DraftNotFound (and the row deleted) once expired.

    `lock` holds the row until commit (PostgreSQL): two counters handing over one code get one visit.
    """
    normal = normalise_code(code)
    query = select(PreEntryDraft).where(PreEntryDraft.code_hash == _sha(normal))
    row = session.scalar(query.with_for_update() if lock else query) if normal else None
    if row is None:
        raise DraftNotFound()
    if row.expires_at <= (now or utcnow()):
        session.delete(row)
        session.flush()
        raise DraftNotFound()
    return row


def authorised_draft(session: Session, *, code: Any, token: Any, now: dt.datetime | None = None,
                     lock: bool = False) -> PreEntryDraft:
    """The draft if the token is its own (DraftTokenInvalid otherwise); it may be handed over already."""
    row = find_draft(session, code=code, now=now, lock=lock)
    if not isinstance(token, str) or not hmac.compare_digest(_sha(token), row.token_hash):
        raise DraftTokenInvalid()
    return row


def _merge(base: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7386), except that household members merge by their `id`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif key == "members" and isinstance(value, list):
            out[key] = _merge_members(out.get(key), value)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def _merge_members(base: Any, patch: list[Any]) -> list[Any]:
    members = [m for m in (base if isinstance(base, list) else []) if isinstance(m, dict)]
    by_id = {m.get("id"): i for i, m in enumerate(members)}
    for item in patch:
        if not isinstance(item, dict):
            members.append(item)  # validation reports it
            continue
        i = by_id.get(item.get("id"))
        if i is None:
            item = dict(item)
            item.setdefault("id", _next_member_id(members))
            members.append(_merge({}, item))
            by_id[item["id"]] = len(members) - 1
        else:
            members[i] = _merge(members[i], item)
    return members


def _next_member_id(members: list[dict[str, Any]]) -> str:
    taken = {str(m.get("id")) for m in members}
    n = len(members) + 1
    while f"m{n}" in taken:
        n += 1
    return f"m{n}"


def _leaves(doc: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Concrete leaf paths (household.members[1].school.grade) of a document; lists of scalars are leaves."""
    if isinstance(doc, dict):
        out: list[tuple[str, Any]] = []
        for key, value in doc.items():
            out += _leaves(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(doc, list) and any(isinstance(v, dict) for v in doc):
        out = []
        for i, value in enumerate(doc):
            out += _leaves(value, f"{prefix}[{i}]")
        return out
    return [(prefix, doc)]



def _clean(partial: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Drop what a resident may not set (annotations, roles, counts) and strings longer than MAX_STRING."""
    errors: list[dict[str, str]] = []

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, str) and len(value) > MAX_STRING:
            errors.append({"field": path, "message": f"{MAX_STRING}文字以内で入力してください"})
            return None
        if isinstance(value, dict):
            return {k: walk(v, f"{path}.{k}" if path else k) for k, v in value.items()
                    if isinstance(k, str) and not k.startswith("$")}
        if isinstance(value, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    cleaned = walk(partial, "")
    for key in (*PASSTHROUGH_KEYS, "roles", "visit_date"):
        cleaned.pop(key, None)
    return cleaned, errors


def _without(doc: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for path in paths:
        counter._strip(out, path)  # the autosave's own remover, shared on purpose
    return out


def write_answers(session: Session, *, defs: DefinitionSet, draft: PreEntryDraft, partial: Any, today: dt.date,
                  limits: Limits, now: dt.datetime | None = None) -> Written:
    """Merge a partial answers document into the draft like the counter's autosave: valid part stored, rest reported."""
    if draft.handed_over_at is not None:
        raise DraftUsed()
    if not isinstance(partial, dict):
        raise ValidationFailed(details=[{"field": "answers", "message": "回答はJSONオブジェクトで送ってください"}])
    cleaned, errors = _clean(partial)
    too_long = [e["field"] for e in errors]
    cleaned = _without(cleaned, too_long)
    merged = _merge(draft.answers or {}, cleaned)
    members = (merged.get("household") or {}).get("members") if isinstance(merged.get("household"), dict) else None
    if isinstance(members, list) and len(members) > limits.max_members:
        message = f"世帯の方は{limits.max_members}人までにしてください（それより多いときは窓口でお伝えください）"
        raise ValidationFailed(details=[{"field": "household.members", "message": message}])
    merged["visit_date"] = today.isoformat()  # the validator needs it; the counter sets the real one
    stored, field_errors = counter.storable(defs, merged, today=today)
    stored.pop("visit_date", None)
    stored.pop(counter.INVALID_KEY, None)
    errors += [{"field": e.field, "message": e.message} for e in field_errors]
    draft.answers = stored
    draft.updated_at = now or utcnow()
    failed = {e["field"] for e in errors}
    written = [path for path, _ in _leaves(_merge({}, cleaned))
               if path not in failed and get_path(stored, path) is not None]
    session.flush()
    return Written(stored=written, errors=errors, answers=stored)


def remove_member(session: Session, *, draft: PreEntryDraft, member_id: str) -> None:
    """Take a household member off the draft (the phone's 「この方を削除」)."""
    if draft.handed_over_at is not None:
        raise DraftUsed()
    answers = copy.deepcopy(draft.answers or {})
    household = answers.get("household") if isinstance(answers.get("household"), dict) else {}
    household["members"] = [m for m in household.get("members") or [] if not (isinstance(m, dict) and m.get("id") == member_id)]
    answers["household"] = household
    draft.answers = answers
    session.flush()


def hand_over(session: Session, *, defs: DefinitionSet, code: Any, user: User, office: str,
              today: dt.date) -> tuple[Case, int]:
    """The resident is at the counter: open a draft visit with the pre-entered answers, each marked 本人入力."""
    draft = find_draft(session, code=code, lock=True)
    if draft.handed_over_at is not None:
        raise DraftUsed()
    answers = copy.deepcopy(draft.answers or {})
    answers["visit_date"] = today.isoformat()
    valid, _errors = counter.storable(defs, answers, today=today)  # definitions may have changed since
    case = cases.create_case(session, defs=defs, answers=valid, user=user, office=office, today=today, draft=True)
    paths = answer_sources.answer_paths(defs, case.answers)
    answer_sources.record(session, case_id=case.id, paths=paths, source=RESIDENT_SOURCE)
    session.add(PreEntryOriginal(case_id=case.id, answers=case.answers, lang=draft.lang, handed_over_at=utcnow()))
    # The draft is consumed: its answers go, the empty row stays until expiry so the phone can say so.
    draft.answers = None
    draft.handed_over_at = utcnow()
    cases.record_event(session, case, HANDED_OVER, actor=user, data={"answered": len(paths), "lang": draft.lang})
    session.flush()
    return case, len(paths)


def purge_expired(session: Session, *, now: dt.datetime | None = None) -> int:
    """Delete drafts past their expiry (open or handed over); returns how many."""
    return session.execute(delete(PreEntryDraft).where(PreEntryDraft.expires_at <= (now or utcnow()))
                           .execution_options(synchronize_session=False)).rowcount


# --- what the clerk changed (review) -------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One pre-entered answer the clerk changed: label, the resident's value, the clerk's value."""

    label: str
    resident: str
    clerk: str


def _by_member_path(answers: dict[str, Any], path: str) -> tuple[Any, str]:
    """Value at an answer-sources path (household.members.<id>.x) and its concrete screen path."""
    match = re.match(r"^household\.members\.([^.]+)\.(.+)$", path)
    if not match:
        return get_path(answers, path), path
    members = (answers.get("household") or {}).get("members") or []
    for i, member in enumerate(members):
        if isinstance(member, dict) and member.get("id") == match.group(1):
            return get_path(member, match.group(2)), f"household.members[{i}].{match.group(2)}"
    return None, ""


def _shown(value: Any, path: str) -> str:
    if value is None or value == "":
        return "（なし）"
    if path.endswith("my_number") and isinstance(value, str):
        return masking.mask_my_number(value)
    if path.endswith("account_number") and isinstance(value, str):
        return masking.mask_account_number(value)
    if isinstance(value, dict):
        return "".join(str(value.get(k) or "") for k in ("postal_code", "prefecture", "city", "town", "block",
                                                          "building") if value.get(k)) or str(value)
    if isinstance(value, list):
        return "・".join(str(v) for v in value)
    if isinstance(value, bool):
        return "はい" if value else "いいえ"
    return str(value)


def changes(session: Session, *, defs: DefinitionSet, case: Case) -> list[Change] | None:
    """Each pre-entered answer whose value the clerk changed (My Numbers and account numbers masked);
    None when the visit did not come from a pre-entry."""
    try:
        original = session.get(PreEntryOriginal, case.id)
    except crypto.KeyError_:  # sealed under a key this process no longer has: the review still opens
        log.warning("pre-entry original of a visit does not decrypt (key id missing); changes not shown")
        return None
    if original is None:
        return None
    out: list[Change] = []
    for path in answer_sources.answer_paths(defs, original.answers):
        before, _ = _by_member_path(original.answers, path)
        after, concrete = _by_member_path(case.answers, path)
        if before != after:
            label_path = concrete or _by_member_path(original.answers, path)[1]
            out.append(Change(counter._label(defs, label_path), _shown(before, path), _shown(after, path)))
    return out


class DraftTooLarge(AppError):
    """A pre-entry request bigger than `pre_entry_max_bytes`."""

    status = 413
    code = "too_large"
    message = "送信された内容が大きすぎます。入力を短くしてもう一度お送りください"
