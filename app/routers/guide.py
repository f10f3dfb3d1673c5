"""The public procedures guide /guide (手続きガイド): no login, nothing stored, in the resident languages."""

from __future__ import annotations

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.deps import DefinitionsDep, SettingsDep
from app.i18n import N_, gettext_for
from app.routers.resident import PRIVATE_HEADERS, language, page_context, remember_language
from app.services import guide
from app.services.clock import local_today
from app.templating import get_templates

router = APIRouter(tags=["guide"])

# Life-event labels and questions of the guide; the Japanese text is the gettext message id.
EVENT_LABELS = {
    "move_in": N_("引っ越してきた（転入）"),
    "move_out": N_("市外へ引っ越す（転出）"),
    "move_within": N_("市内で引っ越した（転居）"),
    "household_change": N_("世帯を分ける・合わせる・世帯主が変わる"),
    "birth": N_("子どもが生まれた"),
    "childcare": N_("保育所などを使いたい"),
    "pregnancy": N_("妊娠した"),
    "death": N_("家族が亡くなった（おくやみ）"),
    "marriage": N_("結婚する"),
    "divorce": N_("離婚する"),
    "certificates": N_("証明書がほしい（住民票・印鑑・戸籍・税）"),
}

CHILD_BANDS = {"preschool": N_("小学校に入る前"), "school": N_("小学生・中学生"), "highschool": N_("高校生の年代")}


def qr_code_svg(url: str) -> str:
    """The QR code of a URL as inline SVG (deterministic: the same URL gives the same SVG)."""
    return segno.make(url, error="m").svg_inline(scale=4, title="QR")


@router.get("/guide", response_class=HTMLResponse)
def guide_page(request: Request, settings: SettingsDep, defs: DefinitionsDep) -> Response:
    """Questions about the life event, then the procedures with counter, deadline and what to bring."""
    lang = language(request)
    answers = guide.parse_guide(request.query_params, request.query_params.getlist)
    steps = guide.guide_steps(defs, answers, local_today(settings), lang=lang, gettext=gettext_for(lang))
    qr_svg = counter_url = ""
    if answers.events:
        counter_url = guide.counter_start_url(settings.public_base_url, answers)
        qr_svg = qr_code_svg(counter_url)
    context = {**page_context(request, lang), "answers": answers, "steps": steps, "events": EVENT_LABELS, "bands": CHILD_BANDS,
               "qr_svg": qr_svg, "counter_url": counter_url, "query": answers.query(),
               "untranslated": guide.has_fallback(steps), "fee_total": sum(s["fee_total"] for s in steps)}
    response = get_templates().TemplateResponse(request, "guide/guide.html", context, headers=PRIVATE_HEADERS)
    return remember_language(request, response, lang)
