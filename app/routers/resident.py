"""The resident's phone page /q/<token>, its JSON and its Server-Sent Events stream (no login).

The status token in the URL (96 random bits, printed as a QR code) is the only credential: the page
shows nothing personal, and the one write it allows (the satisfaction answer, once per visit) needs
no CSRF token because a forged cross-site post would have to know the unguessable token itself.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from app import capacity, i18n
from app.deps import SessionDep
from app.errors import AppError, NotFound
from app.services import resident_status
from app.services.live import MAX_SUBSCRIBERS, Hub, read_sessions
from app.services.resident_status import StatusCache
from app.services.wait_estimate import wait_defaults
from app.templating import get_templates

router = APIRouter(tags=["resident"])

PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
SSE_HEADERS = {**PRIVATE_HEADERS, "X-Accel-Buffering": "no", "Connection": "keep-alive"}
RETRY_MS = 3000
HEARTBEAT_SECONDS = 15.0
FALLBACK_RECHECK_SECONDS = 5.0
COOKIE_MAX_AGE = 365 * 24 * 3600


def status_cache(app: FastAPI) -> StatusCache:
    """The process's status cache (tied to its live hub)."""
    cache = getattr(app.state, "status_cache", None)
    if cache is None:
        cache = app.state.status_cache = StatusCache(getattr(app.state, "live", None))
    return cache


def language(request: Request) -> str:
    """The page language: `?lang=`, then the cookie, then Accept-Language."""
    return i18n.choose(request.query_params.get("lang"), request.cookies.get(i18n.COOKIE),
                       request.headers.get("accept-language"))


def remember_language(request: Request, response: Response, lang: str) -> Response:
    """The switcher's choice is kept in a cookie for the next visits of any resident page."""
    if i18n.normalize(request.query_params.get("lang")) == lang and request.cookies.get(i18n.COOKIE) != lang:
        response.set_cookie(i18n.COOKIE, lang, max_age=COOKIE_MAX_AGE, httponly=True, samesite="lax", path="/")
    return response


def page_context(request: Request, lang: str) -> dict[str, Any]:
    """What every resident and board page needs: gettext, the language links, the city's name."""
    language_ = i18n.LANGUAGES[lang]
    return {**i18n.template_gettext(lang), "lang": lang, "html_lang": language_.html_lang,
            "languages": i18n.switcher(lang), "city_name": request.app.state.settings.city_name}


def _view(app: FastAPI, token: str, lang: str, *, use_cache: bool = True) -> tuple[str, dict[str, Any]]:
    """Build the localized status from the database (runs in a worker thread)."""
    settings = app.state.settings
    defs = app.state.definitions.current
    cache = status_cache(app)
    # One short read-only session per build; SSE streams hold no session between updates.
    with read_sessions(app)() as session:
        # Read-only: never queue behind a writer (SQLite otherwise begins IMMEDIATE), not even this request's own.
        session.connection(execution_options={"sqlite_begin": "DEFERRED"})
        raw = resident_status.build_status(session, token=token, defs=defs, defaults=wait_defaults(settings, defs),
                                           cache=cache, use_cache=use_cache)
    view = (cache.reuse(token, lang, raw) if use_cache else None) \
        or resident_status.localize(raw, defs=defs, lang=lang, gettext=i18n.gettext_for(lang))
    if use_cache:
        cache.keep_view(token, lang, raw, view)
    return raw["case_id"], view


def _cached_view(app: FastAPI, token: str, lang: str) -> tuple[str, dict[str, Any]] | None:
    """The localized status from the process's caches alone (no database, safe on the event loop)."""
    cache = status_cache(app)
    view = cache.view(token, lang)
    case_id = cache.case_id(token)
    if view is not None and case_id is not None:
        return case_id, view
    raw = resident_status.cached_status(cache, token)
    if raw is None:
        return None
    defs = app.state.definitions.current
    view = cache.reuse(token, lang, raw) or resident_status.localize(raw, defs=defs, lang=lang,
                                                                     gettext=i18n.gettext_for(lang))
    cache.keep_view(token, lang, raw, view)
    return raw["case_id"], view


async def read_view(app: FastAPI, token: str, lang: str, *, use_cache: bool = True) -> tuple[str, dict[str, Any]]:
    """Build the status in a worker thread, after taking one of the process's database slots (the
    same admission as every request's session: app/capacity.py), so that phones woken by a call can
    never take every thread while requests that hold connections wait for one."""
    sem = await capacity.gate(app).acquire()
    try:
        return await run_in_threadpool(functools.partial(_view, app, token, lang, use_cache=use_cache))
    finally:
        sem.release()


