"""Counter pages for the tablet: login, today's visits, the interview, review and signature, documents."""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app import events
from app.deps import ClientDep, DefinitionsDep, PageCounterUser, PageStaffUser, SessionDep, SettingsDep
from app.errors import AppError, NotFound, ValidationFailed
from app.models import Case, QueueTicket, User
from app.services import (
    answer_sources,
    audit,
    auth,
    cases,
    counter,
    documents,
    page_previews,
    planned_visits,
    pre_entry,
    queue,
    routing,
    sessions,
    signatures,
)
from app.services.clock import local_today
from app.services.wait_estimate import wait_defaults
from app.settings import Settings
from app.templating import get_templates, staff_page

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "kakanai_login_csrf"
# Logout, idle logout (the login page) and closing a visit empty the tablet's storage of this site.
CLEAR_STORAGE = '"storage"'
DESK_COOKIE = "kakanai_counter"
QUEUE_LABELS = {"waiting": "お待ち", "called": "呼出中", "serving": "対応中", "done": "対応済み", "skipped": "不在"}
NO_STORE = {"Cache-Control": "no-store"}
# The random id a tablet sends with each autosave (see cases.update_answers).
SAVE_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,64}")


_page = staff_page  # the signed-in user, CSRF token and idle timeout; never cached


def _cookie_secure(settings: Settings) -> bool:
    return settings.env == "production" or settings.public_base_url.startswith("https://")


def _safe_next(target: str | None) -> str:
    # Only local paths: a crafted link must not bounce a clerk to another site after login.
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return "/counter"
    return target


# --- login / logout ------------------------------------------------------------------------------------


@router.get("/")
def root() -> RedirectResponse:
    """The service's front door is the counter."""
    return RedirectResponse("/counter", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, settings: SettingsDep, next: str | None = None, expired: str | None = None) -> HTMLResponse:
    """The login form (with a double-submit CSRF token, since there is no session yet)."""
    token = secrets.token_urlsafe(24)
    message = sessions.SessionExpired.message if expired else None
    response = _page(request, "counter/login.html", {"login_csrf": token, "next": _safe_next(next), "message": message})
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_cookie_secure(settings),
                        path="/login")
    response.headers["Clear-Site-Data"] = CLEAR_STORAGE  # after a (idle) logout: no draft stays on the tablet
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, session: SessionDep, settings: SettingsDep, client: ClientDep,
    username: Annotated[str, Form(max_length=200)] = "", password: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "", next: Annotated[str, Form(max_length=500)] = "/counter",
) -> Response:
    """Check the password; on success start a session and go where the clerk was heading."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie and _cookie_secure(settings) and request.url.scheme == "http":
        # The browser kept the Secure cookie of the form to itself because the page came over plain http.
        return _https_required(request, settings)
    if not cookie or not secrets.compare_digest(cookie, csrf_token):
        return _login_again(request, settings, next, sessions.CsrfFailed.message, status=403)
    if not username or not password:
        return _login_again(request, settings, next, "ユーザー名とパスワードを入力してください", status=422,
                            username=username)
    try:
        user = auth.authenticate(session, username=username, password=password, client=client)
    except AppError as exc:  # wrong password / locked: the failure is counted and audited all the same
        return _login_again(request, settings, next, exc.message, status=exc.status, username=username)
    token, _row = sessions.create_session(session, user=user)
    target = _safe_next(next)
    if user.role == "department" and target == "/counter":
        target = "/department"  # a department clerk's day starts on the department screen
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(sessions.COOKIE_NAME, token, httponly=True, samesite="strict", secure=_cookie_secure(settings),
                        path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _https_required(request: Request, settings: Settings) -> HTMLResponse:
    # The service's https address: KAKANAI_PUBLIC_BASE_URL when it is one, else this host on port 443.
    base = settings.public_base_url.rstrip("/")
    if not base.startswith("https://"):
        host = request.url.hostname or "localhost"
        base = f"https://[{host}]" if ":" in host else f"https://{host}"
    return _page(request, "counter/https_required.html", {"https_url": f"{base}/login"}, status=400)


def _login_again(request: Request, settings: Settings, next: str, message: str, *, status: int,
                 username: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = _page(request, "counter/login.html", {"login_csrf": token, "next": _safe_next(next), "message": message,
                                                     "username": username[:64]}, status=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_cookie_secure(settings),
                        path="/login")
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, user: PageStaffUser, client: ClientDep) -> RedirectResponse:
    """End the session (the CSRF check of the dependency applies: a forged logout is refused)."""
    sessions.end_session(session, request.cookies.get(sessions.COOKIE_NAME))
    audit.record(session, action=audit.LOGOUT, actor=user, client=client)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(sessions.COOKIE_NAME, path="/")
    response.headers["Clear-Site-Data"] = CLEAR_STORAGE
    return response


# --- today's visits and starting a visit ---------------------------------------------------------------


def _life_event_choices(defs: Any) -> list[Any]:
    info = defs.fields.get("life_events")
    return list(info.field.choices or []) if info else []


@router.get("/counter", response_class=HTMLResponse)
def today(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
          user: PageCounterUser) -> HTMLResponse:
    """Today's visits at this office with their status, and the form to start a new one."""
    day = local_today(settings)
    rows = cases.list_cases(session, office=settings.office_code, day=day)
    tickets = {t.case_id: t for t in queue.list_tickets(session, office=settings.office_code, day=day)}
    labels = {c.value: c.label.split("（")[0] for c in _life_event_choices(defs)}
    visits = [{
        "case": c,
        "events": "・".join(labels.get(e, e) for e in (c.answers.get("life_events") or [])),
        "status": counter.STATUS_LABELS.get(c.status, c.status),
        "members": len((c.answers.get("household") or {}).get("members") or []),
        "queue": QUEUE_LABELS.get(tickets[c.id].status, "") if c.id in tickets else "",
    } for c in rows]
    waiting = sum(1 for t in tickets.values() if t.status == "waiting")
    return _page(request, "counter/today.html", {"day": day, "visits": visits, "choices": _life_event_choices(defs),
                                                 "tz": ZoneInfo(settings.timezone), "waiting": waiting,
                                                 "desk": _desk(request, None),
                                                 # The 手続きガイド's QR opens this page with the events ticked.
                                                 "preselected": set(request.query_params.getlist("events")),
                                                 "nobody": request.query_params.get("nobody") == "1",
                                                 "closed": request.query_params.get("closed") == "1",
                                                 "planned": [planned_visits.summary(p) for p in planned_visits.list_planned(
                                                     session, office=settings.office_code, day=day)],
                                                 "city_name": settings.city_name, "office_name": settings.office_name})


