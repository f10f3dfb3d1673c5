"""People of a visit and the roles they take on each form: 届出人, 申請者, 請求者, 口座名義人, who signs.

Pure: answers + an application's `roles` in, assignments out. Each role is proposed by its YAML `default`
rule; the clerk's choice (answers `roles.<instance>.<role>`: a member id, "agent" for the 代理人 who came,
or "heir" for the heir who lives outside the household) overrides it when the definition allows that person.
What is still open (a role to confirm, a choice not allowed, an account held by someone else) is reported as a
problem that blocks signing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.forms.context import OUTSIDE_HEIR
from app.forms.expr import MISSING, compile_expr
from app.forms.schema import Application

AGENT = "agent"
ROLES_KEY = "roles"
AGENT_KINDS = {"proxy": "任意代理人", "legal": "法定代理人"}
AGENT_DOCUMENTS = {
    "proxy": "委任状（{label}本人が書いたもの）と代理人の本人確認書類",
    "legal": "法定代理人であることがわかる書類（戸籍謄本など）と法定代理人の本人確認書類",
}


@dataclass(frozen=True)
class RoleChoice:
    """A person the clerk may pick for a role."""

    id: str
    name: str


@dataclass(frozen=True)
class RoleAssignment:
    """Who takes one role on one form, whether the clerk chose it, and what is wrong with it."""

    role_id: str
    label: str
    person_id: str | None
    person_name: str
    chosen: bool
    ask: bool
    signs: bool
    choices: tuple[RoleChoice, ...] = ()
    problem: str | None = None

    @property
    def to_confirm(self) -> bool:
        """A proposal the clerk should confirm with the resident (児童手当 請求者); it does not block signing."""
        return self.ask and not self.chosen

    @property
    def by_agent(self) -> bool:
        """Whether the 代理人 who came acts in this role."""
        return self.person_id == AGENT


@dataclass(frozen=True)
class Roles:
    """The assignments of one form, the scope names they bind, and the documents an agent must bring."""

    assignments: tuple[RoleAssignment, ...] = ()
    bound: dict[str, Any] = field(default_factory=dict)
    documents: tuple[str, ...] = ()

    @property
    def signer(self) -> RoleAssignment | None:
        """The first role whose person signs the form (None: the form declares no signer)."""
        return next((a for a in self.assignments if a.signs), None)

    @property
    def signers(self) -> tuple[RoleAssignment, ...]:
        """Every role whose person signs the form, in declaration order (婚姻届: both spouses)."""
        return tuple(a for a in self.assignments if a.signs)

    @property
    def problems(self) -> list[str]:
        """What must be settled before signing, in Japanese."""
        return [f"{a.label}: {a.problem}" for a in self.assignments if a.problem]


def person_name(person: Mapping[str, Any] | None) -> str:
    """「尼崎　花子」 for a member or the agent."""
    if not isinstance(person, Mapping):
        return ""
    return "　".join(str(person[k]) for k in ("family_name", "given_name") if person.get(k))


def agent_kind(answers: Mapping[str, Any]) -> str | None:
    """"proxy" (委任状) or "legal" (法定代理人) when a 代理人 came, else None."""
    attendance = answers.get("attendance")
    kind = attendance.get("agent_kind") if isinstance(attendance, Mapping) else None
    return kind if kind in AGENT_KINDS else None


def agent_person(answers: Mapping[str, Any]) -> dict[str, Any] | None:
    """The 代理人 as a member-like record (id "agent"), or None when nobody came as an agent."""
    kind = agent_kind(answers)
    if kind is None:
        return None
    attendance = answers.get("attendance") or {}
    agent = attendance.get("agent") if isinstance(attendance.get("agent"), Mapping) else {}
    return {**agent, "id": AGENT, "relationship": "agent", "agent_kind": kind}


def present_members(answers: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Members recorded as having come to the counter."""
    household = answers.get("household")
    members = household.get("members") if isinstance(household, Mapping) else None
    return [m for m in members or [] if isinstance(m, dict) and m.get("present") is True]


def _member(value: Any, members: list[dict[str, Any]]) -> dict[str, Any] | None:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        return next((m for m in members if m.get("id") == value), None)
    return None


def chosen_roles(answers: Mapping[str, Any], instance_id: str) -> dict[str, str]:
    """The clerk's choices for one form (role id → member id or "agent")."""
    roles = answers.get(ROLES_KEY)
    chosen = roles.get(instance_id) if isinstance(roles, Mapping) else None
    return {k: v for k, v in chosen.items() if isinstance(v, str)} if isinstance(chosen, Mapping) else {}


