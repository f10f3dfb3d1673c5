"""The public procedures guide (手続きガイド): a few anonymous questions → the procedures, by the same determination.

Nothing is stored: the answers live in the page's query string only. They are turned into a synthetic
answers document (placeholder members, no names) and run through `determine`, so the guide and the counter
never disagree. The QR code it shows carries the life events only, to start the counter interview.

Everything a step shows comes in the page's language: application titles, documents, deadlines, external
steps' places and notes from form_definitions/i18n/<lang>.yaml (app/forms/translations.py), department
names and floors from the gettext catalogs; the Japanese title and department name stay beside them so the
resident can find the sign and show the page at the counter. A text with no translation is shown in
Japanese marked [日本語]. やさしい日本語 gets furigana over the definitions' kanji.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from app.forms import translations
from app.forms.determine import determine
from app.forms.loader import DefinitionSet
from app.i18n import furigana
from app.services.resident_status import COMMON_DOCUMENTS

GUIDE_EVENTS = ("move_in", "move_out", "move_within", "household_change", "birth", "childcare", "pregnancy",
                "death", "marriage", "divorce", "certificates")
AGE_BANDS = (("preschool", 3), ("school", 9), ("highschool", 16))  # representative ages per band
MAX_CHILDREN = 9


@dataclass(frozen=True)
class GuideAnswers:
    """The guide's anonymous answers (never stored)."""

    events: tuple[str, ...] = ()
    preschool: int = 0
    school: int = 0
    highschool: int = 0
    national_insurance: bool = False
    elderly: str = "none"  # none / 65 / 75: the oldest member of the household (or the deceased)
    card: bool = False
    lone_parent: bool = False

    def query(self) -> str:
        """The answers as a query string (to share or reload the guide)."""
        pairs: list[tuple[str, str]] = [("events", e) for e in self.events]
        pairs += [(k, str(getattr(self, k))) for k in ("preschool", "school", "highschool") if getattr(self, k)]
        pairs += [(k, "1") for k in ("national_insurance", "card", "lone_parent") if getattr(self, k)]
        if self.elderly != "none":
            pairs.append(("elderly", self.elderly))
        return urlencode(pairs)


def _count(value: str | None) -> int:
    try:
        return max(0, min(int(value or 0), MAX_CHILDREN))
    except ValueError:
        return 0


def parse_guide(params: Mapping[str, Any], getlist: Callable[[str], list[str]]) -> GuideAnswers:
    """Read the guide's query parameters; unknown or malformed values are ignored, never an error page."""
    events = tuple(e for e in GUIDE_EVENTS if e in set(getlist("events")))
    elderly = params.get("elderly") if params.get("elderly") in ("65", "75") else "none"
    return GuideAnswers(
        events=events, preschool=_count(params.get("preschool")), school=_count(params.get("school")),
        highschool=_count(params.get("highschool")), national_insurance=params.get("national_insurance") == "1",
        elderly=str(elderly), card=params.get("card") == "1", lone_parent=params.get("lone_parent") == "1",
    )


def _born(today: dt.date, age: int) -> str:
    return dt.date(today.year - age - 1, 10, 1).isoformat()  # age on `today`, a school year that is stable


