"""The counter on a tablet, in real headless Chromium: the model household typed in once, signed once,
and the bundle downloaded; reloads lose nothing; a stale tab gets a conflict instead of overwriting."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.models import Case, Signature
from tests.browser.conftest import SCREENSHOT_DIR, TABLET, LiveServer, screenshot, screenshot_of
from tests.conftest import MODEL_CASE, PASSWORD

pytestmark = pytest.mark.browser

SAVED = "保存済み"
# What the forms ask beyond the benchmark household's file (typed in the browser test).
EXTRA = {"honseki": "大阪府大阪市北区梅田一丁目2番", "hittousha": "尼崎　太郎",
         "work": {"address": "大阪府大阪市中央区本町一丁目1番", "hours": "9:00〜17:30"},
         "insurance_card": {"insurer_number": "06271234", "symbol_number": "12・3456", "acquired_on": "2024-04-01"}}
NEW_KEYS = ("honseki", "hittousha", "pension", "work", "insurance_card")


def model() -> dict[str, Any]:
    return json.loads(MODEL_CASE.read_text(encoding="utf-8"))


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Any:
    context = browser.new_context(viewport=TABLET, device_scale_factor=1, has_touch=True, locale="ja-JP",
                                  accept_downloads=True)
    context.set_default_timeout(30_000)
    pg = context.new_page()
    yield pg
    context.close()


def log_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("ユーザー名").fill("clerk")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(f"{base}/counter")


def start(page: Any, *events: str) -> str:
    for label in events:
        page.get_by_label(label).check()
    page.get_by_role("button", name="整理券を発行して聞き取りを始める").click()
    page.wait_for_url("**/counter/visits/*")
    return page.url.split("/counter/visits/")[1].split("?")[0]


def wait_saved(page: Any) -> None:
    page.wait_for_function("() => document.getElementById('save-state').textContent.startsWith('保存済み')")


def section(page: Any, sid: str) -> Any:
    return page.locator(f"#section-{sid}")


def fill_address(scope: Any, addr: dict[str, str], page: Any) -> None:
    # Typing the postal code fills prefecture / city / town from Japan Post's data.
    scope.get_by_label("郵便番号").fill(addr["postal_code"].replace("-", ""))
    page.wait_for_function(
        "([el, city]) => el.value === city", arg=[scope.get_by_label("市区町村").element_handle(), addr["city"]])
    assert scope.get_by_label("都道府県").input_value() == addr["prefecture"]
    assert scope.get_by_label("町名").input_value() == addr["town"]
    scope.get_by_label("丁目・番地").fill(addr["block"])
    scope.get_by_label("建物名・部屋番号（方書）").fill(addr["building"])


def fill_member(item: Any, m: dict[str, Any], *, relationship: str, birth: str, kana_hiragana: bool = False) -> None:
    item.get_by_label(relationship, exact=True).check()
    item.get_by_label("氏", exact=True).fill(m["family_name"])
    item.get_by_label("名", exact=True).fill(m["given_name"])
    fam_kana = m["family_name_kana"]
    if kana_hiragana:  # typed in hiragana; the screen turns it into katakana
        fam_kana = "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in fam_kana)
    item.get_by_label("氏（フリガナ）").fill(fam_kana)
    item.get_by_label("名（フリガナ）").fill(m["given_name_kana"])
    item.get_by_label("生年月日").fill(birth)
    item.get_by_label("男" if m["sex"] == "male" else "女", exact=True).check()
    item.get_by_label("個人番号（マイナンバー）").fill(m["my_number"])
    insurance = {"employee": "勤務先の健康保険（本人）", "employee_dependent": "家族の勤務先の健康保険（扶養）"}
    item.get_by_label(insurance[m["health_insurance"]]).check()
    if m.get("occupation"):
        item.get_by_label({"employee": "会社員", "part_time": "パート・アルバイト"}[m["occupation"]], exact=True).check()
        item.get_by_label("勤務先", exact=True).fill(m["employer"])


def enter_model_household(page: Any) -> None:
    m = model()
    page.get_by_label("引っ越した日（異動日）").fill("R8.4.1")  # 和暦 shorthand
    fill_address(section(page, "move"), m["move"]["previous_address"], page)
    page.get_by_label("マイナンバーカードで転出届をした（特例転入）").check()
    fill_address(section(page, "contact"), m["address"], page)
    page.get_by_label("電話番号（日中に連絡がとれる番号）").fill(m["phone"])
    members = section(page, "members")
    people = m["household"]["members"]
    births = ["平成2年6月15日", "1992-11-03", "H29.9.20", "令和5年12月1日"]
    relationships = ["世帯主", "配偶者（妻・夫）", "子", "子"]
    for i, person in enumerate(people):
        members.get_by_role("button", name="＋ 世帯員を追加").click()
        item = members.locator(".items > .item").nth(i)
        fill_member(item, person, relationship=relationships[i], birth=births[i], kana_hiragana=i == 1)
    wait_saved(page)
    ichiro, jiro = members.locator(".items > .item").nth(2), members.locator(".items > .item").nth(3)
    # Questions that only the determination asks for appear once the birth dates are known.
    ichiro.get_by_label("小学3年").check()
    ichiro.get_by_label("前の学校").fill(people[2]["school"]["previous_school"])
    care = people[3]["childcare"]
    jiro.get_by_label("保育の利用を始めたい日").fill(care["wanted_from"])
    jiro.get_by_label("就労", exact=True).check()
    jiro.get_by_label("保育標準時間（最長11時間）").check()
    jiro.get_by_label("希望する施設（希望順、6つまで）").fill("\n".join(care["preferred_facilities"]))
    # Asked only because a form needs them: 本籍 (転入届), 年金 (児童手当), the children's insurance card
    # (医療費), the applicant's work (保育).
    taro = members.locator(".items > .item").nth(0)
    taro.get_by_label("本籍", exact=True).fill(EXTRA["honseki"])
    taro.get_by_label("戸籍の筆頭者").fill(EXTRA["hittousha"])
    taro.get_by_label("厚生年金").check()
    taro.get_by_label("勤務先の所在地").fill(EXTRA["work"]["address"])
    taro.get_by_label("就労時間（例 9:00〜17:00）").fill(EXTRA["work"]["hours"])
    hanako = members.locator(".items > .item").nth(1)
    hanako.get_by_label("戸籍の筆頭者").locator("xpath=ancestor::div[contains(@class,'field')]").get_by_role(
        "button", name="世帯主と同じ").click()
    for child in (ichiro, jiro):
        child.get_by_label("保険者番号（8桁、資格確認書などで確認）").fill(EXTRA["insurance_card"]["insurer_number"])
        child.get_by_label("保険証の記号・番号").fill(EXTRA["insurance_card"]["symbol_number"])
        child.get_by_label("保険の資格取得日").fill(EXTRA["insurance_card"]["acquired_on"])
    bank = section(page, "bank")
    bank.get_by_label("金融機関名").fill(m["bank_account"]["bank_name"])
    bank.get_by_label("支店名").fill(m["bank_account"]["branch_name"])
    bank.get_by_label("普通").check()
    bank.get_by_label("口座番号（7桁）").fill(m["bank_account"]["account_number"])
    bank.get_by_label("口座名義（フリガナ）").fill(m["bank_account"]["holder_kana"])
    page.locator("#save-state").click()  # move focus away so the last field is saved
    wait_saved(page)


def test_model_household_through_the_screens(page: Any, live_server: LiveServer, tmp_path: Path) -> None:
    base = live_server.url
    log_in(page, base)
    screenshot(page, "1_today")
    case_id = start(page, "転入（引っ越してきた）", "保育（保育所などを利用したい）")
    assert page.locator(".ticket-number").is_visible()
    enter_model_household(page)
    panel = page.locator("#panel")
    titles = ("住民異動届（転入届）", "児童手当", "子ども医療費助成", "保育所等利用申込書", "転入学届", "乳幼児健診",
              "個人番号カード継続利用")
    for title in titles:
        assert title in panel.inner_text(), title
    assert "転入" in panel.locator(".reasons").first.inner_text()
    # Every application has what it needs: no question is still marked 「○○で必要」.
    expect(page.locator(".field.is-needed")).to_have_count(0)
    assert panel.locator(".still-needed").count() == 0
    screenshot(page, "2_interview")
    panel_text = panel.inner_text()

    # What the screen stored equals the model household, typed once (和暦 and ひらがな normalised).
    with live_server.session() as s:
        stored = s.get(Case, case_id).answers
    expected = model()
    for key in ("survey_baseline", "$comment"):
        expected.pop(key)
    assert stored["household"]["members"][0]["honseki"] == EXTRA["honseki"]
    assert stored["household"]["members"][1]["hittousha"] == EXTRA["hittousha"]  # 世帯主と同じ
    stored_members = [{k: v for k, v in m.items() if k not in NEW_KEYS} for m in stored["household"]["members"]]
    assert stored_members == expected["household"]["members"]
    assert {k: v for k, v in stored.items() if k not in ("visit_date", "household")} == {
        k: v for k, v in expected.items() if k not in ("visit_date", "household")}

    page.get_by_role("link", name="確認と署名へ進む").click()
    page.wait_for_url("**/review")
    # The household once, before the form previews: at most three tablet screens.
    top = page.evaluate("() => document.getElementById('previews').getBoundingClientRect().top + window.scrollY")
    assert top <= 3 * TABLET["height"], top
    summary = page.locator("#summary").inner_text()
    assert summary.count("南塚口町") == 1  # the address once, not once per form
    review = page.locator("#summary").inner_text() + page.locator(".review").inner_text()
    assert "尼崎" in review and "次郎" in review and "********9018" in review and "123456789018" not in review
    # The moved-in date lies before the server's today by more than 14 days in these tests' calendar or not:
    # whichever it is, the review says it exactly when the side panel does.
    assert page.locator("#late").count() == (1 if "を過ぎています" in panel_text else 0)
    if page.locator("#late").count():
        screenshot_of(page, page.locator("#late"), "8_review_late")
    # The actual form pages as images, loaded as they scroll into view.
    images = page.locator("#previews img.page-image")
    assert images.count() >= 8
    first = images.first
    first.scroll_into_view_if_needed()
    page.wait_for_function("(img) => img.complete && img.naturalWidth === 1000", arg=first.element_handle())
    assert images.nth(images.count() - 1).evaluate("(img) => img.naturalWidth") == 0  # not loaded before it is needed
    screenshot_of(page, page.locator("#previews .review-form").first, "9_review_page_previews")
    pad = page.locator("#signature-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    page.mouse.move(box["x"] + 60, box["y"] + box["height"] * 0.6)
    page.mouse.down()
    for step in range(1, 30):
        page.mouse.move(box["x"] + 60 + step * 18, box["y"] + box["height"] * (0.6 - 0.2 * ((step % 6) / 6)))
    page.mouse.up()
    if SCREENSHOT_DIR:  # the full-page screenshot shows every page image, not the lazy placeholders
        page.evaluate("() => document.querySelectorAll('img[loading=lazy]').forEach((i) => { i.loading = 'eager'; })")
        page.wait_for_function("() => Array.from(document.images).every((i) => i.complete && i.naturalWidth > 0)")
        page.evaluate("() => Promise.all(Array.from(document.images).map((i) => i.decode()))")
    screenshot(page, "3_review_sign")
    page.get_by_role("button", name="署名して申請書を作成する").click()
    page.wait_for_url("**/documents")
    assert "申請書ができました（8件）" in page.locator("h1").inner_text()
    screenshot(page, "4_documents")

    with page.expect_download() as info:
        page.locator("#download-bundle").click()
    target = tmp_path / "bundle.pdf"
    info.value.save_as(target)
    assert target.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", str(target), "-"], capture_output=True, text=True, check=True).stdout
    for name in ("尼崎", "太郎", "花子", "一郎", "次郎", "アマガサキ"):
        assert name in text, name
    with live_server.session() as s:
        case = s.get(Case, case_id)
        assert case.signed_at is not None
        signed = s.scalars(select(Signature).where(Signature.case_id == case_id)).all()
        assert [x.signer for x in signed] == ["m1"] and signed[0].png.startswith(b"\x89PNG")

    page.goto(f"{base}/counter")
    row = page.locator("table.list tbody tr").filter(has_text=f"{case.ticket_number:03d}")
    assert "署名済" in row.inner_text()


def test_reload_mid_interview_loses_nothing(page: Any, live_server: LiveServer) -> None:
    base = live_server.url
    log_in(page, base)
    case_id = start(page, "転入（引っ越してきた）")
    page.get_by_label("電話番号（日中に連絡がとれる番号）").fill("090-1111-2222")
    wait_saved(page)
    members = section(page, "members")
    members.get_by_role("button", name="＋ 世帯員を追加").click()
    item = members.locator(".items > .item").first
    item.get_by_label("氏", exact=True).fill("尼崎")
    item.get_by_label("個人番号（マイナンバー）").fill("123456789012")  # wrong check digit: not storable
    expect(item.locator(".field[data-key=my_number] .error")).to_contain_text("検査用数字")
    item.get_by_label("名", exact=True).fill("太郎")
    # No waiting for a save on its way: it may commit after the reloaded page was rendered; its 409 then
    # names this tablet's own save id, and the page retries on the newer version without a conflict box.
    page.reload()  # before the debounced autosave of the last edits had a chance to run
    item = section(page, "members").locator(".items > .item").first
    assert item.get_by_label("氏", exact=True).input_value() == "尼崎"
    assert item.get_by_label("名", exact=True).input_value() == "太郎"
    # A My Number never goes into the tablet's storage: the draft kept only its mask.
    assert item.get_by_label("個人番号（マイナンバー）").input_value() == "********9012"
    assert page.get_by_label("電話番号（日中に連絡がとれる番号）").input_value() == "090-1111-2222"
    assert page.locator("#restored").is_visible()
    wait_saved(page)
    assert page.locator("#conflict").is_hidden()
    with live_server.session() as s:
        stored = s.get(Case, case_id).answers
    assert stored["household"]["members"][0]["given_name"] == "太郎"
    assert "my_number" not in stored["household"]["members"][0]
    # The unsaved number is not silently dropped: the field asks for it again (and signing waits for it).
    expect(item.locator(".field[data-key=my_number] .error")).to_contain_text("もう一度入力してください")
    assert "household.members[0].my_number" in [x["field"] for x in stored.get("$invalid", [])]


def test_stale_tab_gets_a_conflict_message(page: Any, live_server: LiveServer) -> None:
    base = live_server.url
    log_in(page, base)
    case_id = start(page, "転入（引っ越してきた）")
    other = page.context.new_page()
    other.goto(page.url)
    page.get_by_label("電話番号（日中に連絡がとれる番号）").fill("090-1111-2222")
    wait_saved(page)
    other.get_by_label("電話番号（日中に連絡がとれる番号）").fill("03-9999-9999")
    conflict = other.locator("#conflict")
    conflict.wait_for(state="visible")
    assert "別の端末で更新されました" in conflict.inner_text()
    screenshot(other, "5_conflict")
    with live_server.session() as s:
        assert s.get(Case, case_id).answers["phone"] == "090-1111-2222"
    other.get_by_role("button", name="最新の内容を表示する（この画面の入力は破棄）").click()
    other.wait_for_load_state()
    assert other.get_by_label("電話番号（日中に連絡がとれる番号）").input_value() == "090-1111-2222"
    other.close()


def test_invalid_entries_show_japanese_messages_next_to_the_field(page: Any, live_server: LiveServer) -> None:
    log_in(page, live_server.url)
    start(page, "転入（引っ越してきた）")
    page.get_by_label("引っ越した日（異動日）").fill("令和99年13月1日")
    page.get_by_label("電話番号（日中に連絡がとれる番号）").fill("12")
    page.locator("#save-state").click()
    expect(page.locator(".field[data-path='move.moved_on'] .error")).not_to_be_empty()
    expect(page.locator(".field[data-path='phone'] .error")).to_contain_text("電話番号")
    # The typed text stays on screen for correction.
    assert page.get_by_label("引っ越した日（異動日）").input_value() == "令和99年13月1日"
    expect(page.get_by_label("電話番号（日中に連絡がとれる番号）")).to_have_attribute("aria-invalid", "true")


def test_a_reload_while_a_save_is_on_its_way_is_not_taken_for_another_tablet(page: Any, live_server: LiveServer) -> None:
    # The save reaches the server and is stored, but the tablet reloads before the answer comes back: the
    # newer version is this tablet's own save (its id is on the answers_saved event), not a conflict.
    base = live_server.url
    log_in(page, base)
    case_id = start(page, "転入（引っ越してきた）")
    page.get_by_label("電話番号（日中に連絡がとれる番号）").fill("090-1111-2222")
    wait_saved(page)
    held: list[Any] = []

    def hold(route: Any) -> None:
        route.fetch()  # the server stores it; the tablet never hears back
        held.append(route)

    page.route("**/answers", hold)
    page.get_by_label("電話番号（日中に連絡がとれる番号）").fill("090-3333-4444")
    page.get_by_label("電話番号（日中に連絡がとれる番号）").blur()
    page.wait_for_function("() => document.getElementById('save-state').textContent.startsWith('保存中')")
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the save never left the tablet"
    page.unroute("**/answers")
    page.reload()
    assert page.locator("#conflict").is_hidden()
    assert page.get_by_label("電話番号（日中に連絡がとれる番号）").input_value() == "090-3333-4444"
    wait_saved(page)
    with live_server.session() as s:
        assert s.get(Case, case_id).answers["phone"] == "090-3333-4444"


def test_a_save_landing_after_the_reloaded_page_was_rendered_is_still_its_own(page: Any, live_server: LiveServer) -> None:
    # The race forced: the tablet's save is held back while the page reloads and is only delivered to the
    # server once the reloaded page has rendered (on the old version). The reloaded page's own save then
    # gets a 409 naming the held save's id; the page knows the id and saves again on the newer version.
    base = live_server.url
    log_in(page, base)
    case_id = start(page, "転入（引っ越してきた）")
    phone = page.get_by_label("電話番号（日中に連絡がとれる番号）")
    phone.fill("090-1111-2222")
    wait_saved(page)
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route.request.post_data)
        route.abort()  # the tablet never hears back; the server has not seen it yet

    page.route("**/answers", hold)
    phone.fill("090-3333-4444")
    phone.blur()
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the save never left the tablet"
    page.unroute("**/answers")
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/answers") else None)
    page.reload()
    csrf = page.locator("#interview").get_attribute("data-csrf")
    # Now the held save arrives: it commits after the reloaded page was rendered.
    late = page.request.post(f"{base}/counter/visits/{case_id}/answers", data=held[0],
                             headers={"Content-Type": "application/json", "X-CSRF-Token": csrf})
    assert late.status == 200
    wait_saved(page)
    assert 409 in statuses  # the reloaded page did run into its own save
    assert page.locator("#conflict").is_hidden()
    assert phone.input_value() == "090-3333-4444"
    with live_server.session() as s:
        assert s.get(Case, case_id).answers["phone"] == "090-3333-4444"
