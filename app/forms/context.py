"""The evaluation context of definition expressions: the answers plus a few named shortcuts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MEMBERS = "household.members"
MEMBER = "household.members[]"

# Shortcut names a definition may use, and the answers path each stands for (for static checks).
ALIASES: dict[str, str] = {
    "members": MEMBERS,
    "children": MEMBERS,
    "adults": MEMBERS,
    "head": MEMBER,
    "spouse": MEMBER,
    "applicant": MEMBER,
    # Roles of a death (issue 14): the deceased member, the heir who files (a member or death.heir),
    # and the members who remain; `movers` are the members a move or household change concerns.
    "deceased": MEMBER,
    "heir": MEMBER,
    "survivors": MEMBERS,
    "movers": MEMBERS,
}
# The person id of an heir who is not a household member (death.heir): roles and signatures use it.
OUTSIDE_HEIR = "heir"
# Values the service adds that are not answers.
BUILTINS: frozenset[str] = frozenset({"case_number", "today"})


def members_of(answers: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The household members list, or an empty list when it is absent or malformed."""
    household = answers.get("household")
    members = household.get("members") if isinstance(household, Mapping) else None
    return [m for m in members if isinstance(m, dict)] if isinstance(members, list) else []


def _first(members: list[dict[str, Any]], relationship: str) -> dict[str, Any] | None:
    return next((m for m in members if m.get("relationship") == relationship), None)


def _by_id(members: list[dict[str, Any]], member_id: Any) -> dict[str, Any] | None:
    if not member_id:
        return None
    return next((m for m in members if m.get("id") == member_id), None)


def build_context(answers: Mapping[str, Any], *, case_number: str | None = None) -> dict[str, Any]:
    """Answers plus head / spouse / children / adults / applicant shortcuts."""
    members = members_of(answers)
    head = _first(members, "head") or (members[0] if members else None)
    spouse = _first(members, "spouse")
    children = [m for m in members if m.get("relationship") == "child"]
    adults = [m for m in members if m.get("relationship") != "child"]
    death = answers.get("death") if isinstance(answers.get("death"), Mapping) else {}
    deceased = _by_id(members, death.get("member_id"))
    heir = _by_id(members, death.get("heir_member_id"))
    if heir is None and isinstance(death.get("heir"), Mapping):
        heir = {**death["heir"], "id": OUTSIDE_HEIR}
    ctx: dict[str, Any] = {k: v for k, v in answers.items() if not k.startswith("$")}
    ctx.update(
        members=members,
        children=children,
        adults=adults,
        head=head,
        spouse=spouse,
        # 児童手当 and 医療費: the claimant is the parent with the higher income; without income
        # data the household head (usually the main earner) is proposed and staff may change it.
        applicant=head,
        deceased=deceased,
        heir=heir,
        survivors=[m for m in members if m is not deceased],
        movers=[m for m in members if m.get("moving") is not False],
        case_number=case_number or "",
        today=answers.get("visit_date"),
    )
    return ctx
