"""Counter page endpoints for the card read-in: show a pairing code, watch it being used, confirm marks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from app.deps import ClientDep, PageCounterUser, SessionDep
from app.errors import ValidationFailed
from app.services import answer_sources, card_pairing, cases

router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}


@router.post("/counter/visits/{case_id}/card-pairing")
def new_pairing(case_id: str, session: SessionDep, user: PageCounterUser, client: ClientDep,
                payload: Annotated[dict[str, Any] | None, Body()] = None) -> JSONResponse:
    """A one-time code for the counter's card bridge (for a given member, or a new one)."""
    member_id = (payload or {}).get("member_id") or None
    if member_id is not None and (not isinstance(member_id, str) or len(member_id) > 32):
        raise ValidationFailed(details=[{"field": "member_id", "message": "世帯員番号が正しくありません"}])
    code, row = card_pairing.create_pairing(session, case_id=case_id, member_id=member_id, user=user, client=client)
    return JSONResponse({"code": card_pairing.format_code(code), "pairing_id": row.id,
                         "expires_in": int(card_pairing.LIFETIME.total_seconds())}, headers=NO_STORE)


@router.get("/counter/visits/{case_id}/card-pairing/{pairing_id}")
def pairing_status(case_id: str, pairing_id: int, session: SessionDep, user: PageCounterUser) -> JSONResponse:
    """waiting / used / expired (the tablet polls this and reloads the interview once the card is in)."""
    return JSONResponse(card_pairing.pairing_status(session, case_id=case_id, pairing_id=pairing_id),
                        headers=NO_STORE)


@router.post("/counter/visits/{case_id}/sources/confirm")
def confirm_sources(case_id: str, session: SessionDep, user: PageCounterUser) -> JSONResponse:
    """The clerk checked the answers marked カード / 転入予約 with the resident; the marks go."""
    case = cases.get_case_or_raise(session, case_id)
    count = answer_sources.confirm_all(session, case_id=case.id, user=user)
    return JSONResponse({"confirmed": count}, headers=NO_STORE)