def assign_roles(app: Application, scope: Mapping[str, Any], answers: Mapping[str, Any], instance_id: str) -> Roles:
    """Propose (or take the clerk's choice for) every role the application declares, in declaration order.

    Who signs is always declared (`signs: true`); the loader refuses a signature box without a signing role.
    """
    specs = list(app.roles)
    if not specs:
        return Roles()
    members = [m for m in scope.get("members") or [] if isinstance(m, dict)]
    heir = scope.get("heir")
    outside_heir = heir if isinstance(heir, dict) and heir.get("id") == OUTSIDE_HEIR else None
    if outside_heir is not None:
        members.append(outside_heir)  # an heir who lives elsewhere (death.heir) may file and sign
    agent = agent_person(answers)
    chosen = chosen_roles(answers, instance_id)
    bound: dict[str, Any] = {}
    out: list[RoleAssignment] = []
    documents: list[str] = []
    for role in specs:
        local = {**scope, **bound}
        allowed_raw = compile_expr(role.choices).evaluate(local)
        allowed = [m for m in (allowed_raw if isinstance(allowed_raw, list) else []) if isinstance(m, Mapping)]
        if role.heir and outside_heir is not None:
            allowed.append(outside_heir)
        choices = [RoleChoice(str(m.get("id")), person_name(m)) for m in allowed if m.get("id")]
        if role.agent and agent is not None:
            choices.append(RoleChoice(AGENT, f"{person_name(agent)}（{AGENT_KINDS[agent['agent_kind']]}）"))
        allowed_ids = {c.id for c in choices}
        problem = None
        picked = chosen.get(role.id)
        person: dict[str, Any] | None
        if picked is not None and picked in allowed_ids:
            person = agent if picked == AGENT else _member(picked, members)
            was_chosen = True
        else:
            if picked is not None:
                problem = "選ばれた方はこの役割になれません。選び直してください"
            was_chosen = False
            if role.agent and agent is not None and not present_members(answers):
                person = agent  # only the agent came: the agent acts for the household
            else:
                person = _default(role.default, local, members, allowed_ids)
        if person is None and problem is None and not role.optional:
            problem = "該当する方がいません。選んでください"
        if problem is None and role.same_as is not None and person is not None:
            other = bound.get(role.same_as)
            if isinstance(other, Mapping) and other.get("id") != person.get("id"):
                label = next(r.label for r in app.roles if r.id == role.same_as)
                problem = f"{label}と同じ方にしてください（{person_name(other)}）"
        bound[role.id] = person
        person_id = str(person.get("id")) if person and person.get("id") else None
        if person_id == AGENT and agent is not None:
            documents.append(AGENT_DOCUMENTS[agent["agent_kind"]].format(label=role.label))
        out.append(RoleAssignment(role.id, role.label, person_id, person_name(person), was_chosen, role.ask,
                                  role.signs, tuple(choices), problem))
    return Roles(tuple(out), bound, tuple(dict.fromkeys(documents)))


def _default(expr: str, scope: Mapping[str, Any], members: list[dict[str, Any]],
             allowed: set[str]) -> dict[str, Any] | None:
    value = compile_expr(expr).evaluate(scope)
    if value is MISSING or value is None:
        return None
    person = _member(value, members)
    if person is None or str(person.get("id")) not in allowed:
        return None
    return person


def validate_role_choices(raw: Any, member_ids: set[str]) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]]]:
    """Shape-check answers `roles` (instance → role → member id / "agent"); errors as (path, message)."""
    errors: list[tuple[str, str]] = []
    out: dict[str, dict[str, str]] = {}
    if raw is None:
        return out, errors
    if not isinstance(raw, Mapping):
        return out, [(ROLES_KEY, "役割は「申請書 → 役割 → 世帯員番号」の形で指定してください")]
    for instance_id, roles in raw.items():
        where = f"{ROLES_KEY}.{instance_id}"
        if not isinstance(instance_id, str) or not instance_id.replace("-", "_").replace("_", "a").isalnum() \
                or len(instance_id) > 100:
            errors.append((ROLES_KEY, "申請書の指定が正しくありません"))
            continue
        if not isinstance(roles, Mapping):
            errors.append((where, "役割は「役割 → 世帯員番号」の形で指定してください"))
            continue
        kept: dict[str, str] = {}
        for role_id, person in roles.items():
            path = f"{where}.{role_id}"
            if not isinstance(role_id, str) or not role_id.replace("_", "a").isalnum() or len(role_id) > 64:
                errors.append((where, "役割の指定が正しくありません"))
            elif not isinstance(person, str) or (person != AGENT and person not in member_ids):
                errors.append((path, "世帯員の中にこの番号の方がいません"))
            else:
                kept[role_id] = person
        if kept:
            out[instance_id] = kept
    return out, errors
