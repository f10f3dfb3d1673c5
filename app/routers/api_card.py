"""Card bridge API v1: a counter card bridge posts a マイナンバーカード reading with the visit's pairing code.

The pairing code (shown on the visit's tablet, one use, a few minutes) is the only credential: it
travels in the body, never in the URL, so access logs do not keep it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.deps import ClientDep, DefinitionsDep, SessionDep, SettingsDep
from app.schemas import ErrorOut
from app.services import card_pairing
from app.services.clock import local_today

router = APIRouter(prefix="/api/v1/card-readings", tags=["card"])
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
