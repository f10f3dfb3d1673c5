"""Residents opt in to notices from the phone page: Web Push (the browser's subscription) or e-mail.

Like the rest of /q/<token>, the unguessable token is the only credential (no login, no CSRF token):
a forger would need the token itself. The address or subscription is stored encrypted and never shown.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse

from app import i18n
from app.deps import SessionDep, SettingsDep
from app.errors import NotFound, ValidationFailed
from app.services import notify

router = APIRouter(tags=["resident"])
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@router.get("/q/{token}/notices/key", summary="住民向け：プッシュ通知の公開鍵（VAPID）")
def push_key(token: str, settings: SettingsDep) -> JSONResponse:
    """The key the browser subscribes with; empty when the city has not turned Web Push on."""
    return JSONResponse({"public_key": settings.vapid_public_key}, headers=HEADERS)


@router.post("/q/{token}/notices/push", status_code=201, summary="住民向け：この端末にお知らせを送る（Web Push）")
def push_subscribe(token: str, request: Request, session: SessionDep,
                   body: Annotated[dict[str, Any], Body()], lang: str = "ja") -> JSONResponse:
    """Store the browser's push subscription (`endpoint`, `keys.p256dh`, `keys.auth`)."""
    notify.subscribe(session, token=token, channel="webpush", target=body, language=i18n.normalize(lang) or "ja")
    return JSONResponse({"status": "subscribed"}, status_code=201, headers=HEADERS)


@router.post("/q/{token}/notices/email", summary="住民向け：メールでお知らせを受け取る（フォーム送信）")
def email_subscribe(token: str, session: SessionDep, email: Annotated[str, Form(max_length=320)] = "",
                    lang: Annotated[str, Form(max_length=20)] = "") -> RedirectResponse:
    """Store the address; back to the page, which says whether it worked."""
    chosen = i18n.normalize(lang) or "ja"
    try:
        notify.subscribe(session, token=token, channel="email", target=email, language=chosen)
    except ValidationFailed:
        return RedirectResponse(f"/q/{token}?lang={chosen}&notice=error#notices", status_code=303, headers=HEADERS)
    except NotFound:
        return RedirectResponse(f"/q/{token}", status_code=303, headers=HEADERS)
    return RedirectResponse(f"/q/{token}?lang={chosen}&notice=ok#notices", status_code=303, headers=HEADERS)
