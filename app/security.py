"""HTTP hardening as pure ASGI middleware: security headers, a request-body size limit, a JSON nesting limit.

Pure ASGI (not BaseHTTPMiddleware) so that streamed responses (Server-Sent Events, PDFs) pass
through untouched and nothing is buffered except request bodies, which are small by construction.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
# Swagger UI and ReDoc are served from packaged assets (app/static/vendor) without inline scripts; they
# set inline styles and ReDoc runs its search in a blob: worker. Only those two pages get this policy.
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            "font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'self'; object-src 'none'")
DOCS_PATHS = ("/docs", "/redoc")
PERMISSIONS_POLICY = ("camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), "
                      "interest-cohort=()")
# The counter's today page reads pre-entry QR codes with the tablet's camera (same origin only).
COUNTER_CAMERA_PATHS = ("/counter",)
COUNTER_PERMISSIONS_POLICY = PERMISSIONS_POLICY.replace("camera=()", "camera=(self)")
HSTS = "max-age=31536000; includeSubDomains"
# Paths whose responses may be cached by the browser: static assets only. Everything else (the API,
# staff pages with personal data, the resident page) is `no-store`, unless the route set its own.
CACHEABLE_PREFIXES = ("/static/",)
RESIDENT_PREFIXES = ("/q/", "/pre", "/booking/")

TOO_LARGE_MESSAGE = "送信された内容が大きすぎます（上限 {limit}）。内容を減らしてもう一度お送りください"
TOO_DEEP_MESSAGE = "JSONの入れ子が深すぎます（{limit}段まで）"
BAD_CHAR_MESSAGE = "使えない文字（NUL文字や対になっていないサロゲート）が含まれています"
BAD_NUMBER_MESSAGE = "数として扱えない値です（NaN・Infinity や桁があふれる数は使えません）"
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def _human(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB" if size >= 1024 * 1024 else f"{size // 1024} KiB"


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays/objects in a JSON text (strings skipped); malformed text is fine."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b'""', body)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class _NotFinite(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NotFinite(text)
    return value


def _reject_constant(text: str) -> float:
    raise _NotFinite(text)


def _where(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(root)"


def json_problem(body: bytes) -> dict[str, str] | None:
    """A field error for JSON that parses but cannot be stored or sent back (NUL, lone surrogates, NaN, 1e400)."""
    try:
        doc = json.loads(body, parse_constant=_reject_constant, parse_float=_finite)
    except _NotFinite:
        return {"field": "(root)", "message": BAD_NUMBER_MESSAGE}
    except (ValueError, RecursionError):
        return None  # not JSON at all: the application answers with its own 422
    stack: list[tuple[object, list[str | int]]] = [(doc, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if _BAD_CHARS.search(node):
                return {"field": _where(path), "message": BAD_CHAR_MESSAGE}
        elif isinstance(node, dict):
            for key, value in node.items():
                if _BAD_CHARS.search(key):
                    return {"field": _where(path), "message": BAD_CHAR_MESSAGE}
                stack.append((value, [*path, key]))
        elif isinstance(node, list):
            stack.extend((value, [*path, i]) for i, value in enumerate(node))
    return None


def _has_bad_text(text: str) -> bool:
    # parse_qsl decoded as latin-1 above only to find NULs: "%00" and a raw NUL both become "\x00".
    return "\x00" in text or "\ufffd" in text


def _bad_url(scope: Scope) -> dict[str, str] | None:
    """A field error for a NUL (or undecodable bytes) in the path or the query string, else None."""
    path = scope.get("path", "")
    if "\x00" in path or "\ufffd" in path:
        return {"field": "(path)", "message": BAD_CHAR_MESSAGE}
    query = scope.get("query_string", b"").decode("latin-1")
    for key, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace"):
        if _has_bad_text(key) or _has_bad_text(value):
            return {"field": key if not _has_bad_text(key) else "(query)", "message": BAD_CHAR_MESSAGE}
    return None


async def _send_json(send: Send, status: int, body: dict[str, object], headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    raw = json.dumps(body, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
        (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": raw})


class _BodyTooLarge(StarletteHTTPException):
    # An HTTPException, so that FastAPI's body parsing re-raises it (instead of a 400) and the app's
    # handler answers 413 with the Japanese message; the middleware catches it if nothing else did.
    def __init__(self) -> None:
        super().__init__(status_code=413)


class RequestLimitsMiddleware:
    """413 for bodies over `max_bytes` (by Content-Length or while streaming), 422 for JSON nested too deeply."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_json_depth: int):
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_depth = max_json_depth

    def _too_large(self) -> dict[str, object]:
        return {"error": "too_large", "message": TOO_LARGE_MESSAGE.format(limit=_human(self.max_bytes))}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _bad_url(scope)
        if problem is not None:
            await _send_json(send, 422, {"error": "validation_error", "message": BAD_CHAR_MESSAGE, "errors": [problem]})
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared < 0:
                await _send_json(send, 400, {"error": "bad_request", "message": "Content-Length が正しくありません"})
                return
            if declared > self.max_bytes:
                await _send_json(send, 413, self._too_large())
                return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type == b"application/json" or content_type.endswith(b"+json"):
            await self._json(scope, receive, send)
            return
        if content_type == b"application/x-www-form-urlencoded":
            await self._form(scope, receive, send)
            return
        await self._streamed(scope, receive, send)

    async def _read_all(self, receive: Receive) -> tuple[bytes, Message | None]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks), message  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None

    async def _json(self, scope: Scope, receive: Receive, send: Send) -> None:
        # JSON bodies are read here (they are at most max_bytes) so that the nesting can be checked
        # before any parser recurses into them, then replayed to the application unchanged.
        try:
            body, other = await self._read_all(receive)
        except _BodyTooLarge:
            await _send_json(send, 413, self._too_large())
            return
        if other is not None:
            return
        problem: dict[str, str] | None = None
        if json_depth(body) > self.max_json_depth:
            problem = {"field": "(root)", "message": TOO_DEEP_MESSAGE.format(limit=self.max_json_depth)}
        else:
            # Values that parse but that PostgreSQL's jsonb or the JSON response cannot hold would be 500s later.
            problem = json_problem(body)
        if problem is not None:
            await _send_json(send, 422, {"error": "validation_error", "message": problem["message"], "errors": [problem]})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _form(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A form field with a NUL (the login form too) would reach the database driver and fail there.
        try:
            body, other = await self._read_all(receive)
        except _BodyTooLarge:
            await _send_json(send, 413, self._too_large())
            return
        if other is not None:
            return
        for key, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
            if _has_bad_text(key) or _has_bad_text(value):
                field = key if not _has_bad_text(key) else "(root)"
                await _send_json(send, 422, {"error": "validation_error", "message": BAD_CHAR_MESSAGE,
                                             "errors": [{"field": field, "message": BAD_CHAR_MESSAGE}]})
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send) -> None:
        size = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_json(send, 413, self._too_large())


