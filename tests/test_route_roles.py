"""Access control on every route: the route table is walked and each route is called anonymously and as
each role. A route that is not classified below FAILS this test, so whoever adds one decides who may use it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.routing import Mount, Route

from app.models import StaffSession, User
from app.services.sessions import CsrfFailed
from tests.conftest import PASSWORD, login, make_user

# Who may use what. Kinds:
#   public        anyone, no credentials (health, docs, login, resident pages, the waiting-room board)
#   staff         any signed-in staff member (bearer token)
#   counter       counter staff and admins (bearer token)
#   counter_page  counter staff and admins (browser session cookie + CSRF)
#   admin         admins only (bearer token)
#   admin_page    admins only (browser session)
#   department    the department named in the path, and admins (bearer token)
#   department_page  the department named in the path, and admins (browser session)
RULES: list[tuple[str, str]] = [
    (r"/healthz|/readyz", "public"),
    (r"/openapi\.json|/docs|/docs/oauth2-redirect|/redoc", "public"),
    (r"/static", "public"),
    (r"/metrics", "public"),  # Prometheus counts, no personal data: restricted at the reverse proxy (SECURITY.md)
    (r"/", "public"),  # redirects to /counter
    (r"/login", "public"),
    (r"/api/v1/auth/token", "public"),
    (r"/q/\{token\}(/.*)?", "public"),
    (r"/api/v1/status/\{token\}(/.*)?", "public"),
    (r"/board(/.*)?", "public"),
    # The counter card bridge: its one credential is the visit's one-time pairing code (in the body).
    (r"/api/v1/card-readings(/.*)?", "public"),
    (r"/guide", "public"),  # the 手続きガイド: anonymous questions, nothing stored
    # Pre-entry on the resident's phone: writes need the draft's own token (X-Draft-Token or its cookie).
    (r"/pre(/.*)?", "public"),
    (r"/booking(/.*)?", "public"),  # booking on the phone: the code is the credential, nothing personal shown
    (r"/ticket", "public"),  # web ticket: opening hours and a per-address limit
    (r"/api/v1/booking(/.*)?", "public"),  # slots, booking and cancelling by code
    (r"/api/v1/appointments(/.*)?", "counter"),  # the day's bookings, booking for a caller, check-in
    (r"/api/v1/auth/me", "staff"),
    (r"/api/v1/cases(/.*)?", "counter"),
    (r"/api/v1/queue(/.*)?", "counter"),
    (r"/cases/\{case_id\}/slip", "counter"),
    (r"/logout", "staff_page"),
    (r"/counter(/.*)?|/reception(/.*)?", "counter_page"),
    (r"/department", "department_any_page"),  # a clerk is sent to their own department, an admin chooses
    (r"/department/\{department\}(/.*)?", "department_page"),
    (r"/api/v1/admin(/.*)?", "admin"),
    (r"/api/v1/metrics(/.*)?", "admin"),
    (r"/dashboard(/.*)?", "admin_page"),
    (r"/admin(/.*)?", "admin_page"),  # staff accounts, department tokens, audit log
    (r"/api/v1/departments/\{department\}(/.*)?", "department"),
]
ALLOWED: dict[str, set[str]] = {
    "public": {"anonymous", "counter", "department", "other_department", "admin"},
    "staff": {"counter", "department", "other_department", "admin"},
    "counter": {"counter", "admin"},
    "counter_page": {"counter", "admin"},
    "staff_page": {"counter", "department", "other_department", "admin"},
    "department_any_page": {"department", "other_department", "admin"},
    "department_page": {"department", "admin"},
    "admin": {"admin"},
    "admin_page": {"admin"},
    "department": {"department", "admin"},
}
ROLES = ("anonymous", "counter", "department", "other_department", "admin")
OWN_DEPARTMENT = "kodomo"


def classify(path: str) -> str | None:
    """The access kind of a route path, or None when nobody decided yet."""
    for pattern, kind in RULES:
        if re.fullmatch(pattern, path):
            return kind
    return None


@dataclass
class Endpoint:
    path: str
    method: str
    kind: str | None
    streams: bool


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every (path, method) the app serves."""
    out = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if isinstance(route, Mount):
            out.append(Endpoint(ctx.path, "GET", classify(ctx.path), False))
        elif isinstance(route, (APIRoute, Route)):
            for method in sorted((ctx.methods or {"GET"}) - {"HEAD"}):
                out.append(Endpoint(ctx.path, method, classify(ctx.path), ctx.path.endswith("/events")))
    # Log out last: it ends the session the other page routes use.
    return sorted(out, key=lambda e: e.path == "/logout")