@router.post("/counter/visits")
def start_visit(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                user: PageCounterUser, life_events: Annotated[list[str] | None, Form()] = None,
                counter_no: Annotated[str | None, Form(max_length=40)] = None) -> Response:
    """Issue the visit's one ticket and open the interview with the chosen life events."""
    day = local_today(settings)
    chosen = [e for e in (life_events or []) if isinstance(e, str)][:10]
    if not chosen:
        response = today(request, session, settings, defs, user)
        return _page(request, "counter/today.html", {**response.context,  # type: ignore[attr-defined]
                                                     "start_error": "手続きのきっかけを1つ以上選んでください"}, status=422)
    desk = _desk(request, counter_no)
    case = cases.create_case(session, defs=defs, answers={"life_events": chosen, "visit_date": day.isoformat()},
                             user=user, office=settings.office_code, today=day, draft=True)
    # The resident is already at this counter: the visit's one ticket is issued and served at once.
    queue.issue_ticket(session, case=case, queues=defs.departments.keys(), defaults=wait_defaults(settings, defs))
    queue.start_service(session, case_id=case.id, counter=desk, actor=user)
    response = RedirectResponse(f"/counter/visits/{case.id}?new=1", status_code=303)
    _remember_desk(response, desk, settings)
    return response


def _desk(request: Request, value: str | None) -> str:
    # The counter (窓口) this tablet serves: typed on the today page, remembered in a cookie.
    desk = (value or request.cookies.get(DESK_COOKIE) or "1").strip()[:40]
    return desk or "1"


def _remember_desk(response: Response, desk: str, settings: Settings) -> None:
    response.set_cookie(DESK_COOKIE, desk, httponly=True, samesite="strict", secure=_cookie_secure(settings),
                        path="/counter", max_age=60 * 60 * 24 * 30)


