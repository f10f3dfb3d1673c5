"""Bad input: oversized and deeply nested bodies, huge names, control characters, emoji and injection strings.

Every answer is either a clear 4xx with a Japanese message for the field, or the value is stored exactly
and comes back exactly (JSON), is drawn as text in the PDFs and is escaped in the HTML pages.
"""

from __future__ import annotations

import copy
import html
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.services.definitions import DefinitionRegistry
from tests.conftest import PASSWORD, make_user, page_login

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
INJECTIONS = [
    "<script>alert('x')</script>",
    "'; DROP TABLE cases; --",
    "\" onmouseover=\"alert(1)\" x=\"",
    "Robert'); DELETE FROM audit_log;--",
    "{{7*7}}${7*7}<%= 7*7 %>",
    "家族😀👨‍👩‍👧‍👦",
    "../../etc/passwd",
]
CONTROL = ["太\x07郎", "\x1b[31m赤\x1b[0m", "太郎\u202e逆", "太郎\x85"]
TEXT_KINDS = ("name", "text", "list", "address")


def _text_fields(registry: DefinitionRegistry) -> list[tuple[str, str]]:
    return sorted((path, info.field.kind) for path, info in registry.current.fields.items()
                  if info.field.kind in TEXT_KINDS)


def _put(doc: dict[str, Any], path: str, kind: str, value: str) -> str:
    """Place `value` at an interview path (first member for member fields); returns the answers path it lands on."""
    if kind == "address":
        # An address the model household leaves empty (the 代理人's) starts as a complete one.
        node: Any = doc
        for part in path.split(".")[:-1]:
            node = node[part[:-2]][0] if part.endswith("[]") else node.setdefault(part, {})
        node.setdefault(path.split(".")[-1], dict(doc.get("address") or {}))
        path = f"{path}.building"
    if kind == "list":
        value = [value]  # type: ignore[assignment]
    parts = path.replace("[]", "[0]").split(".")
    node = doc
    for part in parts[:-1]:
        if part.endswith("[0]"):
            node = node[part[:-3]][0]
        else:
            node = node.setdefault(part, {})
    node[parts[-1]] = value
    return path.replace("[]", "[0]")


