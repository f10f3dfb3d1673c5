"""Languages of the resident pages: gettext catalogs (Babel) and the choice of language per request.

Source strings (msgids) are Japanese, so Japanese needs no translation. Public language codes (the
`?lang=` switcher, the `lang` cookie, the JSON `lang` field) and their catalog directories:

=============  =================  ======================================
public code    catalog            language
=============  =================  ======================================
``ja``         ``ja``             日本語 (default)
``ja-x-easy``  ``ja_EASY``        やさしい日本語 (BCP 47 private use tag)
``en``         ``en``             English
``zh-Hans``    ``zh_Hans``        简体中文 (Accept-Language zh, zh-CN, zh-SG)
``ko``         ``ko``             한국어
``vi``         ``vi``             Tiếng Việt
``pt``         ``pt_BR``          Português (Brazilian wording; pt, pt-BR, pt-PT)
=============  =================  ======================================

Update the catalogs with ``scripts/i18n.sh`` (extract, update, compile).
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.support import NullTranslations, Translations
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

CATALOG_DIR = Path(__file__).resolve().parent
DOMAIN = "messages"
COOKIE = "lang"
DEFAULT = "ja"


@dataclass(frozen=True)
class Language:
    """One language the resident pages speak."""

    code: str
    catalog: str
    label: str
    html_lang: str


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("ja", "ja", "日本語", "ja"),
        Language("ja-x-easy", "ja_EASY", "やさしい にほんご", "ja"),
        Language("en", "en", "English", "en"),
        Language("zh-Hans", "zh_Hans", "简体中文", "zh-Hans"),
        Language("ko", "ko", "한국어", "ko"),
        Language("vi", "vi", "Tiếng Việt", "vi"),
        Language("pt", "pt_BR", "Português", "pt-BR"),
    )
}


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated later, where the language is known."""
    return message


def normalize(code: str | None) -> str | None:
    """The public code for a language tag we speak (`zh-CN` → `zh-Hans`), or None."""
    if not code:
        return None
    tag = code.strip().replace("_", "-").lower()
    if len(tag) > 35:
        return None
    for known in LANGUAGES:
        if tag == known.lower():
            return known
    if tag in ("ja-easy", "ja-x-yasashii", "easy-ja"):
        return "ja-x-easy"
    primary, _, rest = tag.partition("-")
    if primary == "zh":
        # Traditional Chinese readers get no simplified page by surprise: they fall through.
        if rest.startswith(("hant", "tw", "hk", "mo")):
            return None
        return "zh-Hans"
    if primary in ("ja", "en", "ko", "vi", "pt"):
        return primary
    return None


def negotiate(accept_language: str | None) -> str:
    """The best language for an Accept-Language header (q-values honoured), Japanese by default."""
    if not accept_language:
        return DEFAULT
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, index, tag))
    for _q, _i, tag in sorted(ranked):
        code = normalize(tag)
        if code:
            return code
    return DEFAULT


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page language: the switcher's `?lang=`, then the cookie it set, then the browser's languages."""
    return normalize(query) or normalize(cookie) or negotiate(accept_language)


@lru_cache(maxsize=16)
def translations_for(lang: str) -> _gettext.NullTranslations:
    """The compiled catalog of a language (empty for Japanese, whose msgids are the text)."""
    language = LANGUAGES.get(lang) or LANGUAGES[DEFAULT]
    if language.code == DEFAULT:
        return NullTranslations()
    return Translations.load(str(CATALOG_DIR), [language.catalog], domain=DOMAIN)


def gettext_for(lang: str) -> Callable[[str], str]:
    """A plain gettext function for one language (for JSON and other non-template text)."""
    return translations_for(lang).gettext


def template_gettext(lang: str) -> dict[str, Any]:
    """`gettext`, `ngettext` and `_` for one render, in jinja2's "newstyle" form.

    Passed in the template context rather than installed on the shared environment: pages render in
    a thread pool, and installing translations per request on one environment would race.
    """
    trans = translations_for(lang)

    @pass_context
    def gettext(context: Context, message: str, **variables: Any) -> str:
        text = trans.gettext(message)
        if context.eval_ctx.autoescape:
            # Catalog text is ours (trusted); Markup's `%` escapes the variables put into it.
            text = Markup(text)  # noqa: S704
        return text % variables if variables else text

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        text = trans.ngettext(singular, plural, num)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704 - trusted catalog text, see gettext above
        return text % variables

    return {"gettext": gettext, "ngettext": ngettext, "_": gettext}


def switcher(current: str) -> list[Mapping[str, Any]]:
    """The language links of the switcher, each in its own language."""
    return [{"code": lang.code, "label": lang.label, "html_lang": lang.html_lang, "current": lang.code == current}
            for lang in LANGUAGES.values()]