@router.post("/counter/call-next")
def call_next(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
              user: PageCounterUser, counter_no: Annotated[str | None, Form(max_length=40)] = None) -> Response:
    """Call the next waiting ticket (reception-issued, priority first) to this counter."""
    desk = _desk(request, counter_no)
    ticket = queue.call_next(session, office=settings.office_code, day=local_today(settings), counter=desk,
                             actor=user)
    if ticket is None:
        response = RedirectResponse("/counter?nobody=1", status_code=303)
    else:
        response = RedirectResponse(f"/counter/visits/{ticket.case_id}?called=1", status_code=303)
    _remember_desk(response, desk, settings)
    return response


@router.post("/counter/visits/{case_id}/queue/{action}")
def queue_action(request: Request, case_id: str, action: str, session: SessionDep, settings: SettingsDep,
                 defs: DefinitionsDep, user: PageCounterUser) -> RedirectResponse:
    """Recall, skip (no-show), start or finish the service of the visit's ticket at this counter."""
    desk = _desk(request, None)
    if action == "recall":
        queue.recall(session, case_id=case_id, counter=desk, actor=user)
    elif action == "skip":
        queue.skip(session, case_id=case_id, actor=user)
        return RedirectResponse("/counter", status_code=303)
    elif action == "start":
        queue.start_service(session, case_id=case_id, counter=desk, actor=user)
    elif action == "finish":
        queue.finish_service(session, case_id=case_id, actor=user)
        # With the slip out and nobody needing them, the resident may go home while the departments work.
        routing.release_if_possible(session, defs=defs, case_id=case_id, actor=user)
        return RedirectResponse("/counter", status_code=303)
    else:
        raise NotFound("この操作はありません")
    return RedirectResponse(f"/counter/visits/{case_id}", status_code=303)


@router.post("/counter/visits/{case_id}/close", response_class=HTMLResponse)
def close_visit(request: Request, case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                user: PageCounterUser) -> Response:
    """The exit check: close the visit, or list what was missed (open steps, no signature, ...)."""
    try:
        routing.close_case(session, defs=defs, case_id=case_id, actor=user)
    except routing.VisitNotFinished as exc:
        case = cases.get_case_or_raise(session, case_id)
        return _page(request, "counter/exit_check.html", {"case": case, "missed": exc.missed}, status=409)
    response = RedirectResponse("/counter?closed=1", status_code=303)
    # The visit is over: no draft of it may stay in the tablet's storage (cookies stay: still logged in).
    response.headers["Clear-Site-Data"] = CLEAR_STORAGE
    return response


# --- the interview -------------------------------------------------------------------------------------


def _screen_context(defs: Any, case: Case, settings: Settings, *, errors: dict[str, str] | None = None) -> dict[str, Any]:
    today = local_today(settings)
    missing = cases.missing_answers(defs, case, today=today)
    side = counter.panel(defs, case.answers, missing_paths=missing, case_number=case.case_number)
    return {
        "case": case,
        "sections": counter.build_screen(defs, case.answers, errors=errors, needed=side.needed),
        "panel": side,
        "address_labels": counter.ADDRESS_LABELS,
        "status_label": counter.STATUS_LABELS.get(case.status, case.status),
    }


@router.get("/counter/visits/{case_id}", response_class=HTMLResponse)
def interview(request: Request, case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
              user: PageCounterUser, client: ClientDep, new: str | None = None) -> HTMLResponse:
    """The one interview, generated from interview.yaml, with the applications panel beside it."""
    case = cases.get_case_or_raise(session, case_id)
    audit.record(session, action=audit.CASE_READ, actor=user, case_id=case.id, target="counter/interview", client=client)
    ticket = session.get(QueueTicket, case.id)
    return _page(request, "counter/interview.html", {
        **_screen_context(defs, case, settings), "new": bool(new), "ticket": ticket,
        "ticket_label": QUEUE_LABELS.get(ticket.status, "") if ticket else "",
        "card_marks": answer_sources.screen_marks(answer_sources.unconfirmed(session, case_id=case.id), case.answers),
        "last_save_token": cases.last_save_token(session, case),
    })