def _get(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        node = node[part[:-3]][0] if part.endswith("[0]") else node[part]
    return node


def _errors(res: Any) -> dict[str, str]:
    return {e["field"]: e["message"] for e in res.json().get("errors") or []}


# --- size and shape of the body ---------------------------------------------------------------------

def test_oversized_body_is_413_in_japanese(client: TestClient, counter_headers: dict[str, str]) -> None:
    big = b'{"x": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    res = client.post("/api/v1/cases", content=big, headers={**counter_headers, "Content-Type": "application/json"})
    assert res.status_code == 413
    assert res.json()["error"] == "too_large" and JAPANESE.search(res.json()["message"])
    assert res.headers["x-content-type-options"] == "nosniff"


def test_oversized_streamed_body_without_length_is_413(client: TestClient, counter_headers: dict[str, str]) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"\x89PNG" + b"0" * (100 * 1024)

    for content_type in ("image/png", "application/json"):
        res = client.put("/api/v1/cases/whatever/signature", content=chunks(),
                         headers={**counter_headers, "Content-Type": content_type})
        assert res.status_code == 413, (content_type, res.text)
        assert JAPANESE.search(res.json()["message"])
    # A form post whose body FastAPI parses itself: still 413, not "error parsing the body".
    res = client.post("/api/v1/auth/token", content=(b"username=" + b"a" * (100 * 1024) for _ in range(40)),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert res.status_code == 413, res.text
    assert JAPANESE.search(res.json()["message"])


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deeply_nested_json_is_a_clear_422(client: TestClient, counter_headers: dict[str, str],
                                           model_case_raw: dict[str, Any], depth: int) -> None:
    nested = "[" * depth + "]" * depth
    body = json.dumps(model_case_raw)[:-1] + f', "$nested": {nested}}}'
    res = client.post("/api/v1/cases", content=body, headers={**counter_headers, "Content-Type": "application/json"})
    assert res.status_code == 422
    assert res.json()["errors"] == [{"field": "(root)", "message": "JSONの入れ子が深すぎます（32段まで）"}]
    # Brackets inside strings are text, not nesting.
    model = copy.deepcopy(model_case_raw)
    model["$comment"] = "[" * 100 + "{" * 100
    res = client.post("/api/v1/cases", json=model, headers=counter_headers)
    assert res.status_code == 201


@pytest.mark.parametrize(("raw", "field", "fragment"), [
    ('"family_name": "\\ud800"', "household.members[0].family_name", "サロゲート"),
    ('"family_name": "\\u0000"', "household.members[0].family_name", "NUL"),
    ('"total_minutes": NaN', "(root)", "NaN"),
    ('"total_minutes": 1e400', "(root)", "NaN"),
    ('"total_minutes": -Infinity', "(root)", "NaN"),
])
def test_values_no_database_can_hold_are_refused(client: TestClient, counter_headers: dict[str, str],
                                                 model_case_raw: dict[str, Any], raw: str, field: str,
                                                 fragment: str) -> None:
    body = json.dumps(model_case_raw, ensure_ascii=False)
    body = body.replace('"family_name": "尼崎"', raw, 1) if "family_name" in raw else body.replace(
        '"total_minutes": 138', raw)
    assert raw in body
    res = client.post("/api/v1/cases", content=body.encode(), headers={**counter_headers,
                                                                       "Content-Type": "application/json"})
    assert res.status_code == 422, res.text
    assert _errors(res)[field].find(fragment) >= 0


@pytest.mark.parametrize("body", [b"", b"{", b"null", b"[]", b'"text"', b"\xff\xfe", b"{\"a\": 1,}"])
def test_malformed_json_is_422_with_a_message(client: TestClient, counter_headers: dict[str, str], body: bytes) -> None:
    res = client.post("/api/v1/cases", content=body, headers={**counter_headers, "Content-Type": "application/json"})
    assert res.status_code == 422, res.text
    assert JAPANESE.search(res.json()["message"])


# --- every text field -------------------------------------------------------------------------------

def test_ten_thousand_characters_in_every_text_field_is_refused(
    client: TestClient, counter_headers: dict[str, str], model_case_raw: dict[str, Any], registry: DefinitionRegistry
) -> None:
    for path, kind in _text_fields(registry):
        doc = copy.deepcopy(model_case_raw)
        where = _put(doc, path, kind, "長" * 10_000)
        res = client.post("/api/v1/cases", json=doc, headers=counter_headers)
        assert res.status_code == 422, (path, res.status_code)
        errors = _errors(res)
        key = where if kind != "list" else f"{where}"
        assert key in errors, (path, errors)
        assert "文字以内" in errors[key] or "世帯員" in errors[key], (path, errors[key])


def test_control_characters_in_every_text_field_are_refused(
    client: TestClient, counter_headers: dict[str, str], model_case_raw: dict[str, Any], registry: DefinitionRegistry
) -> None:
    for path, kind in _text_fields(registry):
        for value in CONTROL:
            doc = copy.deepcopy(model_case_raw)
            where = _put(doc, path, kind, value)
            res = client.post("/api/v1/cases", json=doc, headers=counter_headers)
            assert res.status_code == 422, (path, repr(value), res.text[:200])
            errors = _errors(res)
            assert any(f == where or f.startswith(where) for f in errors), (path, errors)
            assert all(JAPANESE.search(m) for m in errors.values())


def test_injection_strings_and_emoji_are_refused_clearly_or_stored_exactly(
    client: TestClient, counter_headers: dict[str, str], model_case_raw: dict[str, Any], registry: DefinitionRegistry
) -> None:
    stored = refused = 0
    for path, kind in _text_fields(registry):
        for value in INJECTIONS:
            doc = copy.deepcopy(model_case_raw)
            where = _put(doc, path, kind, value)
            res = client.post("/api/v1/cases", json=doc, headers=counter_headers)
            if res.status_code == 422:
                errors = _errors(res)
                # An address the model household lacks (転出先, 相続人) gets only its building: the error may be
                # about a missing part of that same address.
                near = where.rsplit(".", 1)[0] if kind == "address" else where
                assert any(f == where or f.startswith(near) or f.endswith(path.rsplit(".", 1)[-1]) for f in errors), \
                    (path, value, errors)
                assert all(JAPANESE.search(m) for m in errors.values())
                refused += 1
                continue
            assert res.status_code == 201, (path, value, res.text[:300])
            got = client.get(f"/api/v1/cases/{res.json()['id']}?reveal=all", headers=counter_headers).json()["answers"]
            assert _get(got, where) == _get(doc, where), (path, value)
            stored += 1
    assert stored > 50 and refused > 0  # names and free text take them as typed; ids and the like refuse them


# --- rendered safely ----------------------------------------------------------------------------------

SAFE_CASE = {
    "household.members[0].family_name": "尼崎<script>",
    "household.members[0].given_name": "太郎'--",
    "household.members[0].employer": "株式会社\"<&>\"",
    "household.members[2].school.previous_school": "'; DROP TABLE cases; --",
    "address.building": "塚口コーポ😀202号室",
    "bank_account.branch_name": "<b>塚口</b>支店",
}


def _safe_case(model: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(model)
    for path, value in SAFE_CASE.items():
        node: Any = doc
        parts = path.split(".")
        for part in parts[:-1]:
            m = re.fullmatch(r"(\w+)\[(\d+)\]", part)
            node = node[m.group(1)][int(m.group(2))] if m else node[part]
        node[parts[-1]] = value
    return doc


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_pdfs_draw_injection_strings_as_text(client: TestClient, counter_headers: dict[str, str],
                                             model_case_raw: dict[str, Any]) -> None:
    res = client.post("/api/v1/cases", json=_safe_case(model_case_raw), headers=counter_headers)
    assert res.status_code == 201, res.text
    pdf = client.get(f"/api/v1/cases/{res.json()['id']}/bundle.pdf", headers=counter_headers)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    text = _squash(subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", "-", "-"], input=pdf.content, capture_output=True,
                                  check=True).stdout.decode("utf-8"))
    for value in SAFE_CASE.values():
        # Drawn as text: copying it out of the PDF gives back exactly what was typed (even the emoji,
        # which the forms' fonts draw as a blank box).
        assert _squash(value) in text, value


def _page_login(client: TestClient, name: str) -> bool:
    page = client.get("/login", headers={"Accept": "text/html"})
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text) if page.status_code == 200 else None
    if token is None:
        return False
    res = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token.group(1),
                                      "next": "/counter"}, headers={"Accept": "text/html"}, follow_redirects=False)
    return res.status_code == 303


