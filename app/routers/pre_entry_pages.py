"""The resident's pre-entry pages /pre (no login): one question per screen, then a QR code to show at the counter.

The phone keeps only an opaque cookie (hand-off code and write token, httponly, SameSite=Strict, path
/pre); the answers live encrypted on the server. A cross-site post carries no cookie and so reaches
no draft, which is why these forms need no CSRF token.
"""

from __future__ import annotations

from typing import Any

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app import i18n
from app.deps import ClientDep, DefinitionsDep, SessionDep, SettingsDep
from app.errors import AppError, ValidationFailed
from app.forms.loader import ADDRESS_PARTS, DefinitionSet
from app.models import PreEntryDraft
from app.routers.api_pre_entry import limits
from app.routers.resident import PRIVATE_HEADERS, language, page_context, remember_language
from app.services import pre_entry, pre_entry_screen
from app.services.clock import local_today
from app.services.counter import ADDRESS_LABELS
from app.settings import Settings
from app.templating import get_templates

router = APIRouter(include_in_schema=False)
COOKIE = "kakanai_pre"
# Address parts in the page language (the msgids are the counter's own labels).
ADDRESS_PART_LABELS = {"postal_code": i18n.N_("郵便番号"), "prefecture": i18n.N_("都道府県"), "city": i18n.N_("市区町村"),
                       "town": i18n.N_("町名"), "block": i18n.N_("丁目・番地"), "building": i18n.N_("建物名・部屋番号（方書）")}
assert ADDRESS_PART_LABELS == ADDRESS_LABELS


def _secure(settings: Settings) -> bool:
    return settings.env == "production" or settings.public_base_url.startswith("https://")


def _credentials(request: Request) -> tuple[str, str]:
    code, _, token = (request.cookies.get(COOKIE) or "").partition(".")
    return code, token


def _draft(request: Request, session: Any, *, lock: bool = False) -> PreEntryDraft | None:
    code, token = _credentials(request)
    if not code:
        return None
    try:
        return pre_entry.authorised_draft(session, code=code, token=token, lock=lock)
    except AppError:
        return None


def _render(request: Request, template: str, lang: str, context: dict[str, Any], *, status: int = 200) -> Response:
    response = get_templates().TemplateResponse(request, template, {**page_context(request, lang), **context},
                                                status_code=status, headers=PRIVATE_HEADERS)
    return remember_language(request, response, lang)


def _forget(response: Response, settings: Settings) -> Response:
    response.delete_cookie(COOKIE, path="/pre", secure=_secure(settings), httponly=True, samesite="strict")
    return response