@router.post("/counter/visits/{case_id}/answers")
def save_answers(
    request: Request, case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
    user: PageCounterUser, client: ClientDep,
    payload: Annotated[dict[str, Any], Body()],
) -> JSONResponse:
    """Autosave from the screen: stores what is valid, returns field errors, visibility and the side panel."""
    version = payload.get("version")
    answers = payload.get("answers")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValidationFailed(details=[{"field": "version", "message": "版（version）を整数で送ってください"}])
    token = payload.get("save_token")
    if token is not None and not (isinstance(token, str) and SAVE_TOKEN.fullmatch(token)):
        raise ValidationFailed(details=[{"field": "save_token", "message": "保存の識別子が不正です"}])
    case = cases.get_case_or_raise(session, case_id)
    result = counter.autosave(session, defs=defs, case=case, raw=answers, expected_version=version, user=user,
                              today=local_today(settings), save_token=token)
    if result.saved:
        audit.record(session, action=audit.CASE_UPDATED, actor=user, case_id=case.id, target="counter/autosave",
                     client=client)
    case = result.case
    errors = {e.field: e.message for e in result.errors}
    context = _screen_context(defs, case, settings, errors=errors)
    panel_html = get_templates().env.get_template("counter/_panel.html").render(panel=context["panel"], case=case)
    return JSONResponse({
        "version": case.version,
        "saved": result.saved,
        "errors": [{"field": e.field, "message": e.message} for e in result.errors],
        "visibility": counter.visibility(defs, case.answers),
        "normalised": _normalised_values(context["sections"]),
        "panel_html": panel_html,
        "needed": context["panel"].needed,
        "complete": case.complete,
    }, headers=NO_STORE)


def _normalised_values(sections: list[counter.SectionView]) -> dict[str, Any]:
    # The stored (normalised) value of each field, so the screen can show カタカナ, ISO dates, codes.
    out: dict[str, Any] = {}
    for section in sections:
        for f in section.fields + [f for item in section.items for f in item.fields]:
            if f.kind == "address":
                out[f.full_path] = f.value if isinstance(f.value, dict) else {}
            elif f.value is not None:
                out[f.full_path] = f.text() if f.kind != "multi_choice" else f.value
    return out


@router.get("/counter/visits/{case_id}/version")
def case_version(case_id: str, session: SessionDep, user: PageCounterUser) -> JSONResponse:
    """The version now stored (a tab in conflict takes it before overwriting by the clerk's choice)."""
    case = cases.get_case_or_raise(session, case_id)
    return JSONResponse({"version": case.version}, headers=NO_STORE)


@router.get("/counter/postal")
def postal(user: PageCounterUser, code: Annotated[str, Query(max_length=16)] = "") -> JSONResponse:
    """Prefecture / city / town for a postal code (the screen fills them in)."""
    found = counter.postal_lookup(code)
    if found is None:
        return JSONResponse({"found": False, "message": "この郵便番号は見つかりません"}, headers=NO_STORE)
    return JSONResponse({"found": True, **found}, headers=NO_STORE)


# --- review, signature, documents ----------------------------------------------------------------------


@router.get("/counter/visits/{case_id}/review", response_class=HTMLResponse)
def review(request: Request, case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
           user: PageCounterUser, client: ClientDep) -> HTMLResponse:
    """Everything the resident will sign, in large type; then the signature pad."""
    case = cases.get_case_or_raise(session, case_id)
    audit.record(session, action=audit.CASE_READ, actor=user, case_id=case.id, target="counter/review", client=client)
    problems = counter.check_complete(defs, case, today=local_today(settings))
    forms = [] if problems else counter.review(defs, case)
    if not problems and not any(e.kind == events.INTERVIEW_ENDED for e in case.events):
        cases.record_event(session, case, events.INTERVIEW_ENDED, actor=user)
    return _page(request, "counter/review.html", {
        "case": case, "problems": problems, "forms": forms, "warnings": documents.print_warnings_view(case),
        "roles": counter.role_rows(defs, case), "redirects": counter.redirect_notes(defs, case),
        "summary": [] if problems else counter.household_summary(defs, case),
        "signers": signatures.signers(session, defs, case),
        "pre_changes": pre_entry.changes(session, defs=defs, case=case),
        "late": documents.late_notes(documents.list_applications(defs, case)),
        "previews": _previews_by_form(session, defs, case, settings) if forms else {},
    })