def test_html_pages_escape_what_was_typed(client: TestClient, db: Session, counter_headers: dict[str, str],
                                          model_case_raw: dict[str, Any], app: Any) -> None:
    res = client.post("/api/v1/cases", json=_safe_case(model_case_raw), headers=counter_headers)
    cid = res.json()["id"]
    make_user(db, "escaper", "counter")
    if not _page_login(client, "escaper"):
        pytest.skip("no counter login page in this build")
    paths = {r.path for r in iter_route_contexts(app.routes) if r.path}
    candidates = [p.replace("{case_id}", cid) for p in ("/counter/visits/{case_id}", "/counter/visits/{case_id}/review",
                                                        "/counter/visits/{case_id}/documents", "/cases/{case_id}/slip")
                  if p in paths]
    checked = 0
    for path in candidates:
        page = client.get(path, headers={"Accept": "text/html"})
        if page.status_code != 200 or "text/html" not in page.headers.get("content-type", ""):
            continue
        checked += 1
        for value in SAFE_CASE.values():
            if "<" in value or '"' in value:
                assert value not in page.text, (path, value)
        if "尼崎<script>" in html.unescape(page.text):
            assert "尼崎&lt;script&gt;" in page.text, path
    assert checked >= 1, candidates
    print(f"escaped on {checked} pages: {candidates}")


