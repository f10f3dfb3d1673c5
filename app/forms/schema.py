"""Pydantic models for the YAML form definitions a city edits (DESIGN.md section 4).

Every model forbids unknown keys so that a typo in a clerk's YAML is an error, not a silently
ignored setting. Expressions are kept as strings here; the loader compiles and checks them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class Strict(BaseModel):
    """Base for every definition model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------
# interview.yaml
# ---------------------------------------------------------------------------------------------

FieldKind = Literal[
    "id",
    "name",
    "kana",
    "alphabet_name",
    "date",
    "datetime",
    "year_month",
    "country",
    "address",
    "postal_code",
    "phone",
    "my_number",
    "choice",
    "multi_choice",
    "bool",
    "text",
    "list",
    "money",
    "number",
    "digits",
]


class Choice(Strict):
    """One allowed value of a choice field with its Japanese label."""

    value: str
    label: str


class InterviewField(Strict):
    """One question of the interview; `path` is relative to its section's `repeat` list."""

    path: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
    kind: FieldKind
    label: str
    help: str | None = None
    required: bool = False
    required_when: str | None = None
    ask_when: str | None = None
    choices: list[Choice] | None = None
    past_only: bool = False
    max_length: int | None = Field(default=None, gt=0, le=10_000)
    digits: int | None = Field(default=None, gt=0, le=32)

    @model_validator(mode="after")
    def _choices_match_kind(self) -> InterviewField:
        if self.kind in ("choice", "multi_choice") and not self.choices:
            raise ValueError("choice / multi_choice には choices が必要です")
        if self.kind not in ("choice", "multi_choice") and self.choices:
            raise ValueError(f"kind {self.kind} に choices は指定できません")
        return self


class InterviewSection(Strict):
    """A screen of the interview; with `repeat` its fields are asked once per list item."""

    id: Identifier
    title: str
    help: str | None = None
    repeat: str | None = None
    min_items: int = Field(default=0, ge=0)
    max_items: int = Field(default=20, ge=1, le=100)
    item_label: str | None = None
    fields: list[InterviewField] = Field(min_length=1)


class Interview(Strict):
    """The one interview: every fact any application needs is asked here, once."""

    version: int = 1
    title: str
    sections: list[InterviewSection] = Field(min_length=1)


# ---------------------------------------------------------------------------------------------
# departments.yaml
# ---------------------------------------------------------------------------------------------


class Department(Strict):
    """A department of the city hall that processes applications."""

    id: Identifier
    name: str
    counters: list[str] = Field(default_factory=list)
    location: str = ""
    service_minutes: int = Field(default=10, ge=0, le=600)
    phone: str | None = None


MonthDay = Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
DEFAULT_CLOSED_DAYS = ("12-29", "12-30", "12-31", "01-01", "01-02", "01-03")


class Calendar(Strict):
    """The days the city hall is closed, besides national holidays (地方自治法 第4条の2)."""

    closed_weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: ["sat", "sun"])
    closed_days: list[MonthDay] = Field(default_factory=lambda: list(DEFAULT_CLOSED_DAYS))
    national_holidays_closed: bool = True


HourMinute = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class Hours(Strict):
    """One opening period of a day, local time (09:00–12:00)."""

    from_: HourMinute = Field(alias="from")
    to: HourMinute

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AppointmentQueue(Strict):
    """Bookable slots of one queue ("" = the one-stop counter, else a department id) on open days."""

    queue: str = ""
    name: str = ""
    life_events: list[str] = Field(default_factory=list)
    slot_minutes: int = Field(ge=5, le=240)
    capacity: int = Field(ge=1, le=100)
    hours: list[Hours] = Field(min_length=1)
    book_days_ahead: int = Field(default=30, ge=1, le=180)


def _default_opening_hours() -> list[Hours]:
    return [Hours(from_="08:30", to="17:15")]


class Departments(Strict):
    """The registry of departments, the office calendar deadlines are moved onto, and bookable queues."""

    departments: list[Department] = Field(min_length=1)
    calendar: Calendar = Field(default_factory=Calendar)
    # When the office takes tickets (the remote web ticket); closing days of the calendar apply.
    opening_hours: list[Hours] = Field(default_factory=_default_opening_hours, min_length=1)
    appointments: list[AppointmentQueue] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# applications/<id>.yaml
# ---------------------------------------------------------------------------------------------


