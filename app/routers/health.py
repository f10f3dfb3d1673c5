"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="プロセスの死活確認")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", summary="データベースと様式定義の準備確認")
def readyz(request: Request) -> JSONResponse:
    """The database answers and form definitions are loaded."""
    checks: dict[str, str] = {}
    try:
        with request.app.state.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready", never a 500
        checks["database"] = f"unavailable: {type(exc).__name__}"
    registry = request.app.state.definitions
    checks["definitions"] = "ok" if registry.loaded else "not loaded"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)