# --- Hardening II (issue 13): each of these failed before its fix ------------------------------------

def _member(doc: dict[str, Any], key: str, value: Any, index: int = 0) -> dict[str, Any]:
    doc["household"]["members"][index][key] = value
    return doc


@pytest.mark.parametrize(("path", "value"), [
    ("household.members[0].birth_date", "1890-06-15"),   # a year typo: 100 years too early
    ("household.members[0].birth_date", "0990-06-15"),
    ("household.members[3].childcare.wanted_from", "2206-05-01"),  # 180 years ahead
    ("move.moved_on", "1026-04-01"),
])
def test_implausible_dates_are_refused_at_input(client: TestClient, counter_headers: dict[str, str],
                                                model_case: dict[str, Any], path: str, value: str) -> None:
    node: Any = model_case
    parts = path.split(".")
    for part in parts[:-1]:
        m = re.fullmatch(r"(\w+)\[(\d+)\]", part)
        node = node[m.group(1)][int(m.group(2))] if m else node[part]
    node[parts[-1]] = value
    res = client.post("/api/v1/cases", json=model_case, headers=counter_headers)
    assert res.status_code == 422, res.text[:300]
    message = _errors(res)[path]
    assert "1900年から" in message and "年の打ち間違い" in message, message


ODD_STORED = {
    "pre-Meiji birth date": ("household.members[0].birth_date", "1790-06-15"),
    "year 1": ("household.members[2].birth_date", "0001-01-01"),
    "not a date": ("household.members[1].birth_date", "昭和ごろ"),
    "a number as a date": ("household.members[3].birth_date", 20231201),
    "a list as a name": ("household.members[0].family_name", ["尼", "崎"]),
    "a visit date before Meiji": ("visit_date", "1500-01-01"),
    "an address that is text": ("address", "兵庫県尼崎市"),
    "a my number of letters": ("household.members[0].my_number", "ABCDEFGHIJKL"),
}


@pytest.mark.parametrize("label", list(ODD_STORED))
def test_pages_survive_odd_values_written_straight_into_the_database(
    app: Any, db: Session, model_case: dict[str, Any], label: str
) -> None:
    """No stored value may make a page fail: review, every PDF, the slip, dashboard and metrics."""
    from app.models import Case

    with TestClient(app, raise_server_exceptions=False) as client:
        make_user(db, "oddadmin", "admin")
        headers = {"Authorization": "Bearer " + client.post(
            "/api/v1/auth/token", data={"username": "oddadmin", "password": PASSWORD}).json()["access_token"]}
        res = client.post("/api/v1/cases", json=model_case, headers=headers)
        assert res.status_code == 201, res.text
        cid = res.json()["id"]
        assert client.post(f"/api/v1/cases/{cid}/routing-slip", headers=headers).status_code in (200, 201)
        path, value = ODD_STORED[label]
        case = db.get(Case, cid)
        answers = copy.deepcopy(case.answers)
        node: Any = answers
        parts = path.split(".")
        for part in parts[:-1]:
            m = re.fullmatch(r"(\w+)\[(\d+)\]", part)
            node = node[m.group(1)][int(m.group(2))] if m else node[part]
        node[parts[-1]] = value
        case.answers = answers
        db.commit()
        db.expire_all()
        instances = client.get(f"/api/v1/cases/{cid}/applications", headers=headers)
        assert instances.status_code == 200, (label, instances.text[:300])
        urls = [f"/api/v1/cases/{cid}", f"/api/v1/cases/{cid}?reveal=all", f"/api/v1/cases/{cid}/bundle.pdf",
                f"/api/v1/cases/{cid}/routing-slip", f"/api/v1/cases/{cid}/routing-slip.pdf",
                f"/api/v1/cases/{cid}/writing-saved", f"/api/v1/cases/{cid}/metrics", "/api/v1/metrics/visits",
                "/api/v1/metrics/report", "/api/v1/metrics/visits.csv", "/api/v1/cases"]
        urls += [f"/api/v1/cases/{cid}/applications/{a['id']}.pdf" for a in instances.json()["applications"]]
        for url in urls:
            got = client.get(url, headers=headers)
            assert got.status_code < 500, (label, url, got.status_code)
        page_login(client, "oddadmin")
        for url in (f"/counter/visits/{cid}", f"/counter/visits/{cid}/review", f"/counter/visits/{cid}/documents",
                    f"/counter/visits/{cid}/bundle.pdf", f"/cases/{cid}/slip", "/counter", "/dashboard",
                    "/dashboard/export.json", "/dashboard/export.csv"):
            got = client.get(url, headers={"Accept": "text/html"})
            assert got.status_code < 500, (label, url, got.status_code)