class Condition(Strict):
    """One condition of `applies_when`; `reason` is what staff read when it matches."""

    if_: str = Field(alias="if")
    reason: str

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ForEach(Strict):
    """Produce one form per item of a list, e.g. per school-age child."""

    in_: str = Field(alias="in")
    as_: Identifier = Field(default="member", alias="as")
    where: str | None = None
    reason: str | None = None
    title: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Deadline(Strict):
    """A deadline counted from a date in the answers (14 days from moving in, 3 months from a death).

    A deadline that falls on a day the office is closed moves to the next open day (地方自治法 第4条の2
    第4項); `open_day: false` keeps it on the calendar day (e.g. 相続放棄 counted by the court).
    """

    within_days: int | None = Field(default=None, ge=0, le=3650)
    within_months: int | None = Field(default=None, ge=1, le=120)
    from_: str = Field(alias="from")
    text: str
    late: str | None = None  # what follows when the deadline has passed (shown to the clerk)
    open_day: bool = True

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_length(self) -> Deadline:
        if (self.within_days is None) == (self.within_months is None):
            raise ValueError("within_days（日数）か within_months（月数）のどちらか一方を指定してください")
        return self


class RoleSpec(Strict):
    """A person an application names (届出人, 申請者, 請求者, 口座名義人 …): how it is proposed and who may be chosen.

    `id` is the name the form's fields use (`claimant.birth_date`). `default` and `choices` are expressions
    over the answers (and the roles declared before this one): a member, and a list of members. With
    `agent: true` a 代理人 who came may act in the role; `ask: true` makes the clerk confirm the choice;
    `signs: true` marks a person who signs the form (婚姻届: both spouses, each in the box marked
    `signs_as: <role id>`); `same_as` names a role this one must be the same
    person as (an account held by someone other than the claimant is flagged before signing); `heir: true`
    lets the heir who lives outside the household (death.heir, person id "heir") take the role.
    """

    id: Identifier
    label: str
    default: str
    choices: str = "household.members"
    agent: bool = False
    ask: bool = False
    signs: bool = False
    same_as: Identifier | None = None
    optional: bool = False  # nobody may fit (a 出生届 without a father): not a problem
    heir: bool = False  # the heir who lives elsewhere (death.heir, not a member) may also take this role
    help: str | None = None


class Redirect(Strict):
    """When `if` holds (roles included), no city form is made: the resident gets `note` instead."""

    if_: str = Field(alias="if")
    note: str

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Copies(Strict):
    """How many copies a certificate request asks for; the fee is charged per copy."""

    source: str
    max: int = Field(default=20, ge=1, le=100)


class External(Strict):
    """A step outside the city hall (年金事務所, 法務局, 税務署, banks): listed with place and deadline, no form."""

    place: str
    how: str
    url: str | None = Field(default=None, pattern=r"^https://")


class Document(Strict):
    """Something the resident must bring, optionally only when a condition holds."""

    item: str
    when: str | None = None
    # A document several applications ask for (identity, my_number): the phone page lists it once.
    key: Literal["identity", "my_number"] | None = None


PrintKind = Literal[
    "name",
    "kana",
    "address",
    "birth_date",
    "date",
    "phone",
    "my_number",
    "postal_code",
    "bank",
    "text",
    "check",
    "signature",
    "blank",
]
# Which kinds count as "writing saved" and under which survey heading.
WRITING_KINDS: dict[str, str] = {
    "name": "name",
    "kana": "kana",
    "address": "address",
    "birth_date": "birth_date",
    "phone": "phone",
}

Style = Literal["text", "comb", "check", "signature", "blank", "multiline"]


class Placement(Strict):
    """Where a field goes on an official blank PDF, in millimetres from the top-left corner."""

    page: int = Field(default=1, ge=1)
    x: float = Field(ge=0)
    y: float = Field(ge=0)
    w: float = Field(gt=0)
    h: float = Field(gt=0)


class FormField(Strict):
    """One printed field: where its value comes from, how it is transformed and where it goes."""

    label: str = ""
    source: str | None = None
    value: str | None = None
    transform: str | None = None
    kind: PrintKind = "text"
    style: Style = "text"
    width: float = Field(default=1.0, gt=0, le=24)
    boxes: int | None = Field(default=None, gt=0, le=32)
    options: list[Choice] | None = None
    font: Literal["text", "name"] | None = None
    size: float | None = Field(default=None, ge=5, le=24)
    align: Literal["left", "center", "right"] = "left"
    required: bool = False
    note: str | None = None
    place: Placement | None = None
    # Whose signature box this is: a signing role's id (婚姻届: `husband`, `wife`), or "agent" for the 代理人
    # box (it gets the agent's signature when an agent acts for the signer). Unmarked: the first signing role.
    signs_as: Identifier | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FormField:
        if self.source is not None and self.value is not None:
            raise ValueError("source と value は同時に指定できません")
        if self.style == "comb" and self.boxes is None:
            raise ValueError("style: comb には boxes（マスの数）が必要です")
        if self.style == "check" and not self.options:
            raise ValueError("style: check には options（選択肢）が必要です")
        if self.style in ("signature", "blank") and self.source is not None:
            raise ValueError(f"style: {self.style} の欄に source は指定できません")
        return self


