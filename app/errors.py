"""Domain errors raised by services, and the one place that turns them into responses."""

from __future__ import annotations

import logging
import traceback
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import crypto

log = logging.getLogger(__name__)


class AppError(Exception):
    """Base of domain errors: a status, a machine-readable code and a Japanese message."""

    status = 400
    code = "bad_request"
    message = "リクエストが正しくありません"
    # Some failures are facts to keep (a failed login counts towards lock-out): the session
    # dependency commits instead of rolling back when this is set.
    keep_changes = False

    def __init__(self, message: str | None = None, *, details: Any = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details

    def body(self) -> dict[str, Any]:
        """The JSON body for this error."""
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details is not None:
            out["errors"] = self.details
        return out


class ValidationFailed(AppError):
    """Input failed validation; `details` lists one message per field."""

    status = 422
    code = "validation_error"
    message = "入力内容に誤りがあります。各項目のメッセージを確認してください"


class NotFound(AppError):
    """The thing asked for does not exist (or the caller may not know it exists)."""

    status = 404
    code = "not_found"
    message = "見つかりません"


class Conflict(AppError):
    """Someone else changed the thing first (stale version)."""

    status = 409
    code = "conflict"
    message = "他の端末で先に更新されています。最新の内容を読み込んでから、もう一度保存してください"

    def __init__(self, message: str | None = None, *, current_version: int | None = None,
                 last_save_token: str | None = None):
        super().__init__(message)
        self.current_version = current_version
        # The random id of the save that made the current version (no personal data): a tablet that
        # sent it itself (its save was on the way across a reload) is not in conflict with anyone.
        self.last_save_token = last_save_token

    def body(self) -> dict[str, Any]:
        """The JSON body, with the version now stored so a client can reload."""
        out = super().body()
        if self.current_version is not None:
            out["current_version"] = self.current_version
        if self.last_save_token is not None:
            out["last_save_token"] = self.last_save_token
        return out


class Unauthorized(AppError):
    """No valid credentials."""

    status = 401
    code = "unauthorized"
    message = "ログインが必要です"


class LoginFailed(Unauthorized):
    """Wrong user name or password; the failure count is kept."""

    keep_changes = True
    message = "ユーザー名またはパスワードが違います"


class Forbidden(AppError):
    """Valid credentials, but this role may not do that."""

    status = 403
    code = "forbidden"
    message = "この操作を行う権限がありません"


class ServiceUnavailable(AppError):
    """A dependency (the database, the definitions) is not ready."""

    status = 503
    code = "unavailable"
    message = "ただいま利用できません。しばらくしてからもう一度お試しください"


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "(root)"


def wants_page(request: Request) -> bool:
    """A browser navigating to a page (not the API, not a script's fetch) gets an HTML error page."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def error_page(request: Request, exc: AppError) -> Response:
    """The error as a page: the login screen for a missing session, otherwise a plain message."""
    if exc.status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query = urlencode({"next": target, **({"expired": "1"} if exc.code == "session_expired" else {})})
        return RedirectResponse(f"/login?{query}", status_code=303)
    from app.templating import get_templates  # late import: templates are only needed for pages

    return get_templates().TemplateResponse(
        request, "error.html", {"status": exc.status, "message": exc.message, "details": exc.details or []},
        status_code=exc.status,
    )


INTERNAL_ERROR = {"error": "internal_error",
                  "message": "システムエラーが発生しました。入力内容は保存されていません。係員にお知らせください"}


def log_unexpected(method: str, path: str, exc: BaseException) -> None:
    """Log an unexpected error by type and code location only: its message may quote a value (a birth date)."""
    log.error("unhandled error on %s %s: %s\n%s", method, path, type(exc).__name__,
              "".join(traceback.format_tb(exc.__traceback__)))


class UnexpectedErrorMiddleware:
    """Answers 500 itself for any exception that escaped the handlers, so the server never logs it.

    Starlette's handler for `Exception` answers the client but then re-raises, and uvicorn logs the
    exception with its message ("Exception in ASGI application"): that message can hold personal data.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log_unexpected(scope.get("method", ""), scope.get("path", ""), exc)
            if not started:
                await JSONResponse(INTERNAL_ERROR, status_code=500)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register handlers so that every error is JSON with a Japanese message, never a stack trace."""

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        if wants_page(request):
            return error_page(request, exc)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors: dict[str, str] = {}
        for err in exc.errors():
            field = _field_name(tuple(err.get("loc", ())))
            if err.get("type") == "json_invalid":
                errors.setdefault(field, "JSONとして読めません")
            elif err.get("type") == "missing":
                errors.setdefault(field, "必須の項目がありません")
            else:
                errors.setdefault(field, "値の形式が正しくありません")
        details = [{"field": k, "message": v} for k, v in errors.items()]
        return JSONResponse(ValidationFailed(details=details).body(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "見つかりません", 405: "この方法では操作できません", 413: "送信された内容が大きすぎます"}
        return JSONResponse(
            {"error": f"http_{exc.status_code}", "message": messages.get(exc.status_code, "リクエストを処理できません")},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(sa_exc.OperationalError)
    @app.exception_handler(sa_exc.InterfaceError)
    @app.exception_handler(sa_exc.TimeoutError)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        # The database is unreachable or restarting: a clean 503 the client may retry, not a 500.
        # The pool drops the broken connections (pool_pre_ping checks the next ones), so the
        # service recovers by itself. Only the type is logged: a driver message may quote values.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        unavailable = ServiceUnavailable("データベースに接続できません。しばらくしてからもう一度お試しください")
        return JSONResponse(unavailable.body(), status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(crypto.KeyError_)
    async def _key_missing(request: Request, exc: crypto.KeyError_) -> Response:
        # A stored value under a key this process was not given (a rotation this instance has not been
        # restarted for): a clear 503 naming the fix, never a 500; no value or key id is logged.
        log.error("stored value does not decrypt on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        unavailable = ServiceUnavailable("暗号鍵の設定がこの案件の保存内容と合わないため、表示できません。"
                                         "管理者に連絡してください（KAKANAI_ENCRYPTION_KEYS を確認して再起動）")
        if wants_page(request):
            return error_page(request, unavailable)
        return JSONResponse(unavailable.body(), status_code=503)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Log the type and where it happened, not the request body: it may hold personal data.
        # The exception message is left out too: it may quote a value (a name, a number).
        log_unexpected(request.method, request.url.path, exc)
        return JSONResponse(INTERNAL_ERROR, status_code=500)

    # Innermost of the middleware (added first): catches what would otherwise reach uvicorn's logger.
    app.add_middleware(UnexpectedErrorMiddleware)