@pytest.mark.parametrize(("field", "value"), [
    ("my_number", "١٢٣٤٥٦٧٨٩٠١٨"),   # Arabic-Indic digits of 123456789018 (valid check digit)
    ("my_number", "१२३४५६७८९०१८"),   # Devanagari
    ("my_number", "۱۲۳۴۵۶۷۸۹۰۱۸"),   # Extended Arabic-Indic (Persian)
])
def test_only_ascii_and_full_width_digits_are_digits(client: TestClient, counter_headers: dict[str, str],
                                                    model_case: dict[str, Any], field: str, value: str) -> None:
    res = client.post("/api/v1/cases", json=_member(model_case, field, value), headers=counter_headers)
    assert res.status_code == 422, res.text[:200]
    assert "半角か全角" in _errors(res)[f"household.members[0].{field}"]
    # The account number too.
    model_case["household"]["members"][0]["my_number"] = "１２３４５６７８９０１８"  # full-width: accepted
    model_case["bank_account"]["account_number"] = "١٢٣٤٥٦٧"
    res = client.post("/api/v1/cases", json=model_case, headers=counter_headers)
    assert res.status_code == 422
    assert set(_errors(res)) == {"bank_account.account_number"}, res.text


def test_full_width_digits_are_still_digits(client: TestClient, counter_headers: dict[str, str],
                                            model_case: dict[str, Any]) -> None:
    model_case["household"]["members"][0]["my_number"] = "１２３４５６７８９０１８"
    model_case["bank_account"]["account_number"] = "１２３４５６７"
    res = client.post("/api/v1/cases", json=model_case, headers=counter_headers)
    assert res.status_code == 201, res.text
    got = client.get(f"/api/v1/cases/{res.json()['id']}?reveal=all", headers=counter_headers).json()["answers"]
    assert got["household"]["members"][0]["my_number"] == "123456789018"
    assert got["bank_account"]["account_number"] == "1234567"


@pytest.mark.parametrize("where", ["root", "member", "address", "bank_account", "survey_baseline"])
def test_dollar_keys_do_not_bypass_validation(client: TestClient, counter_headers: dict[str, str],
                                             model_case: dict[str, Any], where: str) -> None:
    secret = {"my_number": "123456789018"}
    target = {"root": model_case, "member": model_case["household"]["members"][0], "address": model_case["address"],
              "bank_account": model_case["bank_account"], "survey_baseline": model_case["survey_baseline"]}[where]
    target["$hidden"] = secret
    res = client.post("/api/v1/cases", json=model_case, headers=counter_headers)
    assert res.status_code == 422, (where, res.text[:300])
    assert any("$hidden" in f for f in _errors(res)), _errors(res)
    assert all(JAPANESE.search(m) for m in _errors(res).values())


def test_unknown_keys_in_the_survey_baseline_are_refused(client: TestClient, counter_headers: dict[str, str],
                                                         model_case: dict[str, Any]) -> None:
    model_case["survey_baseline"]["my_number"] = "123456789018"
    model_case["survey_baseline"]["total_minutes"] = "たくさん"
    res = client.post("/api/v1/cases", json=model_case, headers=counter_headers)
    assert res.status_code == 422
    assert set(_errors(res)) == {"survey_baseline.my_number", "survey_baseline.total_minutes"}