class SecurityHeadersMiddleware:
    """Adds CSP, frame, referrer, permissions, HSTS (production) and cache headers to every HTTP response."""

    def __init__(self, app: ASGIApp, *, hsts: bool):
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                docs = path in DOCS_PATHS or path.startswith("/docs/")
                headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                # The resident page's URL holds the status token: never send it on as a referrer.
                referrer = "no-referrer" if path.startswith(RESIDENT_PREFIXES) else "same-origin"
                headers.setdefault("Referrer-Policy", referrer)
                headers.setdefault("Permissions-Policy",
                                   COUNTER_PERMISSIONS_POLICY if path in COUNTER_CAMERA_PATHS else PERMISSIONS_POLICY)
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if not path.startswith(CACHEABLE_PREFIXES):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)


class _NoResultRows(logging.Filter):
    """Drops SQLAlchemy's echo of result rows: rows hold names and addresses (parameters are hidden by the engine)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("Row "))


_ROW_FILTER = _NoResultRows()

# The resident page's status token is the only credential of that page: an access log must not
# hold it. The postal-code lookup's query is a partial address.
_TOKEN_PATHS = re.compile(r"^(/q/|/api/v1/status/|/pre/api/drafts/|/booking/|/api/v1/booking/|/api/v1/appointments/)[^/?#\s]+")
_POSTAL_QUERY = re.compile(r"([?&]code=)[^&#\s]*")


def redact_path(path: str) -> str:
    """A request path as an access log may show it: status tokens and postal codes replaced by ***."""
    return _POSTAL_QUERY.sub(r"\1***", _TOKEN_PATHS.sub(r"\1***", path))


class _RedactAccessLog(logging.Filter):
    """Rewrites uvicorn's access-log record (client, method, path, version, status) before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


_ACCESS_FILTER = _RedactAccessLog()


class _RedactAsgiTrace(logging.Filter):
    """uvicorn's TRACE level logs each request's ASGI scope: redact its path and query the same way."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._scope(arg) for arg in record.args)
        return True

    @staticmethod
    def _scope(arg: object) -> object:
        if not isinstance(arg, dict) or "path" not in arg:
            return arg
        out = dict(arg)
        out["path"] = redact_path(str(out.get("path", "")))
        out.pop("raw_path", None)
        if out.get("query_string"):
            out["query_string"] = redact_path("?" + bytes(out["query_string"]).decode("latin-1"))[1:].encode("latin-1")
        return out


_TRACE_FILTER = _RedactAsgiTrace()


def install_log_redaction() -> None:
    """Keep personal data out of the logs even when an operator turns SQL echo on (see SECURITY.md)."""
    for name in ("sqlalchemy.engine", "sqlalchemy.engine.Engine"):
        logger = logging.getLogger(name)
        if _ROW_FILTER not in logger.filters:
            logger.addFilter(_ROW_FILTER)
    access = logging.getLogger("uvicorn.access")
    if _ACCESS_FILTER not in access.filters:
        access.addFilter(_ACCESS_FILTER)
    trace = logging.getLogger("uvicorn.asgi")
    if _TRACE_FILTER not in trace.filters:
        trace.addFilter(_TRACE_FILTER)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add the hardening middleware (the limits run first, the headers wrap every response, even a 413)."""
    install_log_redaction()
    app.add_middleware(RequestLimitsMiddleware, max_bytes=settings.max_request_bytes,
                       max_json_depth=settings.max_json_depth)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.env == "production")