def _previews_by_form(session: Any, defs: Any, case: Case, settings: Settings) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for p in page_previews.preview_pages(session, defs=defs, case=case, city_name=settings.city_name):
        out.setdefault(p.instance_id, []).append(p)
    return out


@router.get("/counter/visits/{case_id}/preview/{version}/{index}.png")
def preview_png(case_id: str, version: int, index: int, session: SessionDep, settings: SettingsDep,
                defs: DefinitionsDep, user: PageCounterUser, client: ClientDep) -> Response:
    """One page of the visit's forms as an image, for the review before signing (same access as the PDFs)."""
    png = page_previews.preview_png(session, defs=defs, case_id=case_id, version=version, index=index,
                                    city_name=settings.city_name)
    audit.record(session, action=audit.CASE_READ, actor=user, case_id=case_id, target=f"preview page {index}",
                 client=client)
    return Response(png, media_type="image/png", headers=NO_STORE)


@router.post("/counter/visits/{case_id}/roles")
def choose_role(request: Request, case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                user: PageCounterUser, client: ClientDep,
                instance_id: Annotated[str, Form(max_length=100)], role_id: Annotated[str, Form(max_length=64)],
                person: Annotated[str, Form(max_length=20)]) -> RedirectResponse:
    """The clerk confirms or changes who takes a role (届出人, 請求者, 口座名義人 …) on one form."""
    case = cases.get_case_or_raise(session, case_id)
    counter.choose_role(session, defs=defs, case=case, instance_id=instance_id, role_id=role_id, person=person,
                        user=user, today=local_today(settings))
    audit.record(session, action=audit.CASE_UPDATED, actor=user, case_id=case.id, target=f"roles {instance_id}",
                 client=client)
    return RedirectResponse(f"/counter/visits/{case_id}/review#roles", status_code=303)


@router.post("/counter/visits/{case_id}/signature")
async def signature(request: Request, case_id: str, session: SessionDep, settings: SettingsDep,
                    defs: DefinitionsDep, user: PageCounterUser, client: ClientDep,
                    signer: Annotated[str | None, Query(max_length=20)] = None) -> JSONResponse:
    """One signer's signature, drawn once on the tablet (PNG body); used only on that person's forms."""
    png = await request.body()
    case = documents.store_signature(session, defs=defs, case_id=case_id, png=png,
                                     max_bytes=settings.max_signature_bytes, actor=user, signer=signer)
    audit.record(session, action=audit.SIGNATURE_SAVED, actor=user, case_id=case.id, client=client)
    # Another person still has forms to sign: back to the pad for them; otherwise on to the documents.
    waiting = [s for s in signatures.signers(session, defs, case) if s.waiting]
    target = f"/counter/visits/{case.id}/review#sign" if waiting else f"/counter/visits/{case.id}/documents"
    return JSONResponse({"signed": True, "next": target, "waiting": [s.signer for s in waiting]}, headers=NO_STORE)


@router.get("/counter/visits/{case_id}/documents", response_class=HTMLResponse)
def documents_page(request: Request, case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                   user: PageCounterUser, client: ClientDep) -> HTMLResponse:
    """The generated forms: print or download the bundle or each form, and the routing slip."""
    case = cases.get_case_or_raise(session, case_id)
    audit.record(session, action=audit.CASE_READ, actor=user, case_id=case.id, target="counter/documents", client=client)
    apps = [documents.application_view(defs, inst) for inst in documents.list_applications(defs, case)]
    external = [documents.application_view(defs, inst) for inst in documents.list_external_steps(defs, case)]
    slip = _routing_slip(session, defs, case, user)
    return _page(request, "counter/documents.html", {
        "case": case, "applications": apps, "external_steps": external, "slip": slip,
        "fee_total": sum(a["fee_total"] for a in apps), "ticket": session.get(QueueTicket, case.id),
        "status_url": f"{settings.public_base_url.rstrip('/')}/q/{case.status_token}",
    })