async def current_view(app: FastAPI, token: str, lang: str) -> tuple[str, dict[str, Any]]:
    """The status to send: from the caches when nothing changed, else read in a worker thread."""
    return _cached_view(app, token, lang) or await read_view(app, token, lang)


def _not_found_page(request: Request, lang: str) -> Response:
    context = {**page_context(request, lang), "message": i18n.gettext_for(lang)(resident_status.NOT_FOUND)}
    response = get_templates().TemplateResponse(request, "resident/not_found.html", context, status_code=404,
                                                headers=PRIVATE_HEADERS)
    return remember_language(request, response, lang)


def _render_page(request: Request, token: str, lang: str, *, errors: list[dict[str, str]] | None = None,
                 comment: str = "", status_code: int = 200, view: dict[str, Any] | None = None) -> Response:
    if view is None:
        try:
            # Always fresh: the page is loaded once, then kept current by SSE or polling.
            _case_id, view = _view(request.app, token, lang, use_cache=False)
        except NotFound:
            return _not_found_page(request, lang)
    context = {
        **page_context(request, lang), "status": view, "token": token,
        "json_url": f"/api/v1/status/{token}?lang={lang}", "events_url": f"/q/{token}/events?lang={lang}",
        "satisfaction_url": f"/q/{token}/satisfaction", "errors": errors or [], "form_comment": comment,
        "thanks": request.query_params.get("thanks") == "1",
    }
    response = get_templates().TemplateResponse(request, "resident/status.html", context, status_code=status_code,
                                                headers=PRIVATE_HEADERS)
    return remember_language(request, response, lang)


@router.get("/q/{token}", response_class=HTMLResponse, summary="住民向け：手続きの状況（スマートフォン）")
async def resident_page(token: str, request: Request) -> Response:
    """Ticket number, place in the queue, each department's step, what to bring; in the resident's language."""
    lang = language(request)
    try:
        _case_id, view = await read_view(request.app, token, lang, use_cache=False)
    except NotFound:
        return _not_found_page(request, lang)
    return _render_page(request, token, lang, view=view)


