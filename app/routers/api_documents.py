"""Staff API v1: the applications a case needs, its PDFs, the signature and the writing saved."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from app.deps import ClientDep, CounterUser, DefinitionsDep, SessionDep, SettingsDep
from app.routers.api_cases import ERRORS
from app.services import audit, documents
from app.services.cases import get_case_or_raise

router = APIRouter(prefix="/api/v1/cases/{case_id}", tags=["applications"])
PDF_RESPONSE: dict[int | str, dict[str, Any]] = {**ERRORS, 200: {"content": {"application/pdf": {}}}}


def _pdf(pdf: documents.Pdf, fingerprint: str) -> Response:
    return Response(pdf.content, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{pdf.filename}"',
        "X-Definitions-Fingerprint": fingerprint,
        "Cache-Control": "no-store",
    })


@router.get("/applications", responses=ERRORS, summary="必要な申請書と、その理由")
def list_applications(case_id: str, session: SessionDep, defs: DefinitionsDep, user: CounterUser,
                      client: ClientDep) -> dict[str, Any]:
    """The applications this household needs, each with reasons, legal basis and what is still missing."""
    case = get_case_or_raise(session, case_id)
    audit.record(session, action=audit.CASE_READ, actor=user, case_id=case.id, target="applications", client=client)
    instances = documents.list_applications(defs, case)
    return {"case_id": case.id, "definitions_fingerprint": defs.fingerprint,
            "applications": [documents.application_view(defs, i) for i in instances],
            "warnings": documents.print_warnings_view(case)}


@router.get("/applications/{instance_id}.pdf", responses=PDF_RESPONSE, response_class=Response,
            summary="記入済みの申請書（PDF）")
def application_pdf(case_id: str, instance_id: str, session: SessionDep, settings: SettingsDep,
                    defs: DefinitionsDep, user: CounterUser, client: ClientDep) -> Response:
    """One pre-filled application form."""
    pdf = documents.render_instance_pdf(session, defs=defs, case_id=case_id, instance_id=instance_id,
                                        city_name=settings.city_name, actor=user)
    audit.record(session, action=audit.PDF_DOWNLOAD, actor=user, case_id=case_id, target=f"{instance_id}.pdf",
                 client=client)
    return _pdf(pdf, defs.fingerprint)


@router.get("/bundle.pdf", responses=PDF_RESPONSE, response_class=Response, summary="申請書一式（PDF）")
def bundle_pdf(case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
               user: CounterUser, client: ClientDep) -> Response:
    """All forms of the case after a cover page."""
    pdf = documents.render_bundle_pdf(session, defs=defs, case_id=case_id, city_name=settings.city_name, actor=user)
    audit.record(session, action=audit.PDF_DOWNLOAD, actor=user, case_id=case_id, target="bundle.pdf", client=client)
    return _pdf(pdf, defs.fingerprint)


@router.get("/handbook.pdf", responses=PDF_RESPONSE, response_class=Response,
            summary="手続きハンドブック（おくやみハンドブック）（PDF）")
def handbook_pdf(case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                 user: CounterUser, client: ClientDep) -> Response:
    """Every step of the visit, in the city and outside it, with place and deadline."""
    pdf = documents.render_handbook_pdf(session, defs=defs, case_id=case_id, city_name=settings.city_name, actor=user)
    audit.record(session, action=audit.PDF_DOWNLOAD, actor=user, case_id=case_id, target="handbook.pdf", client=client)
    return _pdf(pdf, defs.fingerprint)


@router.put("/signature", status_code=204, responses=ERRORS, summary="署名（PNG）を登録する",
            openapi_extra={"requestBody": {"content": {"image/png": {"schema": {"type": "string",
                                                                                "format": "binary"}}},
                                           "required": True}})
async def put_signature(case_id: str, request: Request, session: SessionDep, settings: SettingsDep,
                        defs: DefinitionsDep, user: CounterUser, client: ClientDep,
                        signer: Annotated[str | None, Query(max_length=20, description="署名する方の世帯員番号、代理人は agent")] = None,
                        ) -> Response:
    """Store one signer's signature drawn on the tablet; it is placed only on the forms that person signs."""
    body = await request.body()
    documents.store_signature(session, defs=defs, case_id=case_id, png=body, max_bytes=settings.max_signature_bytes,
                              actor=user, signer=signer)
    audit.record(session, action=audit.SIGNATURE_SAVED, actor=user, case_id=case_id, client=client)
    return Response(status_code=204)


@router.get("/writing-saved", responses=ERRORS, summary="書かずに済んだ記入の数")
def writing_saved(case_id: str, session: SessionDep, defs: DefinitionsDep, user: CounterUser) -> dict[str, Any]:
    """Pre-filled fields by kind, beside the survey's handwritten counts."""
    return documents.writing_saved_report(defs, get_case_or_raise(session, case_id))