class Row(Strict):
    """A row of cells; cell widths are relative to each other."""

    height: float = Field(default=1.0, gt=0, le=12)
    cells: list[FormField] = Field(min_length=1, max_length=24)


class Table(Strict):
    """A table with one row per item of a list (e.g. each member moving in)."""

    each: str
    as_: Identifier = Field(default="item", alias="as")
    min_rows: int = Field(default=1, ge=0, le=40)
    row_height: float = Field(default=1.0, gt=0, le=6)
    columns: list[FormField] = Field(min_length=1, max_length=24)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Section(Strict):
    """A titled block of the form: rows of cells, or a table, or both."""

    title: str
    note: str | None = None
    rows: list[Row] = Field(default_factory=list)
    table: Table | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Section:
        if not self.rows and self.table is None:
            raise ValueError("section には rows か table が必要です")
        return self


class Layout(Strict):
    """A grid layout that the renderer draws as a ruled form."""

    page: Literal["A4", "A3", "B4", "B5"] = "A4"
    orientation: Literal["portrait", "landscape"] = "portrait"
    row_mm: float = Field(default=9.0, ge=5, le=30)
    heading: str | None = None
    recipient: str | None = None
    sections: list[Section] = Field(min_length=1)


class Overlay(Strict):
    """Printing onto the official paper the resident brings: values only, at the official positions.

    `template` is a blank of that paper kept with the definitions (for the preview and for checking the
    positions); `fields` are placed on it in millimetres like a template form's fields.
    """

    template: str
    fields: list[FormField] = Field(min_length=1)

    @model_validator(mode="after")
    def _placed(self) -> Overlay:
        for i, f in enumerate(self.fields):
            if f.place is None:
                raise ValueError(f"fields.{i}: 用紙に印字する欄には place（位置）が必要です")
        return self


class Application(Strict):
    """One application (申請書・届出書) the counter can prepare."""

    title: str
    short_title: str | None = None
    department: Identifier | None = None
    legal_basis: str
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    applies_when: list[Condition] = Field(min_length=1)
    for_each: ForEach | None = None
    instance_title: str | None = None
    # `after` is an ordering hint (the slip lists this application's step later); `requires` is a hard
    # gate: the step is not ready until the steps holding these applications are done.
    after: list[Identifier] = Field(default_factory=list)
    requires: list[Identifier] = Field(default_factory=list)
    documents_to_bring: list[Document] = Field(default_factory=list)
    fee: int = Field(default=0, ge=0)
    copies: Copies | None = None
    external: External | None = None
    deadline: Deadline | None = None
    needs_signature: bool = True
    roles: list[RoleSpec] = Field(default_factory=list)
    redirect: list[Redirect] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    template: str | None = None
    fields: list[FormField] = Field(default_factory=list)
    layout: Layout | None = None
    overlay: Overlay | None = None

    @model_validator(mode="after")
    def _roles_consistent(self) -> Application:
        ids = [r.id for r in self.roles]
        if len(set(ids)) != len(ids):
            raise ValueError("roles の id が重複しています")
        for index, role in enumerate(self.roles):
            if role.same_as is not None and role.same_as not in ids[:index]:
                raise ValueError(f"roles.{index}.same_as: これより前に宣言した役割の id を指定してください: {role.same_as}")
        return self

    @model_validator(mode="after")
    def _layout_or_template(self) -> Application:
        if self.valid_from and self.valid_to and self.valid_from > self.valid_to:
            raise ValueError("valid_from が valid_to より後になっています")
        if self.external is not None or self.department is None:
            return self  # external steps and a missing department are reported by the loader, with their lines
        if self.template is None and self.layout is None:
            raise ValueError("layout（様式の配置）か template（公式様式PDF）のどちらかが必要です")
        if self.template is not None and self.layout is not None:
            raise ValueError("layout と template は同時に指定できません")
        if self.template is not None:
            if not self.fields:
                raise ValueError("template を使う場合は fields が必要です")
            for i, f in enumerate(self.fields):
                if f.place is None:
                    raise ValueError(f"fields.{i}: template の欄には place（位置）が必要です")
        elif self.fields:
            raise ValueError("layout を使う場合、欄は layout.sections の中に書きます（fields は template 用）")
        return self
