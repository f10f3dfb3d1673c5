"""Card bridge API v1: a counter card bridge posts a マイナンバーカード reading with the visit's pairing code.

The pairing code (shown on the visit's tablet, one use, a few minutes) is the only credential: it
travels in the body, never in the URL, so access logs do not keep it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.deps import ClientDep, CounterUser, DefinitionsDep, SessionDep, SettingsDep
from app.schemas import ErrorOut
from app.services import card_pairing
from app.services.clock import local_today

router = APIRouter(prefix="/api/v1/card-readings", tags=["card"])
# The counter side over the API (the tablet uses the page endpoint with its session): a pairing code.
pairing_router = APIRouter(prefix="/api/v1/cases/{case_id}/card-pairings", tags=["card"])
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}, 409: {"model": ErrorOut},
                                           422: {"model": ErrorOut}, 429: {"model": ErrorOut}}


class PairingCheck(BaseModel):
    """Only the pairing code."""

    model_config = ConfigDict(extra="forbid")
    pairing_code: str = Field(min_length=1, max_length=32, description="タブレットに表示されたペアリングコード")


class CardReadingIn(PairingCheck):
    """What the card bridge read from the 券面事項入力補助AP (as on the card; the server splits and checks)."""

    name: str = Field(max_length=200, description="氏名（カードの表記のまま）")
    address: str = Field(max_length=400, description="住所（カードの表記のまま）")
    birth_date: str = Field(max_length=40, description="生年月日（YYYYMMDD など）")
    sex: str = Field(max_length=4, description="性別コード（1 男, 2 女, ISO/IEC 5218）")
    my_number: str = Field(pattern=r"^[0-9]{12}$", description="個人番号（12桁）")


class CardReadingOut(BaseModel):
    """What was filled in (field names only) and what the clerk must check."""

    member_id: str
    fields: list[str]
    warnings: list[str]


@router.post("/check", responses=ERRORS, summary="ペアリングコードが使えるか確かめる（暗証番号の入力前に）")
def check(body: PairingCheck, session: SessionDep, client: ClientDep) -> dict[str, Any]:
    """Whether the code is usable now and where the card's address will go."""
    return card_pairing.check_code(session, code=body.pairing_code, client=client)


@router.post("", status_code=201, response_model=CardReadingOut, responses=ERRORS,
             summary="マイナンバーカードの読み取り結果を来庁に登録する")
def post_reading(body: CardReadingIn, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                 client: ClientDep) -> CardReadingOut:
    """Store the 基本4情報 and the My Number on the paired visit (encrypted like every My Number)."""
    reading = card_pairing.CardReading(name=body.name, address=body.address, birth_date=body.birth_date,
                                       sex=body.sex, my_number=body.my_number)
    applied = card_pairing.redeem(session, defs=defs, code=body.pairing_code, reading=reading, client=client,
                                  today=local_today(settings))
    fields = [p.rsplit(".", 1)[-1] if p.startswith("household.") else p for p in applied.paths]
    return CardReadingOut(member_id=applied.member_id, fields=fields, warnings=applied.warnings)


class PairingIn(BaseModel):
    """Which household member the card belongs to (none: a new member)."""

    model_config = ConfigDict(extra="forbid")
    member_id: str | None = Field(None, max_length=32)


class PairingOut(BaseModel):
    """The one-time code for the card bridge (shown once)."""

    code: str
    pairing_id: int
    expires_in: int


@pairing_router.post("", status_code=201, response_model=PairingOut, responses=ERRORS,
                     summary="カード読み取りのペアリングコードを発行する")
def new_pairing(case_id: str, body: PairingIn, session: SessionDep, user: CounterUser, client: ClientDep) -> PairingOut:
    """A one-time code the counter's card bridge sends with the card's facts (valid a few minutes, used once)."""
    code, row = card_pairing.create_pairing(session, case_id=case_id, member_id=body.member_id, user=user,
                                            client=client)
    return PairingOut(code=card_pairing.format_code(code), pairing_id=row.id,
                      expires_in=int(card_pairing.LIFETIME.total_seconds()))
