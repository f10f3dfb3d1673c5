"""Definition text in the residents' languages (form_definitions/i18n/<lang>.yaml): coverage of the
definitions and of the phone's questions, visible fallback, bad files reported by name, and the coverage
report of `kakanai check`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from app.cli import main
from app.forms import translations
from app.forms.loader import load_definitions
from app.settings import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "form_definitions"


SHIPPED_LANGUAGES = {"en", "vi", "zh-Hans", "ko", "pt"}
# The phone's questions have a plain-Japanese rewording too.
QUESTION_LANGUAGES = SHIPPED_LANGUAGES | {"ja-x-easy"}
QUESTIONS_HEADER = "事前入力（スマートフォン）の質問・選択肢の翻訳"


def test_every_shipped_language_is_complete() -> None:
    """Every shipped language translates 100 % of what residents see: a new or changed Japanese text fails here."""
    defs = load_definitions(SHIPPED)
    report = translations.coverage(defs, translations.load_catalogs(SHIPPED))
    assert set(report) == SHIPPED_LANGUAGES
    needed = translations.texts_to_translate(defs)
    total = sum(len(texts) for texts in needed.values())
    assert total > 200
    for lang in sorted(SHIPPED_LANGUAGES):
        assert report[lang] == {"translated": total, "total": total, "missing": [], "unused": []}, lang


def test_every_shipped_language_has_every_question_of_the_phone() -> None:
    """Every question, section title and choice the phone's pre-entry asks is translated (and reworded in
    やさしい日本語): a new or changed interview.yaml text fails here."""
    defs = load_definitions(SHIPPED)
    report = translations.question_coverage(defs, translations.load_catalogs(SHIPPED))
    assert set(report) == QUESTION_LANGUAGES
    total = len(translations.questions_to_translate(defs))
    assert total > 200
    for lang in sorted(QUESTION_LANGUAGES):
        assert report[lang] == {"translated": total, "total": total, "missing": [], "unused": []}, lang


def test_the_phones_questions_are_listed_as_the_phone_asks_them() -> None:
    needed = translations.questions_to_translate(load_definitions(SHIPPED))
    assert {"おくやみ", "亡くなった日", "離婚の種類", "協議離婚", "証明書の請求", "出生当時の世帯の主な仕事"} <= needed
    assert "世帯の方" in needed  # a repeated section's title without its （n）
    # What the clerk settles at the counter is not asked on the phone, so it needs no translation.
    assert not {"来庁日", "来庁した方と本人確認", "代理人", "世帯員番号", "来庁している"} & needed


def test_what_residents_see_is_listed_section_by_section() -> None:
    needed = translations.texts_to_translate(load_definitions(SHIPPED))
    # Documents shown as one common text (identity proof, My Number proof) need no translation here.
    assert "届出人の本人確認書類（運転免許証、マイナンバーカードなど）" not in needed["documents"]
    assert "転出証明書" in needed["documents"]
    assert "引っ越した日から14日以内" in needed["deadlines"]
    assert "不動産の所在地を管轄する法務局（登記所）" in needed["external"]  # an external step's place
    assert any(t.startswith("予約してから行くと") for t in needed["external"])  # and how to go about it
    assert any(t.startswith("印鑑登録は転出によって自動的に抹消されます") for t in needed["notes"])
    # A note given instead of a form (redirect) is read by the resident too.
    assert any("勤務先（所属庁）で請求してください" in t and "作成しません" in t for t in needed["notes"])


def test_fallback_is_marked_and_japanese_is_untouched() -> None:
    defs = load_definitions(SHIPPED)
    assert translations.application_title(defs, "vi", "jumin_tennyu", "転入届") == "Thông báo chuyển đến"
    assert translations.document(defs, "ko", "り災証明書（災害復旧）") == "이재 증명서 (재해 복구)"
    assert translations.text(defs, "pt", "deadlines", "引っ越した日から14日以内") == "Até 14 dias após a mudança"
    assert translations.text(defs, "zh-Hans", "external", "亡くなった方の住所地を所轄する税務署").endswith("（税務署）")
    # A text nobody translated (a city's new wording) is shown in Japanese, marked as such.
    assert translations.document(defs, "ko", "新しい書類") == "新しい書類" + translations.FALLBACK_MARK
    assert translations.text(defs, "en", "notes", "新しい注意") == "新しい注意" + translations.FALLBACK_MARK
    assert translations.application_title(defs, "pt", "no_such_app", "新しい申請") == "新しい申請" + translations.FALLBACK_MARK
    assert translations.document(defs, "ja-x-easy", "転出証明書") == "転出証明書"
    assert translations.document(defs, "ja", "転出証明書") == "転出証明書"
    assert translations.text(defs, "ja", "deadlines", "引っ越した日から14日以内") == "引っ越した日から14日以内"


def copy_set(tmp_path: Path) -> Path:
    target = tmp_path / "defs"
    shutil.copytree(SHIPPED, target)
    return target


def test_a_changed_japanese_text_shows_as_missing_and_its_old_translation_as_unused(tmp_path: Path) -> None:
    target = copy_set(tmp_path)
    app_file = target / "applications" / "tennyu_gaku.yaml"
    app_file.write_text(app_file.read_text(encoding="utf-8").replace("前の学校が発行した在学証明書", "前の学校の在学証明書"),
                        encoding="utf-8")
    defs = load_definitions(target)
    vi = translations.coverage(defs, translations.load_catalogs(target))["vi"]
    assert vi["missing"] == ["documents: 前の学校の在学証明書"]
    assert vi["unused"] == ["documents: 前の学校が発行した在学証明書"]


@pytest.mark.parametrize(("text", "message"), [
    ("applications: [a, b]\n", "applications は「元の文: 訳」の対応表にしてください"),
    ("titles: {}\n", "最上位には applications, documents, deadlines, external, notes, questions だけを書いてください"),
    ("documents:\n  転出証明書: ''\n", "documents.転出証明書: 訳を文字列で書いてください"),
    ("documents: [\n", "YAML として読めません"),
])
def test_bad_files_are_reported_by_name(tmp_path: Path, text: str, message: str) -> None:
    target = copy_set(tmp_path)
    (target / "i18n" / "xx.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(translations.TranslationFileError, match=message) as err:
        translations.load_catalogs(target)
    assert str(err.value).startswith("xx.yaml: ")


def _blocks(out: str) -> tuple[str, str]:
    """`kakanai check`'s coverage of the definition texts, and of the phone's questions."""
    definitions, questions = out.split(QUESTIONS_HEADER)
    return definitions, questions


def _totals(block: str) -> dict[str, tuple[int, int]]:
    return {lang: (int(done), int(total)) for lang, done, total in re.findall(r"^  ([a-zA-Z-]+): (\d+)/(\d+)（", block, re.M)}


def test_check_prints_each_languages_coverage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["check", str(SHIPPED)]) == 0
    out = capsys.readouterr().out
    definitions, questions = _blocks(out)
    totals = _totals(definitions)
    assert set(totals) == SHIPPED_LANGUAGES
    assert all(done == total > 200 for done, total in totals.values()), totals  # every language complete
    asked = _totals(questions)
    assert set(asked) == QUESTION_LANGUAGES
    assert all(done == total > 200 for done, total in asked.values()), asked
    assert "未翻訳" not in out
    target = copy_set(tmp_path)
    ko = target / "i18n" / "ko.yaml"
    ko.write_text(ko.read_text(encoding="utf-8").replace("  り災証明書（災害復旧）: 이재 증명서 (재해 복구)\n", ""), encoding="utf-8")
    assert main(["check", str(target)]) == 0
    out = capsys.readouterr().out
    assert "未翻訳 documents: り災証明書（災害復旧）" in out
    ko_done, ko_total = _totals(_blocks(out)[0])["ko"]
    assert ko_done == ko_total - 1
    (target / "i18n" / "xx.yaml").write_text("titles: {}\n", encoding="utf-8")
    assert main(["check", str(target)]) == 1
    assert "i18n/xx.yaml: 最上位には" in capsys.readouterr().out


@pytest.mark.parametrize("lang", ["vi", "ja-x-easy"])
def test_check_names_a_removed_question_translation(capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str) -> None:
    target = copy_set(tmp_path)
    path = target / "i18n" / f"{lang}.yaml"
    text = path.read_text(encoding="utf-8")
    kept = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("  亡くなった日: "))
    assert kept != text
    path.write_text(kept, encoding="utf-8")
    assert main(["check", str(target)]) == 0
    definitions, questions = _blocks(capsys.readouterr().out)
    assert "亡くなった日" not in definitions
    assert "未翻訳 questions: 亡くなった日" in questions
    asked = _totals(questions)
    assert asked[lang][0] == asked[lang][1] - 1
    assert all(done == total for other, (done, total) in asked.items() if other != lang)
