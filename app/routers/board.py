"""The waiting-room display board: numbers being called and where, live (SSE) with polling as fallback.

No login and no personal data: ticket numbers, counters and queue names only.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from app import i18n
from app.services import queue
from app.services.clock import local_today
from app.services.live import MAX_SUBSCRIBERS, Hub, read_sessions
from app.templating import get_templates

from .resident import PRIVATE_HEADERS, SSE_HEADERS, busy, page_context, stream_updates

router = APIRouter(tags=["board"])


def language(request: Request) -> str:
    """A screen for everyone in the room: Japanese unless the screen's URL says `?lang=`."""
    return i18n.normalize(request.query_params.get("lang")) or i18n.DEFAULT
_lock = threading.Lock()


def _board(app: FastAPI, lang: str) -> dict[str, Any]:
    settings = app.state.settings
    defs = app.state.definitions.current
    hub: Hub | None = getattr(app.state, "live", None)
    day = local_today(settings)
    # Every board of the process shows the same thing: build it once per queue change.
    seq = hub.queue_seq if hub is not None and hub.running else None
    cached = getattr(app.state, "board_cache", None)
    if seq is not None and cached is not None and cached[0] == (seq, day):
        raw = cached[1]
    else:
        with read_sessions(app)() as session:
            raw = queue.board_view(session, office=settings.office_code, day=day)
        if seq is not None:
            with _lock:
                app.state.board_cache = ((seq, day), raw)
    _ = i18n.gettext_for(lang)

    def queue_name(queue_id: str) -> str:
        dep = defs.departments.get(queue_id)
        return _(dep.name) if dep is not None else _("総合窓口")

    def place(queue_id: str) -> str:
        dep = defs.departments.get(queue_id)
        return _(dep.location) if dep is not None and dep.location else ""

    def row(item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "queue_name": queue_name(item["queue"]), "place": place(item["queue"]),
                "counter_text": _("%(counter)s番窓口") % {"counter": item["counter"]},
                "speech": speech(item)}

    def speech(item: dict[str, Any]) -> str:
        # The spoken call is always Japanese (the room's common language); the number is said as a number.
        dep = defs.departments.get(item["queue"])
        where = f"{dep.name}、{item['counter']}番窓口" if dep is not None else f"{item['counter']}番窓口"
        return f"受付番号、{item['number']}番の方。{where}へお越しください。"

    view = {"lang": lang, "calling": [row(r) for r in raw["calling"]], "recent": [row(r) for r in raw["recent"]],
            "waiting_total": raw["waiting_total"],
            "waiting_text": _("お待ちの方：%(count)s人") % {"count": raw["waiting_total"]}}
    view["version"] = hashlib.sha256(json.dumps(view, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]
    return view


@router.get("/board", response_class=HTMLResponse, summary="待合室の表示板")
def board_page(request: Request) -> Response:
    """Large numbers being called and at which counter, and the last few called."""
    lang = language(request)
    view = _board(request.app, lang)
    context = {**page_context(request, lang), "board": view, "json_url": f"/board/data?lang={lang}",
               "events_url": f"/board/events?lang={lang}"}
    return get_templates().TemplateResponse(request, "board/board.html", context, headers=PRIVATE_HEADERS)


@router.get("/board/data", summary="待合室の表示板（JSON、ポーリング用）")
def board_data(request: Request) -> JSONResponse:
    """The board's content as JSON."""
    return JSONResponse(_board(request.app, language(request)), headers=PRIVATE_HEADERS)


@router.get("/board/events", summary="待合室の表示板（Server-Sent Events）", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def board_events(request: Request) -> Response:
    """`event: board` on connect and whenever a ticket is called, recalled, skipped, transferred or served."""
    app = request.app
    lang = language(request)
    hub: Hub = app.state.live
    if hub.subscriber_count >= MAX_SUBSCRIBERS:
        return busy()
    async def compute() -> dict[str, Any]:
        return await run_in_threadpool(_board, app, lang)

    first = await compute()
    stream = stream_updates(request, hub, None, compute, first, event="board",
                            max_seconds=app.state.settings.live_stream_max_seconds)
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)
