"""Admin API v1 for imports: upload a 転入予約 export with its mapping file → 本日の来庁予定."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile
from pydantic import BaseModel

from app.deps import AdminUser, ClientDep, DefinitionsDep, SessionDep, SettingsDep
from app.errors import ValidationFailed
from app.importers.mapping import MappingError, parse_mapping
from app.schemas import ErrorOut
from app.services import audit, planned_visits
from app.services.clock import local_today

router = APIRouter(prefix="/api/v1/admin/imports", tags=["admin"])
ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}}
MAX_MAPPING_BYTES = 64 * 1024


class ImportOut(BaseModel):
    """What was stored (or, with dry_run, checked)."""

    households: int
    members: int
    days: dict[str, int]
    dry_run: bool


@router.post("/moving-in", response_model=ImportOut, responses=ERRORS,
             summary="転入予約（引越しワンストップ）のデータを取り込む（全件か0件）")
async def import_moving_in(
    session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, user: AdminUser, client: ClientDep,
    file: Annotated[UploadFile, File(description="自治体が受け取ったエクスポート（CSV または JSON）")],
    mapping: Annotated[UploadFile, File(description="対応表（YAML、samples/moving_in/mapping.yaml を参照）")],
    dry_run: Annotated[bool, Query(description="true なら確認だけして保存しない")] = False,
) -> ImportOut:
    """Check the whole export against the mapping and the interview; store every household or none."""
    raw_mapping = await mapping.read(MAX_MAPPING_BYTES + 1)
    if len(raw_mapping) > MAX_MAPPING_BYTES:
        raise ValidationFailed(details=[{"field": "mapping", "message": "対応表が大きすぎます（64KBまで）"}])
    try:
        parsed = parse_mapping(raw_mapping.decode("utf-8"), mapping.filename or "mapping")
    except UnicodeDecodeError:
        raise ValidationFailed(details=[{"field": "mapping", "message": "対応表は UTF-8 で保存してください"}]) from None
    except MappingError as exc:
        raise ValidationFailed(details=[{"field": "mapping", "message": p} for p in exc.problems]) from None
    data = await file.read(settings.max_request_bytes + 1)
    report = planned_visits.import_file(session, defs=defs, mapping=parsed, data=data, office=settings.office_code,
                                        user=user, today=local_today(settings), dry_run=dry_run)
    audit.record(session, action=audit.PLANNED_IMPORT, actor=user, target=f"upload {report.households} households"
                 + (" (dry run)" if dry_run else ""), client=client)
    return ImportOut(households=report.households, members=report.members, days=report.days, dry_run=dry_run)
