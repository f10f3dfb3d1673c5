"""/docs (Swagger UI) and /redoc (ReDoc) from the assets shipped in app/static/vendor: no CDN, no inline script."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

from app.forms.answers_schema import answers_json_schema
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


def install_answers_schema(app: FastAPI, example_file: Path) -> None:
    """Publish the answers document's JSON Schema (from the current interview.yaml) in /openapi.json as
    the request body of POST /api/v1/cases and of `answers` in PUT …/answers, with the model household
    as the example. Only the documentation changes: the service validates answers itself (422)."""
    example = json.loads(example_file.read_text(encoding="utf-8")) if example_file.is_file() else None
    built: dict[str, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        defs = app.state.definitions.current
        if defs.fingerprint not in built:  # a definitions reload changes the schema
            built.clear()
            built[defs.fingerprint] = _with_answers(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes,
            ), answers_json_schema(defs.interview, example=example), example)
        return built[defs.fingerprint]

    app.openapi = openapi  # type: ignore[method-assign]


def _with_answers(doc: dict[str, Any], schema: dict[str, Any], example: dict[str, Any] | None) -> dict[str, Any]:
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components["Answers"] = schema
    ref = {"$ref": "#/components/schemas/Answers"}
    body = doc["paths"]["/api/v1/cases"]["post"]["requestBody"]
    body["description"] = "回答文書（answers document）。形はスキーマ Answers（interview.yaml から生成）、例はモデル世帯"
    create = body["content"]["application/json"]
    create["schema"] = ref
    update = components["AnswersUpdate"]["properties"]["answers"]
    components["AnswersUpdate"]["properties"]["answers"] = {**ref, "description": update.get("description", "回答文書")}
    if example is not None:
        create["example"] = example
        put = doc["paths"]["/api/v1/cases/{case_id}/answers"]["put"]["requestBody"]["content"]["application/json"]
        put["example"] = {"version": 1, "answers": example}
    return doc
