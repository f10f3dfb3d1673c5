"""/docs (Swagger UI) and /redoc (ReDoc) from the assets shipped in app/static/vendor: no CDN, no inline script."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.templating import get_templates

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over /openapi.json (try-it-out with a bearer token)."""
    return get_templates().TemplateResponse(request, "docs/swagger.html", {"openapi_url": request.app.openapi_url,
                                                                           "title": request.app.title})


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    """ReDoc over /openapi.json (the reference to read)."""
    return get_templates().TemplateResponse(request, "docs/redoc.html", {"openapi_url": request.app.openapi_url,
                                                                         "title": request.app.title})
