"""The one Jinja2 environment for server-rendered pages (counter, slip, resident, board, dashboard)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.forms.wareki import format_wareki
from app.settings import PROJECT_ROOT

TEMPLATE_DIR = PROJECT_ROOT / "templates"


def _wareki(value: Any) -> str:
    """An ISO date (or date) as 令和8年4月6日; anything else unchanged."""
    try:
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    try:
        return format_wareki(day)
    except ValueError:
        return day.isoformat()


@lru_cache(maxsize=1)
def get_templates() -> Jinja2Templates:
    """Jinja2 templates with autoescaping and the i18n extension (gettext installed per request)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True, extensions=["jinja2.ext.i18n"],
    )
    templates = Jinja2Templates(env=env)
    # Pages that do not install translations still render their Japanese source text.
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    env.filters["wareki"] = _wareki
    return templates


def staff_page(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    """A staff page (counter, department, reception): the signed-in user, the CSRF token and the idle timeout
    from the request's staff session, never cached (it shows personal data)."""
    row = getattr(request.state, "staff_session", None)
    base = {"user": row.user if row else None, "csrf_token": row.csrf_token if row else "",
            "idle_minutes": request.app.state.settings.session_idle_minutes if row else 0}
    response = get_templates().TemplateResponse(request, name, {**base, **context}, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response
