"""Furigana for やさしい日本語 from the morphological analyser (fugashi + unidic-lite), not a hand list."""

from __future__ import annotations

import pytest

from app.i18n.furigana import ruby


@pytest.mark.parametrize(("text", "html"), [
    ("転出証明書", "<ruby>転出<rt>てんしゅつ</rt></ruby><ruby>証明<rt>しょうめい</rt></ruby><ruby>書<rt>しょ</rt></ruby>"),
    ("書かない窓口", "<ruby>書<rt>か</rt></ruby>かない<ruby>窓口<rt>まどぐち</rt></ruby>"),  # okurigana outside
    ("母子健康手帳", "<ruby>母子<rt>ぼし</rt></ruby><ruby>健康<rt>けんこう</rt></ruby><ruby>手帳<rt>てちょう</rt></ruby>"),
    ("マイナンバーカード", "マイナンバーカード"),
    ("<script>出生</script>", "&lt;script&gt;<ruby>出生<rt>しゅっしょう</rt></ruby>&lt;/script&gt;"),
])
def test_readings_over_kanji_words_and_everything_escaped(text: str, html: str) -> None:
    assert str(ruby(text)) == html
