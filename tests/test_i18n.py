"""The resident pages' languages: every catalog complete, compiled and consistent; language negotiation."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from app import i18n

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
TRANSLATED = [lang for lang in i18n.LANGUAGES.values() if lang.code != i18n.DEFAULT]


def template_ids() -> set[str]:
    with (i18n.CATALOG_DIR / "messages.pot").open("rb") as f:
        return {m.id for m in read_po(f) if m.id}


@pytest.mark.parametrize("lang", TRANSLATED, ids=lambda lang: lang.code)
def test_catalog_is_complete_compiled_and_keeps_placeholders(lang: i18n.Language) -> None:
    po_path = i18n.CATALOG_DIR / lang.catalog / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as f:
        catalog = read_po(f)
    entries = {m.id: m.string for m in catalog if m.id}
    assert set(entries) == template_ids(), "run scripts/i18n.sh after changing resident-facing strings"
    assert all(entries.values()), [k for k, v in entries.items() if not v]
    compiled = i18n.translations_for(lang.code)
    for msgid, msgstr in entries.items():
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(msgstr)), msgid
        assert compiled.gettext(msgid) == msgstr, f"{lang.catalog}: the .mo is older than the .po (scripts/i18n.sh compile)"
    assert not any(m.fuzzy for m in catalog if m.id)


def test_japanese_is_the_source_text() -> None:
    assert i18n.translations_for("ja").gettext("受付番号") == "受付番号"
    assert i18n.translations_for("nonsense").gettext("受付番号") == "受付番号"


@pytest.mark.parametrize(("header", "expected"), [
    (None, "ja"), ("", "ja"), ("*", "ja"),
    ("en-GB,en;q=0.8", "en"), ("zh-CN", "zh-Hans"), ("zh-Hans-SG", "zh-Hans"), ("zh-TW,en;q=0.5", "en"),
    ("pt-PT", "pt"), ("ko;q=0.2, vi;q=0.9", "vi"), ("de, fr;q=0.9", "ja"), ("en;q=0, ko", "ko"),
    ("ja-JP,ja;q=0.9,en;q=0.8", "ja"), ("en;q=abc, ko", "ko"),
])
def test_accept_language(header: str | None, expected: str) -> None:
    assert i18n.negotiate(header) == expected


def test_switcher_and_cookie_win_over_the_browser() -> None:
    assert i18n.choose("ja-x-easy", "en", "ko") == "ja-x-easy"
    assert i18n.choose("klingon", "vi", "ko") == "vi"
    assert i18n.choose(None, "bogus", "ko") == "ko"
    assert i18n.normalize("ja_EASY") == "ja-x-easy" and i18n.normalize("pt_BR") == "pt"
    assert [item["code"] for item in i18n.switcher("en") if item["current"]] == ["en"]