@router.post("/q/{token}/satisfaction", response_class=HTMLResponse, summary="住民向け：手続満足度（フォーム送信）")
def satisfaction_form(
    token: str, request: Request, session: SessionDep,
    score: Annotated[str, Form(max_length=10)] = "", comment: Annotated[str, Form(max_length=2000)] = "",
    lang: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """The plain form post (works without JavaScript); errors come back on the page in the resident's language."""
    chosen = i18n.normalize(lang) or language(request)
    try:
        resident_status.submit_satisfaction(session, token=token, score=score, comment=comment, language=chosen)
    except NotFound:
        return _not_found_page(request, chosen)
    except AppError as exc:
        if exc.status == 409:  # already answered (or not yet asked): the page says which
            return RedirectResponse(f"/q/{token}", status_code=303, headers=PRIVATE_HEADERS)
        details = exc.details if isinstance(exc.details, list) else [{"field": "", "message": exc.message}]
        return _render_page(request, token, chosen, errors=details, comment=comment[:500], status_code=422)
    status_cache(request.app).forget(token)
    return RedirectResponse(f"/q/{token}?thanks=1", status_code=303, headers=PRIVATE_HEADERS)


def not_modified(request: Request, tag: str) -> bool:
    """Whether the client's If-None-Match already names this entity tag."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    return header.strip() == "*" or tag in {t.strip().removeprefix("W/") for t in header.split(",")}


@router.get("/api/v1/status/{token}", summary="住民向け：手続きの状況（JSON）",
            responses={304: {"description": "If-None-Match の ETag から変わっていません（本文なし）"}})
async def status_json(token: str, request: Request) -> Response:
    """The same data as the page, with every word in the chosen language (`?lang=`, cookie, Accept-Language).

    Every answer carries an `ETag`; a poll that sends it back in `If-None-Match` gets `304 Not Modified`
    (no body) while nothing changed. The status is kept per visit and language in the process and
    dropped as soon as the live watcher sees an event of the visit or of its queue.
    """
    lang = language(request)
    hit = status_cache(request.app).encoded(token, lang)
    if hit is None:
        try:
            _case_id, view = await current_view(request.app, token, lang)
        except NotFound as exc:
            message = i18n.gettext_for(lang)(exc.message)
            return JSONResponse({"error": exc.code, "message": message}, status_code=404, headers=PRIVATE_HEADERS)
        hit = resident_status.etag(view), resident_status.encode(view)
    tag, body = hit
    if not_modified(request, tag):
        return Response(status_code=304, headers={**PRIVATE_HEADERS, "ETag": tag})
    return Response(body, media_type="application/json", headers={**PRIVATE_HEADERS, "ETag": tag})


@router.post("/api/v1/status/{token}/satisfaction", status_code=201, summary="住民向け：手続満足度（JSON）")
def satisfaction_json(
    token: str, request: Request, session: SessionDep,
    body: Annotated[dict[str, Any], Body(examples=[{"score": 5, "comment": ""}])],
) -> JSONResponse:
    """Store the one answer of the visit: `score` 1-5 and an optional `comment` (≤ 500 characters)."""
    resident_status.submit_satisfaction(session, token=token, score=body.get("score"), comment=body.get("comment", ""),
                                        language=language(request))
    status_cache(request.app).forget(token)
    return JSONResponse({"status": "stored"}, status_code=201, headers=PRIVATE_HEADERS)


def sse(event: str, data: dict[str, Any], *, event_id: str | None = None) -> str:
    """One Server-Sent Events message (the JSON stays on one line)."""
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id else "")
    return head + "data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n\n"


async def stream_updates(
    request: Request, hub: Hub, case_id: str | None, compute: Callable[[], Awaitable[dict[str, Any] | None]],
    first: dict[str, Any], *, event: str, max_seconds: float,
) -> AsyncIterator[str]:
    """Send `first`, then a new message whenever the hub says it may have changed; heartbeat comments between."""
    loop = asyncio.get_running_loop()
    sub = hub.subscribe(case_id)
    gone = asyncio.Event()

    async def watch_disconnect() -> None:
        # A phone that leaves is noticed at once (not at the next heartbeat), freeing its subscription.
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone.set()
        sub.wake()

    watcher = asyncio.create_task(watch_disconnect())
    try:
        yield f"retry: {RETRY_MS}\n\n"
        view: dict[str, Any] | None = first
        sent_version: str | None = None
        deadline = loop.time() + max_seconds
        last_sent = loop.time()
        while True:
            if view is None:
                yield sse("gone", {})
                return
            if view.get("version") != sent_version:
                sent_version = view.get("version")
                yield sse(event, view, event_id=sent_version)
                last_sent = loop.time()
            remaining = deadline - loop.time()
            if remaining <= 0 or hub.closed:
                return  # the browser reconnects after `retry`
            # Without a running watcher nothing wakes us: look again every few seconds instead.
            timeout = HEARTBEAT_SECONDS if hub.running else FALLBACK_RECHECK_SECONDS
            woken = await sub.wait(min(timeout, remaining))
            if hub.closed or gone.is_set():
                return
            if woken or not hub.running:
                view = await compute()
            if loop.time() - last_sent >= HEARTBEAT_SECONDS - 0.5:
                yield ": keepalive\n\n"
                last_sent = loop.time()
    finally:
        watcher.cancel()
        hub.unsubscribe(sub)


@router.get("/q/{token}/events", summary="住民向け：手続きの状況（Server-Sent Events）",
            response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def status_events(token: str, request: Request) -> Response:
    """`event: status` with the status JSON on connect and on every change; `: keepalive` every 15 s."""
    app = request.app
    lang = language(request)

    async def compute() -> dict[str, Any] | None:
        try:
            return (await current_view(app, token, lang))[1]
        except NotFound:
            return None

    try:
        case_id, first = await current_view(app, token, lang)
    except NotFound as exc:
        return JSONResponse({"error": exc.code, "message": i18n.gettext_for(lang)(exc.message)}, status_code=404,
                            headers=PRIVATE_HEADERS)
    hub: Hub = app.state.live
    if hub.subscriber_count >= MAX_SUBSCRIBERS:
        return busy()
    stream = stream_updates(request, hub, case_id, compute, first, event="status",
                            max_seconds=app.state.settings.live_stream_max_seconds)
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


def busy() -> JSONResponse:
    """This process streams to as many clients as it will; the browser retries (or polls)."""
    return JSONResponse({"error": "busy", "message": "ただいま混み合っています。しばらくしてからもう一度お試しください"},
                        status_code=503, headers={**PRIVATE_HEADERS, "Retry-After": "10"})

