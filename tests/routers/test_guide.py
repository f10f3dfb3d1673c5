"""The public 手続きガイド: no login, nothing stored, the same determination as the counter, in 7 languages."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEntry, Case

HTML = {"Accept": "text/html"}


def test_guide_without_answers_shows_the_questions_only(client: TestClient) -> None:
    res = client.get("/guide?lang=ja", headers=HTML)
    assert res.status_code == 200
    assert "手続きガイド" in res.text and 'name="events"' in res.text
    assert 'id="result"' not in res.text
    assert res.headers["cache-control"] == "no-store"


def test_move_out_answers_give_the_counters_procedures_and_a_qr(client: TestClient, db: Session) -> None:
    before = db.scalar(select(func.count()).select_from(Case))
    res = client.get("/guide?lang=ja&events=move_out&school=1&preschool=1&national_insurance=1", headers=HTML)
    assert res.status_code == 200
    apps = re.findall(r'data-app="([a-z_]+)"', res.text)
    assert sorted(apps) == sorted(["jumin_tenshutsu", "kokuho_soshitsu", "jido_teate_shometsu", "kodomo_iryo_soshitsu",
                                   "tenshutsu_gaku", "hoiku_taisho"])
    assert "市民課" in res.text and "14日以内" in res.text and "<svg" in res.text
    # Nothing stored, nothing audited, no session cookie.
    assert db.scalar(select(func.count()).select_from(Case)) == before
    assert db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.target.like("%guide%"))) == 0
    assert "kakanai_session" not in res.headers.get("set-cookie", "")


def test_death_guide_lists_external_steps_and_english_ui(client: TestClient) -> None:
    res = client.get("/guide?lang=en&events=death&elderly=75", headers=HTML)
    assert res.status_code == 200
    assert '<html lang="en">' in res.text
    assert "Procedures guide" in res.text
    apps = re.findall(r'data-app="([a-z_]+)"', res.text)
    assert {"kouki_soshitsu", "sosaihi", "ext_sozoku_hoki", "ext_jun_kakutei", "ext_sozokuzei"} <= set(apps)
    assert "家庭裁判所" in res.text  # the place, kept in Japanese to show at the counter


def test_bad_guide_input_is_ignored_not_an_error(client: TestClient) -> None:
    res = client.get("/guide?events=%3Cscript%3E&events=move_in&school=-3&preschool=x&elderly=999", headers=HTML)
    assert res.status_code == 200
    assert "<script>" not in res.text
    assert "jumin_tennyu" in res.text


def test_the_qr_starts_the_counter_with_the_life_events_ticked(client: TestClient, db: Session) -> None:
    from app.routers.guide import guide as guide_service
    from tests.conftest import make_user
    from tests.routers.test_counter_pages import post_login_form

    answers = guide_service.GuideAnswers(events=("move_within", "divorce"), lone_parent=True)
    url = guide_service.counter_start_url("http://testserver", answers)
    assert parse_qs(urlparse(url).query) == {"events": ["move_within", "divorce"]}
    make_user(db, "madoguchi", "counter")
    assert post_login_form(client, "madoguchi").status_code == 303
    page = client.get(urlparse(url).path + "?" + urlparse(url).query, headers=HTML).text
    checked = re.findall(r'name="life_events" value="([a-z_]+)" checked', page)
    assert sorted(checked) == ["divorce", "move_within"]
