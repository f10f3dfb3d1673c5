"""Response and request bodies of the JSON API (the OpenAPI document is built from these)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from app.models import Case


class TokenOut(BaseModel):
    """A bearer token for the API."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="有効期間（秒）")
    role: str


class TokenIn(BaseModel):
    """Credentials sent as JSON (the OAuth2 form is accepted too)."""

    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class CaseSummary(BaseModel):
    """A case in today's list: no personal data beyond what the counter board shows."""

    id: str
    case_number: str
    ticket_number: int
    ticket_label: str
    status: str
    complete: bool
    version: int
    life_events: list[str]
    members: int
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, case: Case) -> CaseSummary:
        """Build from a model."""
        answers = case.answers or {}
        members = (answers.get("household") or {}).get("members") or []
        return cls(
            id=case.id, case_number=case.case_number, ticket_number=case.ticket_number,
            ticket_label=f"{case.ticket_number:03d}", status=case.status, complete=case.complete,
            version=case.version, life_events=list(answers.get("life_events") or []), members=len(members),
            created_at=case.created_at, updated_at=case.updated_at,
        )


class CaseOut(CaseSummary):
    """A case with its answers document."""

    status_token: str
    answers: dict[str, Any]
    missing: list[str] = Field(default_factory=list, description="まだ聞き取っていない必須項目")

    @classmethod
    def full(cls, case: Case, *, missing: list[str]) -> CaseOut:
        """Build from a model, with the answers."""
        base = CaseSummary.of(case).model_dump()
        return cls(**base, status_token=case.status_token, answers=case.answers, missing=missing)


class CaseList(BaseModel):
    """Today's cases."""

    day: dt.date
    cases: list[CaseSummary]


class AnswersUpdate(BaseModel):
    """A new answers document, with the version the client last saw."""

    version: int = Field(ge=1)
    answers: dict[str, Any]


class FieldMessage(BaseModel):
    """One field's error."""

    field: str
    message: str


class ErrorOut(BaseModel):
    """Every error response has this shape."""

    error: str
    message: str
    errors: list[FieldMessage] | None = None
    current_version: int | None = None