def _routing_slip(session: Any, defs: Any, case: Case, user: User) -> list[dict[str, Any]] | None:
    # The routing slip is built once the resident has signed; departments then pull their steps.
    # build_slip is idempotent: it keeps step statuses and only adds or cancels what changed.
    if case.signed_at is None:
        return None
    routing.build_slip(session, defs=defs, case=case, actor=user)
    return routing.slip_view(session, defs=defs, case=case)["steps"]


@router.get("/counter/visits/{case_id}/slip.pdf")
def slip_pdf(case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, user: PageCounterUser,
             client: ClientDep) -> Response:
    """The one-page routing slip with the QR code to the resident page."""
    pdf, filename = routing.render_slip_pdf(session, defs=defs, case_id=case_id, city_name=settings.city_name,
                                            office_name=settings.office_name, base_url=settings.public_base_url)
    audit.record(session, action=audit.PDF_DOWNLOAD, actor=user, case_id=case_id, target=filename, client=client)
    return _pdf(documents.Pdf(pdf, filename), download=False)


@router.get("/counter/visits/{case_id}/bundle.pdf")
def bundle(case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, user: PageCounterUser,
           client: ClientDep, download: bool = False) -> Response:
    """Every form of the visit in one PDF (to print, or to download with ?download=1)."""
    pdf = documents.render_bundle_pdf(session, defs=defs, case_id=case_id, city_name=settings.city_name, actor=user)
    audit.record(session, action=audit.PDF_DOWNLOAD, actor=user, case_id=case_id, target="bundle", client=client)
    return _pdf(pdf, download=download)


@router.get("/counter/visits/{case_id}/forms/{instance_id}/overlay.pdf")
def form_overlay_pdf(case_id: str, instance_id: str, session: SessionDep, settings: SettingsDep,
                     defs: DefinitionsDep, user: PageCounterUser, client: ClientDep,
                     printer: Annotated[str, Query(max_length=40)] = "", preview: bool = False) -> Response:
    """Values only at the official positions, to print onto the sheet the resident brought (出生届 A3)."""
    offset = settings.printer_offsets.get(printer, (0.0, 0.0))
    pdf = documents.render_overlay_pdf(session, defs=defs, case_id=case_id, instance_id=instance_id,
                                       city_name=settings.city_name, offset_mm=offset, preview=preview, actor=user)
    audit.record(session, action=audit.PDF_DOWNLOAD, actor=user, case_id=case_id,
                 target=f"{instance_id}.overlay.pdf", client=client)
    return _pdf(pdf, download=False)


@router.get("/counter/calibration.pdf")
def calibration(settings: SettingsDep, user: PageCounterUser,
                printer: Annotated[str, Query(max_length=40)] = "") -> Response:
    """The printer calibration page for the overlay print mode."""
    offset = settings.printer_offsets.get(printer, (0.0, 0.0))
    return _pdf(documents.calibration_pdf(offset_mm=offset, printer=printer), download=False)


@router.get("/counter/visits/{case_id}/handbook.pdf")
def handbook(case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, user: PageCounterUser,
             client: ClientDep, download: bool = False) -> Response:
    """The resident's handbook: every step in the city and outside it, with place and deadline."""
    pdf = documents.render_handbook_pdf(session, defs=defs, case_id=case_id, city_name=settings.city_name, actor=user)
    audit.record(session, action=audit.PDF_DOWNLOAD, actor=user, case_id=case_id, target="handbook", client=client)
    return _pdf(pdf, download=download)


@router.get("/counter/visits/{case_id}/forms/{instance_id}.pdf")
def form_pdf(case_id: str, instance_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
             user: PageCounterUser, client: ClientDep, download: bool = False) -> Response:
    """One form as a PDF."""
    pdf = documents.render_instance_pdf(session, defs=defs, case_id=case_id, instance_id=instance_id,
                                        city_name=settings.city_name, actor=user)
    audit.record(session, action=audit.PDF_DOWNLOAD, actor=user, case_id=case_id, target=instance_id[:100],
                 client=client)
    return _pdf(pdf, download=download)


def _pdf(pdf: documents.Pdf, *, download: bool) -> Response:
    disposition = "attachment" if download else "inline"
    return Response(pdf.content, media_type="application/pdf", headers={
        "Content-Disposition": f'{disposition}; filename="{pdf.filename}"', **NO_STORE,
    })