@router.get("/pre", response_class=HTMLResponse)
def start_page(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """What pre-entry is, and the button to start (or to go on with the draft this phone started)."""
    lang = language(request)
    draft = _draft(request, session)
    if draft is not None and draft.handed_over_at is not None:
        return RedirectResponse("/pre/done", status_code=303)
    return _render(request, "pre/start.html", lang, {"draft": draft, "days": settings.pre_entry_days})


@router.post("/pre/start")
def start(request: Request, session: SessionDep, settings: SettingsDep, client: ClientDep) -> Response:
    """A new draft: its code and token go into the phone's cookie only."""
    lang = language(request)
    try:
        code, token, _row = pre_entry.create_draft(session, lang=lang, ip=client.ip,
                                                  secret=settings.secret_key.get_secret_value(), limits=limits(settings))
    except pre_entry.TooManyDrafts:
        gettext = i18n.gettext_for(lang)
        return _render(request, "pre/start.html", lang, {
            "draft": None, "days": settings.pre_entry_days,
            "error": gettext("この端末からの事前入力の開始が多すぎます。1時間ほど待ってからお試しください")}, status=429)
    response = RedirectResponse("/pre/q", status_code=303)
    response.set_cookie(COOKIE, f"{code}.{token}", max_age=settings.pre_entry_days * 24 * 3600, path="/pre",
                        httponly=True, samesite="strict", secure=_secure(settings))
    return response


def _question(request: Request, defs: DefinitionSet, lang: str, all_steps: list[pre_entry_screen.Step], index: int,
              *, errors: list[str] | None = None, value: Any = None, status: int = 200) -> Response:
    step = all_steps[index]
    shown = value if errors else step.value

    def t(japanese: str) -> str:
        return pre_entry_screen.text(defs, lang, japanese)

    context = {"step": step, "index": index, "total": len(all_steps), "errors": errors or [], "value": shown,
               "label": t(step.definition.label) if step.definition else "",
               "help": t(step.definition.help) if step.definition and step.definition.help else "",
               "section": t(step.section_title.split("（")[0]), "t": t, "parts": ADDRESS_PARTS,
               "part_labels": ADDRESS_PART_LABELS, "member_number": (step.member_index or 0) + 1}
    return _render(request, "pre/question.html", lang, context, status=status)


@router.get("/pre/q", response_class=HTMLResponse)
def question(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
             step: str | None = None) -> Response:
    """One question: the asked one, or the first that applies and has no answer yet."""
    lang = language(request)
    draft = _draft(request, session)
    if draft is None or draft.handed_over_at is not None:
        return RedirectResponse("/pre", status_code=303)
    all_steps = pre_entry_screen.steps(defs, draft.answers or {}, today=local_today(settings))
    if step is None:
        index = next((i for i, s in enumerate(all_steps) if s.definition is not None and s.value in (None, "", [])), 0)
    else:
        index = pre_entry_screen.find(all_steps, step)
    return _question(request, defs, lang, all_steps, index)


@router.post("/pre/q")
async def answer(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep) -> Response:
    """Store one screen's answer (valid part kept, errors shown in the page language) and go on."""
    lang = language(request)
    draft = _draft(request, session, lock=True)
    if draft is None or draft.handed_over_at is not None:
        return RedirectResponse("/pre", status_code=303)
    form = await request.form()
    today = local_today(settings)
    all_steps = pre_entry_screen.steps(defs, draft.answers or {}, today=today)
    key = form.get("step")
    index = pre_entry_screen.find(all_steps, key if isinstance(key, str) else None)
    step = all_steps[index]
    nav = form.get("nav")
    if nav == "back":
        return RedirectResponse(f"/pre/q?step={all_steps[max(index - 1, 0)].key}", status_code=303)
    if step.key == pre_entry_screen.MORE_MEMBERS:
        if nav == "add":
            members = (draft.answers or {}).get("household", {}).get("members") or []
            try:
                pre_entry.write_answers(session, defs=defs, draft=draft, partial=pre_entry_screen.new_member(draft.answers or {}),
                                        today=today, limits=limits(settings))
            except ValidationFailed:
                gettext = i18n.gettext_for(lang)
                return _question(request, defs, lang, all_steps, index, status=422, errors=[
                    gettext("これ以上は追加できません。ほかの方は窓口でお伝えください")])
            all_steps = pre_entry_screen.steps(defs, draft.answers or {}, today=today)
            first = next(s for s in all_steps if s.member_index == len(members))
            return RedirectResponse(f"/pre/q?step={first.key}", status_code=303)
        return _next(all_steps, index)
    value = pre_entry_screen.parse_value(step, form)
    written = pre_entry.write_answers(session, defs=defs, draft=draft, partial=pre_entry_screen.partial_for(step, value),
                                      today=today, limits=limits(settings))
    messages = pre_entry_screen.errors_for(step, written.errors, lang=lang, gettext=i18n.gettext_for(lang))
    if messages:
        return _question(request, defs, lang, all_steps, index, errors=messages, value=value, status=422)
    after = pre_entry_screen.steps(defs, draft.answers or {}, today=today)
    return _next(after, pre_entry_screen.find(after, step.key))


def _next(all_steps: list[pre_entry_screen.Step], index: int) -> Response:
    if index + 1 < len(all_steps):
        return RedirectResponse(f"/pre/q?step={all_steps[index + 1].key}", status_code=303)
    return RedirectResponse("/pre/handoff", status_code=303)


@router.get("/pre/handoff", response_class=HTMLResponse)
def handoff(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """The QR code and the short code to show at the counter (they hold no personal data)."""
    lang = language(request)
    draft = _draft(request, session)
    if draft is None:
        return RedirectResponse("/pre", status_code=303)
    if draft.handed_over_at is not None:
        return RedirectResponse("/pre/done", status_code=303)
    code = pre_entry.normalise_code(_credentials(request)[0])
    qr = segno.make(pre_entry.qr_content(code), error="m").svg_inline(scale=6, title="QR", border=4, omitsize=True)
    return _render(request, "pre/handoff.html", lang, {"code": pre_entry.format_code(code), "qr_svg": qr,
                                                       "expires_on": draft.expires_at.astimezone().date().isoformat()})


@router.get("/pre/state")
def state(request: Request, session: SessionDep) -> JSONResponse:
    """open / handed_over / gone, for the hand-off screen's check (nothing personal)."""
    draft = _draft(request, session)
    value = "gone" if draft is None else ("handed_over" if draft.handed_over_at else "open")
    return JSONResponse({"state": value}, headers=PRIVATE_HEADERS)


@router.get("/pre/done", response_class=HTMLResponse)
def done(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Handed over: nothing personal on the page, and the phone's cookie is removed."""
    lang = language(request)
    draft = _draft(request, session)
    if draft is not None and draft.handed_over_at is None:
        return RedirectResponse("/pre/handoff", status_code=303)
    return _forget(_render(request, "pre/done.html", lang, {}), settings)
