"""Definition text in the residents' languages: form_definitions/i18n/<lang>.yaml, one file per language.

What the phone page shows from the definitions (application titles, the documents to bring) is
translated in files a city edits beside the definitions, keyed by application id and by the Japanese
text itself (so a changed Japanese text shows as untranslated instead of showing an old translation).
Department names, places, reasons and the page's own words are gettext messages (app/i18n). A text
with no translation falls back to Japanese, visibly marked, and `kakanai check` prints each
language's coverage. Pure: files in, dictionaries out.

    # form_definitions/i18n/vi.yaml
    applications:
      jumin_tennyu: Thông báo chuyển đến
    documents:
      転出証明書: Giấy chứng nhận chuyển đi
    questions:            # interview.yaml's labels, titles and choices on the phone's pre-entry (/pre)
      生年月日: Ngày sinh
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from app.forms.loader import DefinitionSet

SECTIONS = ("applications", "documents", "questions")
# Shown after a Japanese text that has no translation yet (the resident sees why it is Japanese).
FALLBACK_MARK = " [日本語]"


@dataclass(frozen=True)
class Catalog:
    """One language's definition texts."""

    lang: str
    applications: dict[str, str] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)
    # interview.yaml's labels, section titles and choices (the phone's pre-entry), by the Japanese text.
    questions: dict[str, str] = field(default_factory=dict)


class TranslationFileError(ValueError):
    """A translation file that cannot be used (the message names the file and the entry)."""


def _load_file(path: Path) -> Catalog:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TranslationFileError(f"{path.name}: YAML として読めません（{type(exc).__name__}）") from None
    if not isinstance(data, dict) or set(data) - set(SECTIONS):
        raise TranslationFileError(f"{path.name}: 最上位には {', '.join(SECTIONS)} だけを書いてください")
    parts: dict[str, dict[str, str]] = {}
    for section in SECTIONS:
        entries = data.get(section) or {}
        if not isinstance(entries, dict):
            raise TranslationFileError(f"{path.name}: {section} は「元の文: 訳」の対応表にしてください")
        for key, value in entries.items():
            if not isinstance(key, str) or not isinstance(value, str) or not value.strip():
                raise TranslationFileError(f"{path.name}: {section}.{key}: 訳を文字列で書いてください")
        parts[section] = {k: v.strip() for k, v in entries.items()}
    return Catalog(lang=path.stem, **parts)


def load_catalogs(directory: Path) -> dict[str, Catalog]:
    """Every language file under <definitions>/i18n/, by public language code (the file's name)."""
    folder = Path(directory) / "i18n"
    if not folder.is_dir():
        return {}
    return {path.stem: _load_file(path) for path in sorted(folder.glob("*.yaml"))}


@lru_cache(maxsize=8)
def _cached(directory: str, fingerprint: str) -> dict[str, Catalog]:
    return load_catalogs(Path(directory))


def catalogs_for(defs: DefinitionSet) -> dict[str, Catalog]:
    """The catalogs beside a loaded definition set (read once per definitions version)."""
    return _cached(str(defs.directory), defs.fingerprint)


def texts_to_translate(defs: DefinitionSet) -> dict[str, set[str]]:
    """What residents can see of the definitions: application ids (their titles) and document texts.

    Documents with a common `key` are shown as one shared text (a gettext message), so they are not listed.
    """
    documents = {d.item for app in defs.applications.values() for d in app.documents_to_bring if d.key is None}
    return {"applications": set(defs.applications), "documents": documents}


def coverage(defs: DefinitionSet, catalogs: dict[str, Catalog]) -> dict[str, dict[str, Any]]:
    """Per language: how many of the texts are translated, and which are missing."""
    needed = texts_to_translate(defs)
    total = sum(len(v) for v in needed.values())
    out: dict[str, dict[str, Any]] = {}
    for lang, cat in sorted(catalogs.items()):
        missing = sorted(f"applications.{a}" for a in needed["applications"] if a not in cat.applications)
        missing += sorted(f"documents: {d}" for d in needed["documents"] if d not in cat.documents)
        stale = sorted(f"documents: {d}" for d in cat.documents if d not in needed["documents"])
        out[lang] = {"translated": total - len(missing), "total": total, "missing": missing, "unused": stale}
    return out


def is_japanese(lang: str) -> bool:
    """Japanese and やさしい日本語 read the definitions as they are written."""
    return lang == "ja" or lang.startswith("ja-")


def application_title(defs: DefinitionSet, lang: str, app_id: str, japanese: str) -> str:
    """An application's title in the language, or the Japanese title marked as such."""
    if is_japanese(lang):
        return japanese
    cat = catalogs_for(defs).get(lang)
    text = cat.applications.get(app_id) if cat is not None else None
    return text if text else japanese + FALLBACK_MARK


def document(defs: DefinitionSet, lang: str, japanese: str) -> str:
    """A document to bring in the language, or the Japanese text marked as such."""
    if is_japanese(lang):
        return japanese
    cat = catalogs_for(defs).get(lang)
    text = cat.documents.get(japanese) if cat is not None else None
    return text if text else japanese + FALLBACK_MARK
