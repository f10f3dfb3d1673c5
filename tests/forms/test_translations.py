"""Definition text in the residents' languages (form_definitions/i18n/<lang>.yaml): coverage, visible
fallback, bad files reported by name, and the coverage report of `kakanai check`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.cli import main
from app.forms import translations
from app.forms.loader import load_definitions
from app.settings import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "form_definitions"


def test_shipped_languages_and_their_coverage() -> None:
    defs = load_definitions(SHIPPED)
    report = translations.coverage(defs, translations.load_catalogs(SHIPPED))
    assert set(report) == {"en", "vi", "zh-Hans", "ko", "pt"}
    needed = translations.texts_to_translate(defs)
    total = len(needed["applications"]) + len(needed["documents"])
    assert report["vi"] == {"translated": total, "total": total, "missing": [], "unused": []}
    assert report["en"]["missing"] == [] and report["ko"]["translated"] < total
    # Documents shown as one common text (identity proof, My Number proof) need no translation here.
    assert "届出人の本人確認書類（運転免許証、マイナンバーカードなど）" not in needed["documents"]
    assert "転出証明書" in needed["documents"]


def test_fallback_is_marked_and_japanese_is_untouched() -> None:
    defs = load_definitions(SHIPPED)
    assert translations.application_title(defs, "vi", "jumin_tennyu", "転入届") == "Thông báo chuyển đến"
    assert translations.document(defs, "ko", "り災証明書（災害復旧）") == "り災証明書（災害復旧）" + translations.FALLBACK_MARK
    assert translations.document(defs, "ja-x-easy", "転出証明書") == "転出証明書"
    assert translations.document(defs, "ja", "転出証明書") == "転出証明書"


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
    ("titles: {}\n", "最上位には applications, documents, questions だけを書いてください"),
    ("documents:\n  転出証明書: ''\n", "documents.転出証明書: 訳を文字列で書いてください"),
    ("documents: [\n", "YAML として読めません"),
])
def test_bad_files_are_reported_by_name(tmp_path: Path, text: str, message: str) -> None:
    target = copy_set(tmp_path)
    (target / "i18n" / "xx.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(translations.TranslationFileError, match=message) as err:
        translations.load_catalogs(target)
    assert str(err.value).startswith("xx.yaml: ")


def test_check_prints_each_languages_coverage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["check", str(SHIPPED)]) == 0
    out = capsys.readouterr().out
    import re

    totals = {lang: (int(done), int(total)) for lang, done, total in re.findall(r"^  ([a-zA-Z-]+): (\d+)/(\d+)（", out, re.M)}
    assert totals["vi"][0] == totals["vi"][1] == totals["en"][0] == totals["en"][1] > 100  # en and vi complete
    assert totals["ko"][0] < totals["ko"][1] and "未翻訳 documents: り災証明書（災害復旧）" in out
    target = copy_set(tmp_path)
    (target / "i18n" / "xx.yaml").write_text("titles: {}\n", encoding="utf-8")
    assert main(["check", str(target)]) == 1
    assert "i18n/xx.yaml: 最上位には" in capsys.readouterr().out
