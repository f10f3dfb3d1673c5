"""Which answers came from a card reading, an import or the resident's own pre-entry, marked on the counter screen until confirmed."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.forms.loader import DefinitionSet
from app.models import AnswerSource, User, utcnow

SOURCE_LABELS = {"card": "カード", "import": "転入予約", "resident": "本人入力"}
_MEMBER_PATH = re.compile(r"^household\.members\.([^.]+)\.(.+)$")


def answer_paths(defs: DefinitionSet, answers: dict[str, Any]) -> list[str]:
    """Every answered path a source can mark (members by id: household.members.m2.birth_date; addresses whole)."""
    paths: list[str] = []

    def walk(value: Any, path: str) -> None:
        info = defs.fields.get(path)
        if isinstance(value, dict) and (info is None or info.field.kind != "address"):
            for key, sub in value.items():
                walk(sub, f"{path}.{key}" if path else key)
        elif path not in ("life_events", "visit_date"):
            paths.append(path)

    for key, value in answers.items():
        if key == "household":
            for member in (value or {}).get("members") or []:
                for field, sub in member.items():
                    if field == "id":
                        continue
                    base = f"household.members.{member.get('id')}.{field}"
                    if isinstance(sub, dict):
                        paths.extend(f"{base}.{k}" for k in sub)
                    else:
                        paths.append(base)
        elif not key.startswith("$"):
            walk(value, key)
    return paths


def record(session: Session, *, case_id: str, paths: list[str], source: str) -> None:
    """Mark these answer paths as coming from `source` (again unconfirmed if they were confirmed before)."""
    existing = {row.path: row for row in session.scalars(select(AnswerSource).where(AnswerSource.case_id == case_id))}
    now = utcnow()
    for path in dict.fromkeys(paths):
        row = existing.get(path)
        if row is None:
            session.add(AnswerSource(case_id=case_id, path=path[:200], source=source, created_at=now))
        else:
            row.source, row.created_at, row.confirmed_at, row.confirmed_by = source, now, None, None
    session.flush()


def unconfirmed(session: Session, *, case_id: str) -> list[AnswerSource]:
    """The case's marked answers the clerk has not confirmed yet."""
    return list(session.scalars(select(AnswerSource).where(AnswerSource.case_id == case_id,
                                                           AnswerSource.confirmed_at.is_(None))
                                .order_by(AnswerSource.id)))


def confirm_all(session: Session, *, case_id: str, user: User) -> int:
    """The clerk checked every marked answer with the resident: the marks go away."""
    return session.execute(
        update(AnswerSource).where(AnswerSource.case_id == case_id, AnswerSource.confirmed_at.is_(None))
        .values(confirmed_at=utcnow(), confirmed_by=user.id).execution_options(synchronize_session=False)
    ).rowcount


def screen_marks(rows: list[AnswerSource], answers: dict[str, Any]) -> dict[str, str]:
    """Screen field paths (household.members[2].birth_date) → source label, for the unconfirmed rows."""
    members = (answers.get("household") or {}).get("members") or []
    index = {m.get("id"): i for i, m in enumerate(members) if isinstance(m, dict)}
    out: dict[str, str] = {}
    for row in rows:
        label = SOURCE_LABELS.get(row.source, row.source)
        match = _MEMBER_PATH.match(row.path)
        if match:
            if match.group(1) in index:
                out[f"household.members[{index[match.group(1)]}].{match.group(2)}"] = label
        else:
            out[row.path] = label
    return out
