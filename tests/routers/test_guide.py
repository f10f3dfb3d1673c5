"""The public 手続きガイド: no login, nothing stored, the same determination as the counter, in 7 languages."""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.forms import translations
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


# --- the guide in the resident's language (issue #14/#15) ------------------------------------------------

# Per language: (move-in title, a move-in document, the 市民課 name, a death step's title, its place, a death
# document, a deadline's wording). Each must come from the translation files or the gettext catalogs.
TRANSLATED = {
    "en": ("Moving-in notification", "Moving-out certificate", "Citizens' Affairs Division",
           "Inheritance tax return", "Family court (家庭裁判所)", "Pension certificate of the deceased",
           "Within 14 days of moving"),
    "vi": ("Thông báo chuyển đến", "Giấy chứng nhận chuyển đi", "Phòng Hộ tịch – Cư dân",
           "Khai thuế thừa kế", "Tòa án gia đình (家庭裁判所)", "Giấy chứng nhận lương hưu của người mất",
           "Trong vòng 14 ngày kể từ ngày chuyển nhà"),
    "zh-Hans": ("迁入申报", "迁出证明书", "市民课", "继承税申报（税务署）", "家庭法院（家庭裁判所）",
                "已故者的年金证书", "自搬家之日起14天内"),
    "ko": ("전입 신고", "전출 증명서", "시민과", "상속세 신고 (세무서)", "가정법원 (家庭裁判所)",
           "고인의 연금 증서", "이사한 날부터 14일 이내"),
    "pt": ("Notificação de mudança para a cidade", "Certificado de mudança (saída)", "Divisão de Registro de Moradores",
           "Declaração do imposto sobre herança", "Tribunal de família (家庭裁判所)",
           "Certificado de aposentadoria do falecido", "Até 14 dias após a mudança"),
}


def guide_text(client: TestClient, query: str) -> str:
    res = client.get(f"/guide?{query}", headers=HTML)
    assert res.status_code == 200
    import html

    return html.unescape(res.text)


@pytest.mark.parametrize("lang", sorted(TRANSLATED))
def test_the_guide_speaks_the_residents_language(client: TestClient, lang: str) -> None:
    title, document, department, death_title, court, death_document, deadline = TRANSLATED[lang]
    move_in = guide_text(client, f"lang={lang}&events=move_in&school=1")
    assert title in move_in and document in move_in and department in move_in and deadline in move_in
    # The Japanese name stays beside the translation: it is what the sign and the counter clerk say.
    assert 'lang="ja">転入届</span>' in move_in and "（市民課）" in move_in
    assert translations.FALLBACK_MARK not in move_in and "class=\"note untranslated\"" not in move_in
    death = guide_text(client, f"lang={lang}&events=death&elderly=75&national_insurance=1")
    assert death_title in death and court in death
    assert death_document in death
    assert translations.FALLBACK_MARK not in death
    assert 'lang="ja">相続税（税務署）</span>' in death  # external steps keep their Japanese name too


def test_the_guide_in_japanese_and_easy_japanese_reads_the_definitions_as_written(client: TestClient) -> None:
    ja = guide_text(client, "lang=ja&events=move_in")
    assert "転入届" in ja and "転出証明書" in ja and "引っ越した日から14日以内" in ja and "title-ja" not in ja
    easy = client.get("/guide?lang=ja-x-easy&events=move_in", headers=HTML).text
    # やさしい日本語: furigana computed over the definitions' kanji (fugashi + unidic-lite).
    assert "<ruby>転出<rt>てんしゅつ</rt></ruby>" in easy and "<ruby>転入<rt>てんにゅう</rt></ruby>" in easy


def test_a_missing_translation_falls_back_visibly(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    real = translations.catalogs_for

    def without_some(defs: object) -> dict[str, translations.Catalog]:
        cats = dict(real(defs))  # type: ignore[arg-type]
        ko = cats["ko"]
        cats["ko"] = dataclasses.replace(
            ko, applications={k: v for k, v in ko.applications.items() if k != "jumin_tennyu"},
            documents={k: v for k, v in ko.documents.items() if k != "転出証明書"},
            deadlines={k: v for k, v in ko.deadlines.items() if k != "引っ越した日から14日以内"})
        return cats

    monkeypatch.setattr(translations, "catalogs_for", without_some)
    page = guide_text(client, "lang=ko&events=move_in")
    mark = translations.FALLBACK_MARK
    assert f"転入届{mark}" in page and f"転出証明書{mark}" in page and f"引っ越した日から14日以内{mark}" in page
    assert "아직 번역되지 않은 문장은 일본어 그대로 [日本語] 표시와 함께 보여 줍니다." in page
    assert "시민과" in page  # the rest stays translated