def test_the_model_household_with_its_comments_is_accepted_and_comments_are_not_stored(
    client: TestClient, counter_headers: dict[str, str], model_case_raw: dict[str, Any], db: Session
) -> None:
    from app.models import Case

    assert "$comment" in model_case_raw and "$comment" in model_case_raw["survey_baseline"]
    res = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers)
    assert res.status_code == 201, res.text
    stored = db.get(Case, res.json()["id"]).answers
    assert "$comment" not in stored and "$comment" not in stored["survey_baseline"]
    assert stored["survey_baseline"]["total_minutes"] == 138
    # A "$" key holding anything but text is refused even at the top level.
    doc = copy.deepcopy(model_case_raw)
    doc["$comment"] = {"my_number": "123456789018"}
    res = client.post("/api/v1/cases", json=doc, headers=counter_headers)
    assert res.status_code == 422 and "$comment" in _errors(res)


INVISIBLE = {"tab": "太\t郎", "newline": "太\n郎", "zero-width space": "太\u200b郎", "zero-width joiner": "太\u200d郎",
             "left-to-right mark": "太\u200e郎", "right-to-left mark": "太\u200f郎", "BOM": "\ufeff太郎",
             "BOM inside": "太\ufeff郎", "word joiner": "太\u2060郎", "soft hyphen": "太\u00ad郎",
             "arabic letter mark": "太\u061c郎", "line separator": "太\u2028郎"}


@pytest.mark.parametrize("label", list(INVISIBLE))
def test_invisible_characters_are_refused_in_names_and_addresses(client: TestClient, counter_headers: dict[str, str],
                                                                 model_case: dict[str, Any], label: str) -> None:
    value = INVISIBLE[label]
    for path in ("household.members[0].given_name", "household.members[1].family_name", "address.block",
                 "address.building", "move.previous_address.town"):
        doc = copy.deepcopy(model_case)
        node: Any = doc
        parts = path.split(".")
        for part in parts[:-1]:
            m = re.fullmatch(r"(\w+)\[(\d+)\]", part)
            node = node[m.group(1)][int(m.group(2))] if m else node[part]
        node[parts[-1]] = value
        res = client.post("/api/v1/cases", json=doc, headers=counter_headers)
        assert res.status_code == 422, (label, path, res.text[:200])
        assert "見えない文字" in _errors(res)[path], (label, path, _errors(res))


def test_variation_selectors_in_names_are_still_accepted(client: TestClient, counter_headers: dict[str, str],
                                                         model_case: dict[str, Any]) -> None:
    model_case["household"]["members"][0]["family_name"] = "葛\U000e0102城"
    res = client.post("/api/v1/cases", json=model_case, headers=counter_headers)
    assert res.status_code == 201, res.text


# --- NUL and out-of-range values in query, path and form parameters ---------------------------------

@pytest.mark.parametrize("url", [
    "/api/v1/cases/%00", "/api/v1/cases/ab%00cd/applications", "/api/v1/status/%00", "/q/%00",
    "/api/v1/admin/audit?actor=%00", "/api/v1/admin/audit?case_id=a%00b", "/api/v1/admin/audit?since=0001-01-01T00:00",
    "/api/v1/admin/audit?until=9999-12-31T23:59", "/api/v1/admin/audit.csv?since=0001-01-01T00:00",
    "/api/v1/metrics/visits?from=0001-01-01&to=0001-01-02", "/api/v1/metrics/visits?to=9999-12-31",
    "/api/v1/metrics/report?from=9999-12-30&to=9999-12-31", "/api/v1/metrics/visits?from=%00",
    "/api/v1/queue/tickets/%00", "/api/v1/departments/%00/steps",
])
def test_nul_and_out_of_range_parameters_are_4xx(app: Any, db: Session, url: str) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        make_user(db, "nuladmin", "admin")
        token = client.post("/api/v1/auth/token", data={"username": "nuladmin", "password": PASSWORD}).json()
        res = client.get(url, headers={"Authorization": f"Bearer {token['access_token']}"})
        assert 400 <= res.status_code < 500, (url, res.status_code, res.text[:200])
        assert JAPANESE.search(res.json()["message"]), res.text


