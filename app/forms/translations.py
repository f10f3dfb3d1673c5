"""Definition text in the residents' languages: form_definitions/i18n/<lang>.yaml, one file per language.

What the phone page and the public guide show from the definitions (application titles, the documents
to bring, deadlines' wording, the places and instructions of external steps, notes) is translated in
files a city edits beside the definitions, keyed by application id (titles) and by the Japanese text
itself (so a changed Japanese text shows as untranslated instead of showing an old translation).
Department names and floors (departments.yaml, listed in app/i18n/terms.py), the department's
needs-resident reasons and the pages' own words are gettext messages (app/i18n). The `reason`s of
applies_when are read by the counter clerk only, so they are not translated. Japanese and やさしい日本語
read the definitions as written (やさしい日本語 adds furigana, app/i18n/furigana.py). A text with no
translation falls back to Japanese, visibly marked, and `kakanai check` prints each language's
coverage: of the definition texts, and of the phone's questions (interview.yaml, where やさしい日本語
has its own plain rewording too). Pure: files in, dictionaries out.

    # form_definitions/i18n/vi.yaml
    applications:
      jumin_tennyu: Thông báo chuyển đến
    documents:
      転出証明書: Giấy chứng nhận chuyển đi
    deadlines:
      引っ越した日から14日以内: Trong vòng 14 ngày kể từ ngày chuyển đến
    external:        # place and how of an external step (年金事務所, 法務局 …)
      法務局: Cục Pháp vụ (法務局)
    notes:
      ...
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

SECTIONS = ("applications", "documents", "deadlines", "external", "notes", "questions")
# Sections of the definitions keyed by the Japanese text itself (applications are keyed by id); `questions`
# (interview.yaml's wording on the phone's pre-entry) is looked up and counted separately (question_coverage).
TEXT_SECTIONS = ("documents", "deadlines", "external", "notes")
# Shown after a Japanese text that has no translation yet (the resident sees why it is Japanese).
FALLBACK_MARK = " [日本語]"
# What the phone's pre-entry does not ask (the clerk settles it at the counter): the attendance section
# (who came, agents, identity documents) and the visit date, member number and "came to the counter".
COUNTER_SECTIONS = frozenset({"attendance"})
COUNTER_FIELDS = frozenset({"visit_date", "id", "present"})


@dataclass(frozen=True)
class Catalog:
    """One language's definition texts."""

    lang: str
    applications: dict[str, str] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)
    deadlines: dict[str, str] = field(default_factory=dict)
    external: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
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
    """What residents can see of the definitions, per section: application ids (their titles), documents,
    deadlines' wording, external steps' place and how, notes (and the notes given instead of a form).

    Documents with a common `key` are shown as one shared text (a gettext message), so they are not listed.
    """
    apps = defs.applications.values()
    documents = {d.item for app in apps for d in app.documents_to_bring if d.key is None}
    deadlines = {app.deadline.text for app in apps if app.deadline is not None}
    external = {t for app in apps if app.external is not None for t in (app.external.place, app.external.how)}
    notes = {n for app in apps for n in app.notes} | {r.note for app in apps for r in app.redirect}
    return {"applications": set(defs.applications), "documents": documents, "deadlines": deadlines,
            "external": external, "notes": notes}


def coverage(defs: DefinitionSet, catalogs: dict[str, Catalog]) -> dict[str, dict[str, Any]]:
    """Per language: how many of the texts are translated, and which are missing."""
    needed = texts_to_translate(defs)
    total = sum(len(v) for v in needed.values())
    out: dict[str, dict[str, Any]] = {}
    for lang, cat in sorted(catalogs.items()):
        if is_japanese(lang):
            continue  # やさしい日本語 carries only the phone's questions; the definitions are read as written
        missing = sorted(f"applications.{a}" for a in needed["applications"] if a not in cat.applications)
        stale = sorted(f"applications.{a}" for a in cat.applications if a not in needed["applications"])
        for section in TEXT_SECTIONS:
            have: dict[str, str] = getattr(cat, section)
            missing += sorted(f"{section}: {t}" for t in needed[section] if t not in have)
            stale += sorted(f"{section}: {t}" for t in have if t not in needed[section])
        out[lang] = {"translated": total - len(missing), "total": total, "missing": missing, "unused": stale}
    return out


def questions_to_translate(defs: DefinitionSet) -> set[str]:
    """interview.yaml's texts of what the phone's pre-entry asks (app/routers/pre_entry_pages.py): section
    titles (the part before 「（」) and help, each field's label and help, and its choices' labels. The
    sections and fields the clerk settles at the counter are not asked there, so they are not counted."""
    texts: set[str] = set()
    for section in defs.interview.sections:
        if section.id in COUNTER_SECTIONS:
            continue
        texts.add(section.title.split("（")[0])
        if section.help:
            texts.add(section.help)
        for fdef in section.fields:
            if fdef.path in COUNTER_FIELDS:
                continue
            texts.add(fdef.label)
            if fdef.help:
                texts.add(fdef.help)
            texts.update(choice.label for choice in fdef.choices or [])
    return texts


def question_coverage(defs: DefinitionSet, catalogs: dict[str, Catalog]) -> dict[str, dict[str, Any]]:
    """Per language (やさしい日本語 included): how many of the phone's questions are translated, and which
    are missing (shown in Japanese, marked) or no longer asked (a changed Japanese text)."""
    needed = questions_to_translate(defs)
    out: dict[str, dict[str, Any]] = {}
    for lang, cat in sorted(catalogs.items()):
        if lang == "ja":
            continue
        missing = sorted(t for t in needed if t not in cat.questions)
        unused = sorted(t for t in cat.questions if t not in needed)
        out[lang] = {"translated": len(needed) - len(missing), "total": len(needed), "missing": missing,
                     "unused": unused}
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


def text(defs: DefinitionSet, lang: str, section: str, japanese: str) -> str:
    """A definition text of a section (deadlines, external, notes …) in the language, or marked Japanese."""
    if is_japanese(lang) or not japanese:
        return japanese
    cat = catalogs_for(defs).get(lang)
    found = getattr(cat, section).get(japanese) if cat is not None and section in TEXT_SECTIONS else None
    return found if found else japanese + FALLBACK_MARK