def test_every_route_is_classified(app: FastAPI) -> None:
    missing = sorted({f"{e.method} {e.path}" for e in endpoints(app) if e.kind is None})
    assert missing == [], ("Routes without an access rule: add each to RULES in tests/test_route_roles.py "
                           f"(and protect it): {missing}")


class Caller:
    """One role: a bearer token and a browser session (cookie + CSRF token)."""

    def __init__(self, app: FastAPI, db: Session, role: str, name: str, department: str | None = None):
        self.client = TestClient(app)
        self.role = role
        self.headers: dict[str, str] = {"Accept": "application/json"}
        if role == "anonymous":
            return
        make_user(db, name, "department" if "department" in role else role, department)
        self.headers.update(login(self.client, name))
        self.client.cookies.clear()
        page = self.client.get("/login", headers={"Accept": "text/html"})
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text) if page.status_code == 200 else None
        if token:
            res = self.client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token.group(1),
                                                   "next": "/counter"}, follow_redirects=False)
            assert res.status_code == 303, res.text
            csrf = db.scalar(select(StaffSession.csrf_token).join(User).where(User.username == name)
                             .order_by(StaffSession.id.desc()))
            self.headers["X-CSRF-Token"] = csrf or ""

    def call(self, method: str, url: str) -> Any:
        body: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        return self.client.request(method, url, headers=self.headers, follow_redirects=False, **body)


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values.get(m.group(1), "1"), path)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_each_role_gets_exactly_what_the_table_says(app: FastAPI, client: TestClient, db: Session,
                                                    counter_headers: dict[str, str],
                                                    model_case_raw: dict[str, Any]) -> None:
    created = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers).json()
    values = {"case_id": created["id"], "token": created["status_token"], "status_token": created["status_token"],
              "instance_id": "jumin_tennyu", "step_id": "1", "department": OWN_DEPARTMENT,
              # Admin pages act on accounts and tokens: ids nobody has, so an allowed call is a 404, not a lock-out.
              "user_id": "999999", "token_id": "999999"}
    callers = {
        "anonymous": Caller(app, db, "anonymous", ""),
        "counter": Caller(app, db, "counter", "rr_counter"),
        "department": Caller(app, db, "department", "rr_kodomo", OWN_DEPARTMENT),
        "other_department": Caller(app, db, "other_department", "rr_shimin", "shimin"),
        "admin": Caller(app, db, "admin", "rr_admin"),
    }
    problems: list[str] = []
    checked = 0
    for ep in endpoints(app):
        if ep.kind is None:
            continue  # reported by test_every_route_is_classified
        if ep.path == "/readyz":
            continue  # public; it opens its own connection, which waits on the test's open transaction
        url = _fill(ep.path, values) + ("/" if ep.path == "/static" else "")
        for role in ROLES:
            allowed = role in ALLOWED[ep.kind]
            if ep.streams and allowed:
                continue  # an event stream would not end; its refusals are still checked
            res = callers[role].call(ep.method, url)
            checked += 1
            code = res.status_code
            if code >= 500:
                problems.append(f"{ep.method} {ep.path} as {role}: {code}")
            elif allowed and code in (401, 403) and not (code == 403 and _csrf_only(res)):
                problems.append(f"{ep.method} {ep.path} as {role}: {code}, expected access ({ep.kind})")
            elif not allowed and role == "anonymous":
                to_login = code in (302, 303, 307) and "/login" in res.headers.get("location", "")
                if code != 401 and not (ep.kind.endswith("_page") and to_login):
                    problems.append(f"{ep.method} {ep.path} as anonymous: {code}, expected 401 ({ep.kind})")
            elif not allowed and code != 403:
                problems.append(f"{ep.method} {ep.path} as {role}: {code}, expected 403 ({ep.kind})")
    assert checked > 100
    assert problems == [], "\n".join(problems)


def _csrf_only(res: Any) -> bool:
    """A 403 for a missing CSRF token (the route itself is open to the caller)."""
    if CsrfFailed.message in res.text:  # the login form answers with its page
        return True
    try:
        return res.json().get("error") == CsrfFailed.code
    except ValueError:
        return False


def test_the_walker_would_notice_a_new_route(app: FastAPI) -> None:
    @app.get("/api/v1/secret-new-thing")
    def new_thing() -> dict[str, str]:
        return {}

    assert "/api/v1/secret-new-thing" in {e.path for e in endpoints(app) if e.kind is None}
    assert classify("/api/v1/cases/{case_id}/bundle.pdf") == "counter"
    assert classify("/api/v1/departments/{department}/steps") == "department"
    assert classify("/api/v1/admin/audit.csv") == "admin"
