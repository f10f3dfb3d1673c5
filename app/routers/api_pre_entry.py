"""Pre-entry JSON API: the resident's phone writes a draft (no login); the counter hands it over to a visit."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from app import i18n
from app.deps import ClientDep, CounterUserAnyAuth, DefinitionsDep, SessionDep, SettingsDep
from app.errors import ValidationFailed
from app.schemas import ErrorOut
from app.services import audit, pre_entry
from app.services.clock import local_today
from app.settings import Settings

router = APIRouter(tags=["pre-entry"])
NO_STORE = {"Cache-Control": "no-store"}
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 413: {"model": ErrorOut}, 422: {"model": ErrorOut},
    429: {"model": ErrorOut},
}


def limits(settings: Settings) -> pre_entry.Limits:
    """The pre-entry limits from the settings."""
    return pre_entry.Limits(days=settings.pre_entry_days, per_hour=settings.pre_entry_drafts_per_hour,
                            max_members=settings.pre_entry_max_members)


async def json_body(request: Request, settings: Settings) -> Any:
    """The request's JSON, refused with 413 past `pre_entry_max_bytes` (a tighter cap than the app-wide one)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.pre_entry_max_bytes:
        raise pre_entry.DraftTooLarge()
    raw = await request.body()
    if len(raw) > settings.pre_entry_max_bytes:
        raise pre_entry.DraftTooLarge()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise ValidationFailed(details=[{"field": "(root)", "message": "JSONとして読めません"}]) from None


@router.post("/pre/api/drafts", status_code=201, responses=ERRORS, summary="事前入力の下書きを作る（ログイン不要）")
async def create_draft(request: Request, session: SessionDep, settings: SettingsDep, client: ClientDep) -> JSONResponse:
    """A new empty draft: the hand-off code (XXXX-XXXX), the write token and when it expires."""
    body = await json_body(request, settings)
    lang = i18n.normalize(body.get("lang") if isinstance(body, dict) and isinstance(body.get("lang"), str) else None) \
        or i18n.DEFAULT
    code, token, row = pre_entry.create_draft(session, lang=lang, ip=client.ip, secret=settings.secret_key.get_secret_value(),
                                              limits=limits(settings))
    return JSONResponse({"code": pre_entry.format_code(code), "token": token, "expires_at": row.expires_at.isoformat()},
                        status_code=201, headers=NO_STORE)


@router.put("/pre/api/drafts/{code}/answers", responses=ERRORS, summary="事前入力の回答を保存する（一部ずつ）")
async def put_answers(code: str, request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                      x_draft_token: Annotated[str | None, Header(max_length=200)] = None) -> JSONResponse:
    """Merge part of an answers document into the draft: the valid part is stored, the rest listed per field."""
    body = await json_body(request, settings)
    draft = pre_entry.authorised_draft(session, code=code, token=x_draft_token, lock=True)
    if not isinstance(body, dict) or "answers" not in body:
        raise ValidationFailed(details=[{"field": "answers", "message": "answers（回答文書）を送ってください"}])
    written = pre_entry.write_answers(session, defs=defs, draft=draft, partial=body["answers"],
                                      today=local_today(settings), limits=limits(settings))
    return JSONResponse({"stored": written.stored, "errors": written.errors}, headers=NO_STORE)


@router.get("/pre/api/drafts/{code}", responses=ERRORS, summary="事前入力の下書きの状態")
def draft_state(code: str, session: SessionDep,
                x_draft_token: Annotated[str | None, Header(max_length=200)] = None) -> JSONResponse:
    """open or handed_over, and the expiry (no answers: the phone needs only to know it was handed over)."""
    draft = pre_entry.authorised_draft(session, code=code, token=x_draft_token)
    return JSONResponse({"state": "handed_over" if draft.handed_over_at else "open",
                         "expires_at": draft.expires_at.isoformat()}, headers=NO_STORE)


@router.post("/api/v1/cases/from-pre-entry", status_code=201, responses={**ERRORS, 401: {"model": ErrorOut}},
             summary="事前入力コードから来庁（案件）を作る")
async def from_pre_entry(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                         user: CounterUserAnyAuth, client: ClientDep) -> JSONResponse:
    """Hand the resident's draft over: a draft visit with every pre-entered answer marked 本人入力; the code is used up."""
    body = await json_body(request, settings)
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not pre_entry.normalise_code(code):
        raise ValidationFailed(details=[{"field": "code", "message": "事前入力コード（例: ABCD-EFGH）を入力してください"}])
    case, answered = pre_entry.hand_over(session, defs=defs, code=code, user=user, office=settings.office_code,
                                         today=local_today(settings))
    audit.record(session, action=audit.CASE_CREATED, actor=user, case_id=case.id, target="pre-entry", client=client)
    return JSONResponse({"case_id": case.id, "answered": answered, "ticket_number": case.ticket_number},
                        status_code=201, headers=NO_STORE)
