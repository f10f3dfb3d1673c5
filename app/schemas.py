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


# --- Routing slip and department API (issue 5) -------------------------------------------------------


class SlipApplicationOut(BaseModel):
    """An application (one form) handled by a step."""

    id: str = Field(description="申請書のインスタンスID（例: kodomo_iryo-m3）")
    application_id: str
    title: str
    short_title: str
    member_id: str | None = None


class RoutingStepOut(BaseModel):
    """One department's step on the routing slip."""

    id: int
    case_id: str
    department: str
    department_name: str
    location: str
    counters: list[str]
    applications: list[SlipApplicationOut]
    status: str = Field(description="pending / in_progress / done / needs_resident / cancelled")
    status_label: str
    position: int = Field(description="回付の順番（1から）")
    stage: int = Field(description="段階（0から。先に必要な手続きの最長の連なり。同じ段階の手続きは並行して進められる）")
    parallel: bool = Field(description="同じ段階にほかの手続きがある（並行可）")
    depends_on: list[str] = Field(description="先に完了している必要がある課（定義の requires: ハードゲート。after は順序だけ）")
    depends_on_names: list[str]
    ready: bool = Field(description="回答が窓口で確認済みで、先に必要な手続き（requires）がすべて完了（または取消）している")
    answers_confirmed: bool = Field(True, description="本人入力・カード・転入予約の回答が窓口で確認済みで、署名が無効になった申請書がない")
    waiting_for: list[str] = Field(default_factory=list, description="完了を待っている課（requires のうち未完了のもの）")
    not_ready_reasons: list[str] = Field(default_factory=list, description="まだ始められない理由（日本語）")
    can_start_now: bool = Field(False, description="受付待ちで、いま始められる（pending かつ ready）")
    resident_reason: str = ""
    counter: str = ""
    note: str = ""
    version: int
    claimed_by: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None = None
    done_at: dt.datetime | None = None


class LateNoteOut(BaseModel):
    """A form whose deadline the visit date has passed, and what follows."""

    id: str
    title: str
    note: str


class RoutingSlipOut(BaseModel):
    """A visit's routing slip."""

    case_id: str
    case_number: str
    ticket_number: int
    ticket_label: str
    case_status: str
    status_token: str
    created: bool = Field(description="回付票が作成済みか")
    steps: list[RoutingStepOut]
    late: list[LateNoteOut] = Field(default_factory=list, description="期限を過ぎた手続きと、その後の扱い")


class MissedItem(BaseModel):
    """Something that keeps the visit from being closed."""

    kind: str = Field(description="open_step / unsigned / not_printed / no_slip")
    message: str
    department: str | None = None
    department_name: str | None = None
    step_id: int | None = None
    status: str | None = None
    instance: str | None = None
    applications: list[str] = Field(default_factory=list)


class ExitCheckOut(BaseModel):
    """The exit check: what is still missing before the visit may be closed."""

    case_id: str
    case_number: str
    case_status: str
    ok: bool
    missed: list[MissedItem]


class VisitNotFinishedOut(ErrorOut):
    """409 from closing: the list of what was missed (empty when the visit was already closed or cancelled)."""

    missed: list[MissedItem] = []


class CaseClosedOut(BaseModel):
    """A closed visit."""

    case_id: str
    case_number: str
    status: str
    closed_at: dt.datetime
    missed: list[MissedItem] = Field(default_factory=list)


class DepartmentStepOut(RoutingStepOut):
    """A step as its department sees it, with the visit's numbers."""

    case_number: str
    ticket_number: int
    ticket_label: str
    case_status: str


class DepartmentStepList(BaseModel):
    """One page of a department's steps, ordered by (updated_at, id)."""

    department: str
    steps: list[DepartmentStepOut]
    next_cursor: str | None = Field(description="次のページ（または次回のポーリング）に渡すカーソル")
    has_more: bool = Field(description="limit で打ち切られ、続きがある")


class DepartmentStepDetail(DepartmentStepOut):
    """A step with the part of the answers its applications need."""

    answers: dict[str, Any] = Field(description="この課の申請書が使う回答だけ（世帯・住所は常に含む）")
    unmasked: list[str] = Field(description="伏せずに渡した番号の種類（my_number / account_number）")


class StepActionIn(BaseModel):
    """Optional body of a step transition: the version the client last saw."""

    version: int | None = Field(default=None, ge=1, description="最後に読んだ版番号（違えば 409）")


class NeedsResidentIn(StepActionIn):
    """Why the department needs the resident in person, and at which counter."""

    reason: str = Field(default="", max_length=1000, description="住民の画面に表示される理由（個人情報は書かない）")
    counter: str | None = Field(default=None, max_length=40, description="来ていただく窓口番号（departments.yaml の counters）")