@pytest.mark.parametrize("url", ["/dashboard?from=0001-01-01&to=0001-01-02", "/dashboard?to=9999-12-31",
                                 "/dashboard/export.csv?from=%00", "/counter/postal?code=%00"])
def test_nul_and_out_of_range_parameters_on_pages_are_4xx(app: Any, db: Session, url: str) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        make_user(db, "nulpage", "admin")
        page_login(client, "nulpage")
        res = client.get(url, headers={"Accept": "text/html"})
        assert 400 <= res.status_code < 500, (url, res.status_code, res.text[:200])


@pytest.mark.parametrize("fields", [{"username": "clerk\x00", "password": PASSWORD},
                                    {"username": "clerk", "password": "pass\x00word-long"},
                                    {"username": "\x00", "password": "\x00"}])
def test_nul_in_login_forms_is_4xx(app: Any, fields: dict[str, str]) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        res = client.post("/api/v1/auth/token", data=fields)
        assert 400 <= res.status_code < 500, res.text[:200]
        assert JAPANESE.search(res.json()["message"])
        form = client.get("/login", headers={"Accept": "text/html"})
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        res = client.post("/login", data={**fields, "csrf_token": token, "next": "/counter"},
                          headers={"Accept": "text/html"}, follow_redirects=False)
        assert 400 <= res.status_code < 500, res.text[:200]
        res = client.post("/api/v1/auth/token", json=fields)
        assert 400 <= res.status_code < 500, res.text[:200]


# --- signature images -------------------------------------------------------------------------------

def _real_png(width: int = 300, height: int = 100) -> bytes:
    import io

    from PIL import Image, ImageDraw

    image = Image.new("L", (width, height), 255)
    ImageDraw.Draw(image).line([(10, 80), (120, 20), (250, 70)], fill=0, width=4)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _put_signature(client: TestClient, headers: dict[str, str], cid: str, png: bytes) -> Any:
    return client.put(f"/api/v1/cases/{cid}/signature", content=png, headers={**headers, "Content-Type": "image/png"})


def _bomb_png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    width = height = 20000  # 400 million pixels from a few hundred bytes
    raw = zlib.compress(b"\x00" * (width + 1) * 10, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("label", "make", "fragment"), [
    ("truncated", lambda: _real_png()[: len(_real_png()) // 2], "途中で切れて"),
    ("header only", lambda: _real_png()[:40], "途中で切れて"),
    ("corrupt checksum", lambda: _real_png()[:-20] + b"\x00" * 8 + _real_png()[-12:], "壊れて"),
    ("huge dimensions", _bomb_png, "縦横が大きすぎ"),
    ("one pixel", lambda: _real_png(1, 1), "小さすぎ"),
])
def test_broken_signature_images_are_refused_in_japanese(client: TestClient, counter_headers: dict[str, str],
                                                         model_case: dict[str, Any], label: str, make: Any,
                                                         fragment: str) -> None:
    cid = client.post("/api/v1/cases", json=model_case, headers=counter_headers).json()["id"]
    res = _put_signature(client, counter_headers, cid, make())
    assert res.status_code == 422, (label, res.text[:200])
    assert fragment in _errors(res)["signature"], (label, _errors(res))
    assert _put_signature(client, counter_headers, cid, _real_png()).status_code == 204


def test_pdfs_never_fail_because_of_a_stored_signature(app: Any, db: Session, model_case: dict[str, Any]) -> None:
    from app.models import Case

    with TestClient(app, raise_server_exceptions=False) as client:
        make_user(db, "sigclerk", "counter")
        headers = {"Authorization": "Bearer " + client.post(
            "/api/v1/auth/token", data={"username": "sigclerk", "password": PASSWORD}).json()["access_token"]}
        cid = client.post("/api/v1/cases", json=model_case, headers=headers).json()["id"]
        for stored in (_real_png()[:300], b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, b"not an image at all"):
            case = db.get(Case, cid)
            case.signature_png = stored
            db.commit()
            res = client.get(f"/api/v1/cases/{cid}/bundle.pdf", headers=headers)
            assert res.status_code == 200 and res.content.startswith(b"%PDF"), res.text[:200]