def synthetic_answers(g: GuideAnswers, today: dt.date) -> dict[str, Any]:
    """An answers document with placeholder members that stands for the guide's answers."""
    insurance = "national" if g.national_insurance else "employee"
    members: list[dict[str, Any]] = [{"id": "m1", "relationship": "head", "birth_date": _born(today, 40),
                                      "health_insurance": insurance, "my_number_card": g.card, "occupation": "employee"}]
    if not g.lone_parent:
        members.append({"id": "m2", "relationship": "spouse", "birth_date": _born(today, 38),
                        "health_insurance": "national" if g.national_insurance else "employee_dependent",
                        "my_number_card": g.card})
    for band, age in AGE_BANDS:
        for i in range(getattr(g, band)):
            members.append({"id": f"{band}{i}", "relationship": "child", "birth_date": _born(today, age),
                            "health_insurance": insurance, "childcare": {"enrolled": band == "preschool"},
                            "school": {"current_school": "―"}})
    if g.elderly != "none":
        members.append({"id": "e1", "relationship": "parent", "birth_date": _born(today, int(g.elderly) + 2),
                        "health_insurance": "national"})
    day = today.isoformat()
    answers: dict[str, Any] = {
        "life_events": list(g.events), "visit_date": day, "household": {"members": members},
        "move": {"moved_on": day, "moving_out_method": "card_special" if g.card else "certificate"},
        "move_out": {"planned_on": day, "method": "card_special" if g.card else "certificate"},
        "household_change": {"kind": "head_change", "changed_on": day},
        "lone_parent": {"is_lone_parent": g.lone_parent},
        "divorce": {"kind": "consensual", "leaving_member_id": "m1" if g.lone_parent else None},
        "marriage": {"name_changing_member_id": "m2" if not g.lone_parent else None},
        "certificates": {"juminhyo_copies": 1, "inkan_copies": 1, "koseki_copies": 1, "kazei_copies": 1},
        "birth": {"child_member_id": "preschool0" if g.preschool else None, "born_at": day},
        "pregnancy": {"member_id": "m2"},
    }
    if "death" in g.events:
        deceased = next((m for m in members if m["id"] == "e1"), members[0])
        answers["death"] = {"member_id": deceased["id"], "died_on": day, "funeral_on": day,
                            "heir_member_id": "m1" if deceased["id"] != "m1" else None,
                            "received_pension": g.elderly != "none", "owned_property": True, "bank_accounts": True,
                            "heir_relationship": "child"}
    if "childcare" in g.events:
        for m in members:
            if m["id"].startswith("preschool"):
                m["childcare"] = {"wanted_from": day, "reason": "work", "hours": "standard"}
    return answers


def guide_steps(
    defs: DefinitionSet, g: GuideAnswers, today: dt.date, *, lang: str = "ja",
    gettext: Callable[[str], str] = str,
) -> list[dict[str, Any]]:
    """The procedures the guide's answers call for, with place, deadline, what to bring and notes, in `lang`."""
    if not g.events:
        return []
    japanese = translations.is_japanese(lang)
    easy = lang == "ja-x-easy"

    def shown(value: str) -> str | Markup:
        # やさしい日本語: the definitions' own kanji get readings (Markup, rendered as it is by the template).
        return furigana.ruby(value) if easy and value else value

    out = []
    for inst in determine(defs, synthetic_answers(g, today), include_external=True):
        app = inst.application
        dep = defs.departments.get(app.department or "")
        short = app.short_title or app.title
        keys = {d.item: d.key for d in app.documents_to_bring}
        documents = []
        for item in inst.documents:
            key = keys.get(item)
            if key in COMMON_DOCUMENTS and not japanese:  # one shared text, a gettext message
                documents.append(gettext(COMMON_DOCUMENTS[key]))
            else:
                documents.append(shown(translations.document(defs, lang, item)))
        title = short if japanese else translations.application_title(defs, lang, inst.application_id, short)
        dep_name = dep.name if dep else ""
        out.append({
            "id": inst.application_id, "title": shown(title), "title_ja": "" if japanese else short,
            "full_title": app.title, "external": app.external is not None,
            "department": gettext(dep_name) if dep_name else "",
            # The Japanese name beside a translated one: what the sign at the counter says.
            "department_ja": dep_name if dep_name and not japanese and gettext(dep_name) != dep_name else "",
            "location": gettext(dep.location) if dep and dep.location else "",
            "counters": list(dep.counters) if dep else [],
            "place": shown(translations.text(defs, lang, "external", app.external.place)) if app.external else "",
            "how": shown(translations.text(defs, lang, "external", app.external.how)) if app.external else "",
            "deadline_text": shown(translations.text(defs, lang, "deadlines", app.deadline.text)) if app.deadline else "",
            "documents": documents,
            "notes": [shown(translations.text(defs, lang, "notes", n)) for n in app.notes],
            "fee_total": inst.fee_total,
        })
    # The same form for several members (転学 per child) is one line in the guide; the city's own steps
    # come first, the steps outside the city hall after them.
    seen: set[str] = set()
    return sorted((s for s in out if not (s["id"] in seen or seen.add(s["id"]))), key=lambda s: s["external"])


def has_fallback(steps: list[dict[str, Any]]) -> bool:
    """Whether some text of the steps is shown in Japanese because it has no translation yet."""
    texts = [s[k] for s in steps for k in ("title", "place", "how", "deadline_text")]
    texts += [t for s in steps for t in s["documents"] + s["notes"]]
    return any(translations.FALLBACK_MARK in str(t) for t in texts)


def counter_start_url(base_url: str, g: GuideAnswers) -> str:
    """What the QR carries: the counter's start page with the life events ticked (nothing personal)."""
    return f"{base_url.rstrip('/')}/counter?{urlencode([('events', e) for e in g.events])}"
