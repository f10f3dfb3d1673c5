"""`kakanai bench visit`: replay households through the real service on a simulated clock.

What is real: the application (create_app), its database (a fresh SQLite file by default, or the
given URL, migrated with Alembic), the HTTP API (in-process over ASGI, or a real uvicorn), the forms
engine and the PDFs, the queue's calling order, the routing slip's order and readiness, and the
metrics. What is simulated: the people. Their durations come from bench/assumptions.yaml; between
two API calls a discrete-event loop moves a simulated clock forward (app.services.clock.simulated),
so every event the service stores carries the simulated time. The printed "new way" figures are the
service's own per-visit metrics (GET /api/v1/cases/{id}/metrics) computed from those events.

Single-household mode replays the model household twice: the new way today (the clerk types every
answer, the resident waits for the departments) and the new way with the resident's phone and card
(pre-entry API before the visit, マイナンバーカード read-in through the card API, the clerk types only what
the service does not hold yet, counted in keystrokes by app/bench/keystrokes.py; the resident is
released when the counter is done and the departments work in parallel). `--day` replays many fictional
variants arriving at random over the opening hours at K one-stop counters and reports waiting
percentiles, per life event beside the old way of bench/assumptions.yaml (`life_event_baselines`).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import heapq
import io
import json
import logging
import random
import re
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.bench.keystrokes import KeystrokeModel, answers_of, keystrokes
from app.metrics.baseline import SURVEY_BASELINE
from app.metrics.stats import Summary
from app.metrics.visit import OfficeHours
from app.settings import PROJECT_ROOT, Settings

DEFAULT_ASSUMPTIONS = PROJECT_ROOT / "bench" / "assumptions.yaml"
DEFAULT_HOUSEHOLD = PROJECT_ROOT / "bench" / "households" / "model_move_in_family.json"
ONE_STOP_PREFIX = "総合"
# Values the clerk does not type: set by the service, or filled in from the postal code.
NOT_TYPED = frozenset({"survey_baseline", "$comment", "visit_date", "id"})
FROM_POSTAL_CODE = frozenset({"prefecture", "city", "town"})
KINDS = ("family_childcare", "family", "couple", "single")
# Kinds for the other life events: the fictional model households kept in bench/households/ (issue 14).
LIFE_EVENT_KINDS = {
    "move_out": "model_move_out_family.json", "move_within": "model_move_within_family.json",
    "household_change": "model_household_change.json", "death": "model_death.json",
    "marriage": "model_marriage.json", "divorce": "model_divorce_lone_parent.json",
    "certificates": "model_certificates.json",
}
HOUSEHOLDS_DIR = Path(__file__).resolve().parents[2] / "bench" / "households"
# Dates of a household that move with its visit day (kept at the same distance before the visit).
SHIFTED_DATES = ("move.moved_on", "move_out.planned_on", "death.died_on", "death.funeral_on",
                 "household_change.changed_on", "divorce.decided_on")
# Fictional family names (kanji, katakana) for the day's households.
FAMILY_NAMES = (("青木", "アオキ"), ("石川", "イシカワ"), ("上田", "ウエダ"), ("遠藤", "エンドウ"), ("大野", "オオノ"),
                ("川口", "カワグチ"), ("木村", "キムラ"), ("小松", "コマツ"), ("坂本", "サカモト"), ("杉山", "スギヤマ"),
                ("高田", "タカダ"), ("千葉", "チバ"), ("中村", "ナカムラ"), ("野口", "ノグチ"), ("原田", "ハラダ"),
                ("藤井", "フジイ"), ("松本", "マツモト"), ("宮崎", "ミヤザキ"), ("村上", "ムラカミ"), ("森", "モリ"))


class BenchError(RuntimeError):
    """The service refused a step of the replay (the message says which call and why)."""


# --- Assumptions ---------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DayAssumptions(_Strict):
    date: dt.date
    office_hours: str = "08:30-17:15"
    lunch_break: str = "12:00-13:00"


class HouseholdAssumptions(_Strict):
    arrival: dt.time


class CounterAssumptions(_Strict):
    counters: int = Field(ge=1, le=50)
    counters_at_lunch: int = Field(ge=0, le=50)
    call_delay: float = Field(ge=0)
    walk_to_counter: float = Field(ge=0)
    minutes_per_field: float = Field(ge=0)
    check_per_form: float = Field(ge=0)
    sign: float = Field(ge=0)
    print_bundle: float = Field(ge=0)
    explain_slip: float = Field(ge=0)


class DepartmentAssumptions(_Strict):
    pickup: float = Field(ge=0)
    staff: dict[str, int] = Field(default_factory=dict)
    default_staff: int = Field(default=1, ge=1, le=50)
    back_office: dict[str, float]
    default_back_office: float = Field(ge=0)
    in_person: dict[str, float] = Field(default_factory=dict)
    walk_between_counters: float = Field(ge=0)

    def clerks(self, department: str) -> int:
        """How many of the department's clerks work on slip steps at once."""
        return max(1, int(self.staff.get(department, self.default_staff)))

    def minutes(self, department: str) -> float:
        """Back-office minutes of one step of the department."""
        return float(self.back_office.get(department, self.default_back_office))


class KeystrokeAssumptions(_Strict):
    keys_per_kana: float = Field(ge=0)
    kana_per_kanji: float = Field(ge=0)
    conversion_keys: int = Field(ge=0)
    choice: int = Field(ge=0)

    def model(self) -> KeystrokeModel:
        """The pure model app.bench.keystrokes counts with."""
        return KeystrokeModel(self.keys_per_kana, self.kana_per_kanji, self.conversion_keys, self.choice)


class PreEntryAssumptions(_Strict):
    lang: str = "ja"
    minutes_before_arrival: float = Field(ge=0)
    not_on_phone: list[str] = Field(default_factory=list)


class KakanaiAssumptions(_Strict):
    pre_entry: PreEntryAssumptions
    card_holders: list[str] = Field(default_factory=list)
    card_read: float = Field(ge=0)
    minutes_per_confirmed: float = Field(ge=0)
    reception_scan: float = Field(ge=0)


class LifeEventBaseline(_Strict):
    minutes: float = Field(ge=0)
    counters: int = Field(ge=0)
    source: str = Field(min_length=1)


class DayModeAssumptions(_Strict):
    households: int = Field(ge=1, le=2000)
    last_arrival: dt.time
    seed: int = 1
    mix: dict[str, float]

    @field_validator("mix")
    @classmethod
    def _known_kinds(cls, mix: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(mix) - set(KINDS) - set(LIFE_EVENT_KINDS))
        if unknown:
            raise ValueError(f"unknown household kinds in mix: {', '.join(unknown)}")
        return mix


class Assumptions(_Strict):
    """bench/assumptions.yaml, validated."""

    version: int
    day: DayAssumptions
    household: HouseholdAssumptions
    counter: CounterAssumptions
    departments: DepartmentAssumptions
    handover: float = Field(ge=0)
    keystrokes: KeystrokeAssumptions
    kakanai: KakanaiAssumptions
    life_event_baselines: dict[str, LifeEventBaseline] = Field(default_factory=dict)
    day_mode: DayModeAssumptions

    def office_hours(self, tz: ZoneInfo) -> OfficeHours:
        """The simulated day's office hours (the same rules the metrics use)."""
        return OfficeHours.parse(self.day.office_hours, self.day.lunch_break, tz)


def load_assumptions(path: Path = DEFAULT_ASSUMPTIONS, overrides: dict[str, Any] | None = None) -> Assumptions:
    """Read and check the assumptions file; `overrides` ({"counter.sign": 3, ...}) replace single values."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    try:
        return Assumptions.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise BenchError("assumptions are invalid:\n" + "\n".join(lines)) from exc


# --- Households ----------------------------------------------------------------------------------------


def fields_typed(answers: Any, key: str = "", parent: dict[str, Any] | None = None) -> int:
    """How many values the clerk types for this answers document (each fact once)."""
    if isinstance(answers, dict):
        return sum(fields_typed(v, k, answers) for k, v in answers.items()
                   if k not in NOT_TYPED and not (k in FROM_POSTAL_CODE and "postal_code" in answers))
    if isinstance(answers, list):
        return sum(fields_typed(v, key, parent) for v in answers)
    return 0 if answers is None or answers == "" else 1


def life_event_household(kind: str, *, index: int, day: dt.date) -> dict[str, Any]:
    """A fictional household of another life event (bench/households/), another family name, the day's dates."""
    doc = json.loads((HOUSEHOLDS_DIR / LIFE_EVENT_KINDS[kind]).read_text(encoding="utf-8"))
    doc.pop("$comment", None)
    shift = day - dt.date.fromisoformat(doc["visit_date"])
    doc["visit_date"] = day.isoformat()
    for path in SHIFTED_DATES:
        head, _, key = path.partition(".")
        node = doc.get(head)
        if isinstance(node, dict) and node.get(key):
            node[key] = (dt.date.fromisoformat(node[key]) + shift).isoformat()
    name, kana = FAMILY_NAMES[index % len(FAMILY_NAMES)]
    for m in doc["household"]["members"]:
        m["family_name"], m["family_name_kana"] = name, kana
    return doc


def variant(model: dict[str, Any], kind: str, *, index: int, day: dt.date) -> dict[str, Any]:
    """A fictional household derived from the model: fewer members, another family name, the day's dates."""
    if kind in LIFE_EVENT_KINDS:
        return life_event_household(kind, index=index, day=day)
    doc = copy.deepcopy(model)
    doc.pop("survey_baseline", None)
    doc.pop("$comment", None)
    members = doc["household"]["members"]
    keep = {"family_childcare": 4, "family": 3, "couple": 2, "single": 1}[kind]
    doc["household"]["members"] = members[:keep]
    doc["life_events"] = ["move_in", "childcare"] if kind == "family_childcare" else ["move_in"]
    if kind != "family_childcare":
        for m in doc["household"]["members"]:
            m.pop("childcare", None)
    name, kana = FAMILY_NAMES[index % len(FAMILY_NAMES)]
    for m in doc["household"]["members"]:
        m["family_name"], m["family_name_kana"] = name, kana
    if "bank_account" in doc:
        doc["bank_account"]["holder_kana"] = f"{kana} {doc['household']['members'][0]['given_name_kana']}"
    return with_day(doc, day)


def with_day(doc: dict[str, Any], day: dt.date) -> dict[str, Any]:
    """The household visiting on `day` (moved in five days before, as the model did)."""
    doc = copy.deepcopy(doc)
    if "visit_date" in doc:
        doc["visit_date"] = day.isoformat()
    if isinstance(doc.get("move"), dict) and doc["move"].get("moved_on"):
        doc["move"]["moved_on"] = (day - dt.timedelta(days=5)).isoformat()
    return doc


def without_paths(doc: dict[str, Any], patterns: list[str]) -> dict[str, Any]:
    """A copy without the answers the resident does not enter on the phone (`*` stands for any member id)."""
    out = copy.deepcopy(doc)
    for key in ("survey_baseline", "$comment", "visit_date"):
        out.pop(key, None)
    for pattern in patterns:
        _drop(out, pattern.split("."))
    return out


def _drop(node: Any, parts: list[str]) -> None:
    if not parts:
        return
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and (head == "*" or item.get("id") == head):
                _drop(item, rest)
        return
    if not isinstance(node, dict):
        return
    if not rest:
        node.pop(head, None)
    elif head in node:
        _drop(node[head], rest)


def card_facts(answers: dict[str, Any], member: dict[str, Any]) -> dict[str, str]:
    """What a card holder's マイナンバーカード chip says: 基本4情報 and the My Number, as the card bridge posts them.

    The card still shows the address before the move (the 転入届 is what changes it), so for a 転入 it
    is the previous address.
    """
    moving_in = "move_in" in (answers.get("life_events") or [])
    place = (answers.get("move") or {}).get("previous_address") if moving_in else answers.get("address")
    place = place or {}
    address = "".join(str(place.get(k) or "") for k in ("prefecture", "city", "town", "block"))
    if place.get("building"):
        address += "　" + str(place["building"])
    return {"name": f"{member.get('family_name', '')}　{member.get('given_name', '')}", "address": address,
            "birth_date": str(member.get("birth_date", "")).replace("-", ""),
            "sex": {"male": "1", "female": "2"}.get(str(member.get("sex")), "9"),
            "my_number": str(member.get("my_number", ""))}


def signature_png() -> bytes:
    """A small signature-like PNG (a stroke on white), as the tablet would send it."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (240, 80), 255)
    draw = ImageDraw.Draw(img)
    draw.line([(10, 60), (60, 20), (110, 55), (160, 25), (230, 50)], fill=0, width=4)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


# --- The simulated clock and the event loop ------------------------------------------------------------


class Sim:
    """A discrete-event loop: callbacks ordered by simulated time (ties in scheduling order)."""

    def __init__(self, start: dt.datetime):
        self.now = start
        self._queue: list[tuple[dt.datetime, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0

    def at(self, when: dt.datetime, fn: Callable[..., None], *args: Any) -> None:
        """Run fn(*args) at `when` (not before now)."""
        self._seq += 1
        heapq.heappush(self._queue, (max(when, self.now), self._seq, fn, args))

    def after(self, minutes: float, fn: Callable[..., None], *args: Any) -> None:
        """Run fn(*args) `minutes` from now."""
        self.at(self.now + dt.timedelta(minutes=minutes), fn, *args)

    def run(self) -> None:
        """Process events until none are left."""
        while self._queue:
            when, _, fn, args = heapq.heappop(self._queue)
            self.now = when
            fn(*args)


# --- Talking to the service ----------------------------------------------------------------------------


class Api:
    """HTTP calls with bearer tokens; any unexpected status stops the replay with the service's message."""

    def __init__(self, http: Any):
        self.http = http
        self.calls = 0

    def call(self, method: str, path: str, token: str, *, expect: tuple[int, ...] = (200, 201, 204),
             **kwargs: Any) -> Any:
        """One request; returns the response."""
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        headers = {**auth, **kwargs.pop("headers", {})}
        res = self.http.request(method, path, headers=headers, **kwargs)
        self.calls += 1
        if res.status_code not in expect:
            raise BenchError(f"{method} {path} -> {res.status_code}: {res.text[:400]}")
        return res

    def login(self, username: str, password: str) -> str:
        """A bearer token for a staff account."""
        res = self.http.post("/api/v1/auth/token", data={"username": username, "password": password})
        if res.status_code != 200:
            raise BenchError(f"login {username} -> {res.status_code}: {res.text[:200]}")
        return res.json()["access_token"]


@dataclass
class Household:
    """One simulated household and what the replay knows about its visit."""

    kind: str
    answers: dict[str, Any]
    arrival: dt.datetime
    scenario: str = "today"  # "today": the clerk types everything; "kakanai": pre-entry, card, leaving early
    case_id: str = ""
    fields: int = 0
    confirmed: int = 0  # answers that came from the phone or the card and were only confirmed
    keystrokes: int = 0  # keys the clerk typed at the counter
    card_fields: int = 0
    pre_entry: dict[str, Any] = field(default_factory=dict)
    released_at: dt.datetime | None = None
    forms: int = 0
    signers: list[str] = field(default_factory=list)  # who signs, in the order of their first form
    clerk: str = ""
    busy_until: dt.datetime | None = None  # the resident is at a counter until then
    closing: bool = False
    closed_at: dt.datetime | None = None
    timeline: list[tuple[dt.datetime, str]] = field(default_factory=list)


@dataclass
class Counter:
    """A one-stop counter and the clerk's token."""

    name: str
    index: int
    token: str
    idle: bool = True


@dataclass
class Department:
    """A department's back office: clerks free, steps already taken."""

    id: str
    token: str
    counter: str
    free: int
    polling: bool = False
    taken: set[int] = field(default_factory=set)


class Replay:
    """Drives the service with simulated people (see the module docstring)."""

    def __init__(self, api: Api, a: Assumptions, *, tz: ZoneInfo, reception: str, counters: list[Counter],
                 departments: dict[str, Department], png: bytes, kinds: dict[str, str] | None = None):
        self.api, self.a, self.tz = api, a, tz
        self.kinds = kinds or {}  # interview path → field kind, for the keystroke model
        self.hours = a.office_hours(tz)
        self.reception = reception
        self.counters = counters
        self.departments = departments
        self.png = png
        self.sim = Sim(dt.datetime.combine(a.day.date, dt.time(0, 0), tz))
        self.by_case: dict[str, Household] = {}
        self.households: list[Household] = []

    # Time helpers --------------------------------------------------------------------------------------

    def _local(self, t: dt.datetime) -> dt.time:
        return t.astimezone(self.tz).time()

    def _in_lunch(self, t: dt.datetime) -> bool:
        return self.hours.lunch_start <= self._local(t) < self.hours.lunch_end

    def _lunch_end(self) -> dt.datetime:
        return dt.datetime.combine(self.a.day.date, self.hours.lunch_end, self.tz)

    def _work_end(self, start: dt.datetime, minutes: float) -> dt.datetime:
        # Departments stop for lunch; work that would run into it resumes after it. (They finish the
        # day's steps after closing time rather than sending residents home.)
        lunch0 = dt.datetime.combine(self.a.day.date, self.hours.lunch_start, self.tz)
        lunch1 = self._lunch_end()
        if lunch0 <= start < lunch1:
            start = lunch1
        end = start + dt.timedelta(minutes=minutes)
        if start < lunch0 < end:
            end += lunch1 - lunch0
        return end

    # The resident's side -------------------------------------------------------------------------------

    def add(self, household: Household) -> None:
        """Schedule a household's arrival."""
        self.households.append(household)
        self.sim.at(household.arrival, self._arrive, household)

    def _note(self, h: Household, what: str) -> None:
        h.timeline.append((self.sim.now, what))

    def add_pre_entry(self, h: Household) -> None:
        """The resident enters what they know on their own phone before coming (kakanai scenario)."""
        before = dt.timedelta(minutes=self.a.kakanai.pre_entry.minutes_before_arrival)
        self.sim.at(h.arrival - before, self._pre_enter, h)

    def _pre_enter(self, h: Household) -> None:
        pre = self.a.kakanai.pre_entry
        draft = self.api.call("POST", "/pre/api/drafts", "", expect=(201, 404, 405), json={"lang": pre.lang})
        if draft.status_code != 201:
            # Never faked: without the pre-entry API the third scenario cannot be measured.
            raise BenchError("the pre-entry API (POST /pre/api/drafts) is not in this build, so the scenario with "
                             "pre-entry on the resident's phone cannot be replayed")
        body = draft.json()
        partial = without_paths(h.answers, pre.not_on_phone)
        res = self.api.call("PUT", f"/pre/api/drafts/{body['code']}/answers", "", expect=(200,),
                            headers={"X-Draft-Token": body["token"]}, json={"answers": partial}).json()
        h.pre_entry = {"code": body["code"], "stored": len(res.get("stored") or []),
                       "errors": len(res.get("errors") or [])}
        self._note(h, f"pre-entry on the phone: {h.pre_entry['stored']} stored, {h.pre_entry['errors']} refused "
                      f"(hand-off code shown as a QR)")

    def _arrive(self, h: Household) -> None:
        if h.scenario == "kakanai":
            self.sim.after(self.a.kakanai.reception_scan, self._arrive_pre_entered, h)
            return
        res = self.api.call("POST", "/api/v1/queue/tickets", self.reception,
                            json={"life_events": h.answers["life_events"]})
        h.case_id = res.json()["case_id"]
        self.by_case[h.case_id] = h
        self._note(h, f"ticket {res.json()['label']} (estimated wait {res.json()['estimated_wait_minutes']} min)")
        self._wake_counters()

    def _arrive_pre_entered(self, h: Household) -> None:
        # Reception scans the phone's QR: the draft becomes the visit (marked 本人入力), then its ticket.
        made = self.api.call("POST", "/api/v1/cases/from-pre-entry", self.reception, expect=(201,),
                             json={"code": h.pre_entry["code"]}).json()
        h.case_id = made["case_id"]
        res = self.api.call("POST", f"/api/v1/queue/tickets/{h.case_id}/issue", self.reception, expect=(201, 409))
        self.by_case[h.case_id] = h
        label = res.json().get("label", "—") if res.status_code == 201 else "(issued with the hand-off)"
        self._note(h, f"QR scanned at reception: visit with {made.get('answered')} pre-entered answers; ticket {label}")
        self._wake_counters()

    # The one-stop counters -----------------------------------------------------------------------------

    def _open(self, c: Counter) -> bool:
        return not self._in_lunch(self.sim.now) or c.index < self.a.counter.counters_at_lunch

    def _wake_counters(self) -> None:
        for c in self.counters:
            if c.idle:
                c.idle = False
                self.sim.after(self.a.counter.call_delay, self._call, c)

    def _call(self, c: Counter) -> None:
        if not self._open(c):
            c.idle = True
            self.sim.at(self._lunch_end(), self._wake_counters)
            return
        res = self.api.call("POST", "/api/v1/queue/call-next", c.token, json={"counter": c.name}).json()
        if res["ticket"] is None:
            c.idle = True
            return
        h = self.by_case[res["ticket"]["case_id"]]
        h.clerk = c.token
        self._note(h, f"called to counter {c.name}")
        self.sim.after(self.a.counter.walk_to_counter, self._start, c, h)

    def _start(self, c: Counter, h: Household) -> None:
        self.api.call("POST", f"/api/v1/queue/tickets/{h.case_id}/start", c.token, json={"counter": c.name})
        self._note(h, "interview starts")
        model = self.a.keystrokes.model()
        if h.scenario == "kakanai":
            self._read_cards(c, h)
            return
        typed = answers_of(h.answers, self.kinds)
        h.fields = len(typed)
        h.keystrokes = sum(keystrokes(x, model) for x in typed.values())
        self.sim.after(h.fields * self.a.counter.minutes_per_field, self._save, c, h)

    def _read_cards(self, c: Counter, h: Household) -> None:
        # Each card holder's マイナンバーカード through the card API (what the counter's card bridge posts).
        members = {m.get("id"): m for m in h.answers["household"]["members"]}
        for member_id in self.a.kakanai.card_holders:
            member = members.get(member_id)
            if member is None:
                continue
            pairing = self.api.call("POST", f"/api/v1/cases/{h.case_id}/card-pairings", c.token, expect=(201,),
                                    json={"member_id": member_id}).json()
            read = self.api.call("POST", "/api/v1/card-readings", "", expect=(201,),
                                 json={"pairing_code": pairing["code"], **card_facts(h.answers, member)}).json()
            h.card_fields += len(read["fields"])
        self._note(h, f"{len(self.a.kakanai.card_holders)} マイナンバーカード read in ({h.card_fields} answers)")
        self.sim.after(len(self.a.kakanai.card_holders) * self.a.kakanai.card_read, self._confirm, c, h)

    def _confirm(self, c: Counter, h: Household) -> None:
        # What the service holds now came from the phone or the card; the clerk types only the rest.
        held = self.api.call("GET", f"/api/v1/cases/{h.case_id}", c.token, params={"reveal": "all"}).json()
        wanted = answers_of(h.answers, self.kinds)
        have = answers_of(held["answers"], self.kinds)
        typed = {p: x for p, x in wanted.items() if have.get(p) is None or have[p].value != x.value}
        model = self.a.keystrokes.model()
        h.fields = len(typed)
        h.confirmed = len(wanted) - len(typed)
        h.keystrokes = sum(keystrokes(x, model) for x in typed.values())
        minutes = h.fields * self.a.counter.minutes_per_field + h.confirmed * self.a.kakanai.minutes_per_confirmed
        self.sim.after(minutes, self._save, c, h)

    def _save(self, c: Counter, h: Household) -> None:
        case = self.api.call("GET", f"/api/v1/cases/{h.case_id}", c.token).json()
        self.api.call("PUT", f"/api/v1/cases/{h.case_id}/answers", c.token,
                      json={"version": case["version"], "answers": h.answers})
        if h.scenario == "kakanai":
            # The clerk went through the 本人入力 / カード answers with the resident: confirmed.
            self.api.call("POST", f"/api/v1/cases/{h.case_id}/answer-sources/confirm", c.token)
        apps = self.api.call("GET", f"/api/v1/cases/{h.case_id}/applications", c.token).json()["applications"]
        h.forms = len(apps)
        h.signers = list(dict.fromkeys(a["signer"] for a in apps if a.get("signer")))
        done = f"{h.fields} answers typed ({h.keystrokes} keys)"
        if h.scenario == "kakanai":
            done += f", {h.confirmed} confirmed"
        self._note(h, f"{done}; {h.forms} forms pre-filled")
        self.sim.after(h.forms * self.a.counter.check_per_form + self.a.counter.sign, self._sign, c, h)

    def _sign(self, c: Counter, h: Household) -> None:
        # One signature per signer: each person signs once, only their own forms (the head alone: one PUT).
        for signer in h.signers or [None]:
            self.api.call("PUT", f"/api/v1/cases/{h.case_id}/signature", c.token, content=self.png,
                          headers={"Content-Type": "image/png"}, params={"signer": signer} if signer else None)
        pdf = self.api.call("GET", f"/api/v1/cases/{h.case_id}/bundle.pdf", c.token)
        if not pdf.content.startswith(b"%PDF"):
            raise BenchError("bundle.pdf is not a PDF")
        who = "once" if len(h.signers) <= 1 else f"once by each of {len(h.signers)} signers"
        self._note(h, f"signed {who}; bundle printed ({len(pdf.content) // 1024} KiB)")
        self.sim.after(self.a.counter.print_bundle, self._slip, c, h)

    def _slip(self, c: Counter, h: Household) -> None:
        slip = self.api.call("POST", f"/api/v1/cases/{h.case_id}/routing-slip", c.token).json()
        self._note(h, f"routing slip: {len(slip['steps'])} departments")
        h.busy_until = self.sim.now + dt.timedelta(minutes=self.a.counter.explain_slip)
        self._dispatch()
        self.sim.after(self.a.counter.explain_slip, self._finish, c, h)

    def _finish(self, c: Counter, h: Household) -> None:
        self.api.call("POST", f"/api/v1/queue/tickets/{h.case_id}/finish", c.token)
        if h.scenario == "kakanai":
            self.api.call("POST", f"/api/v1/cases/{h.case_id}/release", c.token, expect=(200, 409))
            h.released_at = self.sim.now
            self._note(h, "leaves the counter and goes home; the phone says when something is ready")
        else:
            self._note(h, "leaves the counter; waits for the departments")
        c.idle = True
        self._wake_counters()
        self._check_finished(h)

    # The back office -----------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        for d in self.departments.values():
            if d.free > 0 and not d.polling:
                d.polling = True
                when = self.sim.now + dt.timedelta(minutes=self.a.departments.pickup)
                if self._in_lunch(when):
                    when = self._lunch_end()
                self.sim.at(when, self._poll, d)

    def _poll(self, d: Department) -> None:
        d.polling = False
        if d.free <= 0:
            return
        page = self.api.call("GET", f"/api/v1/departments/{d.id}/steps", d.token,
                             params={"status": "pending", "ready": "true", "limit": 200}).json()
        for step in page["steps"]:
            if d.free <= 0:
                break
            if step["id"] in d.taken or step["case_id"] not in self.by_case:
                continue
            self._claim(d, step)

    def _claim(self, d: Department, step: dict[str, Any]) -> None:
        self.api.call("POST", f"/api/v1/departments/{d.id}/steps/{step['id']}/claim", d.token)
        d.taken.add(step["id"])
        d.free -= 1
        h = self.by_case[step["case_id"]]
        self._note(h, f"{d.id} claims its step")
        if d.id in self.a.departments.in_person:
            self.sim.after(1, self._ask_resident, d, step, h)
        else:
            self.sim.at(self._work_end(self.sim.now, self.a.departments.minutes(d.id)), self._done, d, step, h)

    def _ask_resident(self, d: Department, step: dict[str, Any], h: Household) -> None:
        self.api.call("POST", f"/api/v1/departments/{d.id}/steps/{step['id']}/needs-resident", d.token,
                      json={"reason": "担当者からご説明があります。窓口までお越しください", "counter": d.counter})
        self._note(h, f"{d.id} asks the resident to come to counter {d.counter}")
        ready = max(self.sim.now, h.busy_until or self.sim.now)
        arrive = ready + dt.timedelta(minutes=self.a.departments.walk_between_counters)
        h.busy_until = arrive + dt.timedelta(minutes=self.a.departments.in_person[d.id])
        self.sim.at(arrive, self._resume, d, step, h)

    def _resume(self, d: Department, step: dict[str, Any], h: Household) -> None:
        self.api.call("POST", f"/api/v1/departments/{d.id}/steps/{step['id']}/resume", d.token)
        self._note(h, f"at {d.id}'s counter {d.counter}")
        self.sim.after(self.a.departments.in_person[d.id], self._done, d, step, h)

    def _done(self, d: Department, step: dict[str, Any], h: Household) -> None:
        self.api.call("POST", f"/api/v1/departments/{d.id}/steps/{step['id']}/done", d.token)
        self._note(h, f"{d.id} done")
        d.free += 1
        self._dispatch()
        self._check_finished(h)

    def _check_finished(self, h: Household) -> None:
        if h.closing:
            return
        slip = self.api.call("GET", f"/api/v1/cases/{h.case_id}/routing-slip", h.clerk).json()
        if slip["created"] and all(s["status"] in ("done", "cancelled") for s in slip["steps"]):
            h.closing = True
            if h.released_at is not None:
                # Gone home: the clerk closes the file; papers go by post or wait at the counter.
                self.sim.after(0, self._close, h)
                return
            ready = max(self.sim.now, h.busy_until or self.sim.now)
            self.sim.at(ready + dt.timedelta(minutes=self.a.handover), self._close, h)

    def _close(self, h: Household) -> None:
        self.api.call("POST", f"/api/v1/cases/{h.case_id}/close", h.clerk)
        h.closed_at = self.sim.now
        if h.released_at is not None:
            self._note(h, "the last department is done (the phone said so); visit closed")
        else:
            self._note(h, "papers handed over; visit closed")


# --- Setting up the service ----------------------------------------------------------------------------


@dataclass
class Service:
    """The running service the replay talks to."""

    api: Api
    settings: Settings
    defs: Any  # the DefinitionSet the app loaded
    transport: str
    database: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def service(database_url: str | None, a: Assumptions, *, server: str = "inprocess") -> Iterator[Service]:
    """Migrate the database, create staff accounts, start the app (in-process ASGI or uvicorn)."""
    from app.main import create_app
    from app.migrate import migrate

    with tempfile.TemporaryDirectory(prefix="kakanai-bench-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        # Tokens are issued on the simulated clock at the start of the day: let them last the whole day.
        settings = Settings(env="development", database_url=url, data_dir=Path(tmp), token_ttl_minutes=24 * 60,
                            office_hours=a.day.office_hours, lunch_break=a.day.lunch_break,
                            **({"live_poll_interval": 0} if "live_poll_interval" in Settings.model_fields else {}))
        migrate(settings)
        app = create_app(settings)
        label = "SQLite (fresh, temporary)" if database_url is None else _safe_url(url)
        if server == "uvicorn":
            import httpx
            import uvicorn

            port = _free_port()
            srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
            thread = threading.Thread(target=srv.run, daemon=True)
            thread.start()
            deadline = time.monotonic() + 20
            while not srv.started:
                if time.monotonic() > deadline:
                    raise BenchError("uvicorn did not start")
                time.sleep(0.05)
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                    yield Service(Api(http), settings, app.state.definitions.current,
                                  f"uvicorn on 127.0.0.1:{port} (same process)", label)
            finally:
                srv.should_exit = True
                thread.join(timeout=10)
        else:
            from fastapi.testclient import TestClient

            with TestClient(app) as http:
                yield Service(Api(http), settings, app.state.definitions.current,
                              "in-process ASGI (httpx over the app, no network)", label)
        app.state.engine.dispose()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _staff(settings: Settings, a: Assumptions, defs: Any) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """Create the replay's staff accounts and department tokens; returns (name -> (user, password), dept -> token)."""
    from app.db import make_engine, make_sessionmaker
    from app.services import auth, departments

    suffix = secrets.token_hex(3)  # a reused database keeps earlier runs' accounts
    accounts: dict[str, tuple[str, str]] = {}
    engine = make_engine(settings.effective_database_url)
    tokens: dict[str, str] = {}
    with make_sessionmaker(engine).begin() as session:
        roles = [("reception", "counter"), ("admin", "admin")] + [(f"counter{i + 1}", "counter")
                                                                  for i in range(a.counter.counters)]
        for key, role in roles:
            name, password = f"bench-{key}-{suffix}", secrets.token_urlsafe(16)
            auth.create_user(session, username=name, password=password, role=role, display_name=f"bench {key}")
            accounts[key] = (name, password)
        for dep in defs.departments:
            tokens[dep] = departments.create_token(session, defs=defs, department_id=dep, label=f"bench {suffix}").token
    engine.dispose()
    return accounts, tokens


# --- Running and reporting -----------------------------------------------------------------------------


@dataclass
class Result:
    """What a replay measured (every figure from the service's metrics endpoints)."""

    mode: str
    database: str
    transport: str
    day: dt.date
    households: list[dict[str, Any]]
    timeline: list[tuple[str, str]]
    api_calls: int
    wall_seconds: float
    day_summary: dict[str, Any] | None = None
    timelines: list[list[tuple[str, str]]] = field(default_factory=list)  # one per scenario (household mode)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {"mode": self.mode, "database": self.database, "transport": self.transport, "day": self.day.isoformat(),
                "baseline": SURVEY_BASELINE, "households": self.households, "timeline": self.timeline,
                "api_calls": self.api_calls, "wall_seconds": round(self.wall_seconds, 2), "day_summary": self.day_summary,
                "timelines": self.timelines}


def run(*, assumptions: Assumptions, household: dict[str, Any], day_mode: bool = False, database_url: str | None = None,
        server: str = "inprocess", households: int | None = None, counters: int | None = None,
        seed: int | None = None) -> Result:
    """Replay the model household (or a day of households) and collect the service's figures."""
    from app.services import clock

    a = assumptions
    # One log line per request would drown the table; the service's own warnings still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if counters is not None:
        a = a.model_copy(update={"counter": a.counter.model_copy(update={"counters": counters})})
    started = time.perf_counter()
    with service(database_url, a, server=server) as svc:
        tz = svc.settings.tz
        defs = svc.defs
        accounts, dept_tokens = _staff(svc.settings, a, defs)
        api = svc.api
        sim_start = Sim(dt.datetime.combine(a.day.date, dt.time(0, 0), tz))
        with clock.simulated(lambda: sim_start.now):
            tokens = {k: api.login(*v) for k, v in accounts.items()}
        kinds = {path: info.field.kind for path, info in defs.fields.items()}
        runs = [_households(a, household, day_mode=day_mode, count=households, seed=seed, tz=tz)]
        if not day_mode:
            # The same household again, the new way with pre-entry, card read-in and leaving early.
            kakanai = Household("model", runs[0][0].answers, runs[0][0].arrival, scenario="kakanai")
            runs.append([kakanai])
        measured: list[dict[str, Any]] = []
        timelines: list[list[tuple[str, str]]] = []
        summary = None
        for group in runs:
            # Each scenario replays on its own simulated clock and with its own department clerks.
            depts = {d: Department(d, dept_tokens[d], (defs.departments[d].counters or [""])[0],
                                   a.departments.clerks(d)) for d in defs.departments}
            counters_ = [Counter(f"{ONE_STOP_PREFIX}{i + 1}", i, tokens[f"counter{i + 1}"])
                         for i in range(a.counter.counters)]
            replay = Replay(api, a, tz=tz, reception=tokens["reception"], counters=counters_, departments=depts,
                            png=signature_png(), kinds=kinds)
            for h in group:
                if h.scenario == "kakanai":
                    replay.add_pre_entry(h)
                replay.add(h)
            with clock.simulated(lambda replay=replay: replay.sim.now):
                replay.sim.run()
                measured += [_measured(api, tokens["reception"], h) for h in replay.households]
                if day_mode:
                    summary = _day_summary(api, tokens["admin"], a.day.date, replay.households)
                    summary["old_way"] = {k: v.model_dump() for k, v in a.life_event_baselines.items()}
            if not day_mode:
                timelines.append([(t.astimezone(tz).strftime("%H:%M"), what) for t, what in replay.households[0].timeline])
        timeline = timelines[0] if timelines else []
        result = Result("day" if day_mode else "household", svc.database, svc.transport, a.day.date, measured,
                        timeline, api.calls, time.perf_counter() - started, summary)
        result.timelines = timelines
        return result


def _households(a: Assumptions, model: dict[str, Any], *, day_mode: bool, count: int | None, seed: int | None,
                tz: ZoneInfo) -> list[Household]:
    day = a.day.date
    if not day_mode:
        answers = with_day(model, day)
        return [Household("model", answers, dt.datetime.combine(day, a.household.arrival, tz))]
    rng = random.Random(a.day_mode.seed if seed is None else seed)
    n = count or a.day_mode.households
    opens = dt.datetime.combine(day, OfficeHours.parse(a.day.office_hours, a.day.lunch_break, tz).opens, tz)
    last = dt.datetime.combine(day, a.day_mode.last_arrival, tz)
    span = (last - opens).total_seconds() / 60
    kinds = [k for k in (*KINDS, *LIFE_EVENT_KINDS) if a.day_mode.mix.get(k, 0) > 0]
    weights = [a.day_mode.mix[k] for k in kinds]
    arrivals = sorted(rng.uniform(0, span) for _ in range(n))
    out = []
    for i, minute in enumerate(arrivals):
        kind = rng.choices(kinds, weights)[0]
        arrival = opens + dt.timedelta(minutes=round(minute, 1))
        out.append(Household(kind, variant(model, kind, index=i, day=day), arrival))
    return out


def _measured(api: Api, token: str, h: Household) -> dict[str, Any]:
    body = api.call("GET", f"/api/v1/cases/{h.case_id}/metrics", token).json()
    return {"kind": h.kind, "scenario": h.scenario, "case_id": h.case_id, "fields_typed": h.fields,
            "answers_confirmed": h.confirmed, "keystrokes": h.keystrokes, "card_answers": h.card_fields,
            "pre_entry": {k: v for k, v in h.pre_entry.items() if k != "code"}, "forms": h.forms, **body}


def _day_summary(api: Api, admin: str, day: dt.date, households: list[Household]) -> dict[str, Any]:
    ours = {h.case_id for h in households}
    body = api.call("GET", "/api/v1/metrics/visits", admin, params={"from": day.isoformat(), "to": day.isoformat()}).json()
    visits = [v for v in body["visits"] if v["case_id"] in ours]
    closed = [v for v in visits if not v["open"]]
    report = api.call("GET", "/api/v1/metrics/report", admin, params={"from": day.isoformat(), "to": day.isoformat()}).json()

    def s(key: str) -> dict[str, Any]:
        return Summary.of(v[key] for v in closed).as_dict()

    per_event: dict[str, list[dict[str, Any]]] = {}
    for v in closed:
        for event in v["life_events"]:
            per_event.setdefault(event, []).append(v)
    return {"households": len(visits), "closed": len(closed),
            "wait_first": s("wait_first_minutes"), "waiting": s("waiting_minutes"), "service": s("service_minutes"),
            "total": s("total_minutes"), "wait_estimate": {k: v for k, v in report["wait_estimate"].items() if k != "errors"},
            "per_life_event": {event: _event_block(vs) for event, vs in sorted(per_event.items())}}


def _event_block(visits: list[dict[str, Any]]) -> dict[str, Any]:
    """Minutes and writing saved of the closed visits of one life event."""
    saved = {h: sum((v.get("writing") or {}).get(h, {}).get("prefilled", 0) for v in visits)
             for h in ("name", "address", "birth_date", "phone")}
    return {"visits": len(visits), "total": Summary.of(v["total_minutes"] for v in visits).as_dict(),
            "waiting": Summary.of(v["waiting_minutes"] for v in visits).as_dict(),
            "service": Summary.of(v["service_minutes"] for v in visits).as_dict(),
            "writing_saved": {**saved, "total": sum(saved.values())}}


ROWS = (
    ("departments_visited", "counters_visited", "counters visited (窓口)", ""),
    ("number_tickets", "tickets", "number tickets (整理券)", ""),
    ("staff_dealt_with", "staff", "staff the resident faced", "reception + the one-stop clerk"),
    ("name_written", "name", "names written by hand", "the signature on the tablet; 筆頭者 (the household file has no 本籍)"),
    ("address_written", "address", "addresses written by hand", "本籍 (not in the household file)"),
    ("birth_date_written", "birth_date", "birth dates written by hand", ""),
    ("phone_written", "phone", "phone numbers written by hand", ""),
    ("pamphlets_received", "pamphlets", "papers to take home (pamphlets)", "the routing slip"),
    ("total_minutes", "total_minutes", "total minutes", ""),
)


def household_rows(m: dict[str, Any]) -> list[tuple[str, Any, Any, str]]:
    """(label, old way, new way, note) for one measured visit."""
    out = []
    for base_key, ours, label, note in ROWS:
        if ours in ("name", "address", "birth_date", "phone"):
            value = m["writing"][ours]["by_hand"] if m.get("writing") else None
        else:
            value = m[ours]
        out.append((label, SURVEY_BASELINE[base_key], value, note))
    return out


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.0f}" if x == int(x) else f"{x:.1f}"
    return "-" if x is None else str(x)


def format_result(r: Result) -> str:
    """The before/after table (Markdown, so it pastes into BENCHMARKS.md as it is)."""
    lines = []
    if r.mode == "household":
        m = r.households[0]
        k = r.households[1] if len(r.households) > 1 else None
        lines += [f"Model household ({', '.join(m['life_events'])}; {m['forms']} forms; {m['fields_typed']} answers), "
                  f"replayed through the service on {r.day} — {r.database}, {r.transport}.", "",
                  "| | old way (survey) | new way today | new way + pre-entry, card, parallel, leaving early | |",
                  "|---|---:|---:|---:|---|"]
        rows_k = household_rows(k) if k else []
        for i, (label, before, after, note) in enumerate(household_rows(m)):
            third = rows_k[i][2] if k else None
            lines.append(f"| {label} | {_fmt(before)} | {_fmt(after)} | {_fmt(third)} | {note} |")
        typed_note = "Japanese IME model in bench/assumptions.yaml (keystrokes)"
        lines.append(f"| answers typed by the clerk | - | {m['fields_typed']} | {_fmt(k['fields_typed'] if k else None)} "
                     f"| the rest came from the resident's phone or the card and was confirmed |")
        lines.append(f"| answers confirmed (phone / card) | - | 0 | {_fmt(k['answers_confirmed'] if k else None)} | |")
        lines.append(f"| keystrokes typed at the counter | 0 (written by hand) | {m['keystrokes']} "
                     f"| {_fmt(k['keystrokes'] if k else None)} | {typed_note} |")
        lines += ["", f"New way today: waiting {_fmt(m['waiting_minutes'])} (before the first call "
                      f"{_fmt(m['wait_first_minutes'])}, for the departments {_fmt(m['wait_tail_minutes'])}), with staff "
                      f"{_fmt(m['service_minutes'])}."]
        if k:
            lines.append(f"New way with pre-entry: waiting {_fmt(k['waiting_minutes'])}, with staff "
                         f"{_fmt(k['service_minutes'])}; the resident leaves when the counter is done, the departments "
                         "work on in parallel and the phone tells them when something is ready.")
        lines.append("Back office (the departments' time, not the resident's): "
                     + ", ".join(f"{d} {_fmt(v)}" for d, v in m["back_office_minutes"].items()) + " min.")
        for title, timeline in zip(("new way today", "new way with pre-entry and card"), r.timelines or [r.timeline],
                                   strict=False):
            lines += ["", f"Timeline, {title} (simulated clock):"]
            lines += [f"  {t}  {what}" for t, what in timeline]
    else:
        s = r.day_summary or {}
        lines += [f"A day of {s.get('households')} fictional households on {r.day} — {r.database}, {r.transport}.", "",
                  "| minutes | count | median | p90 | max |", "|---|---:|---:|---:|---:|"]
        for key, label in (("wait_first", "waiting before the first call"), ("waiting", "waiting in all"),
                           ("service", "with staff"), ("total", "total visit")):
            x = s[key]
            lines.append(f"| {label} | {x['count']} | {_fmt(x['median'])} | {_fmt(x['p90'])} | {_fmt(x['max'])} |")
        we = s.get("wait_estimate", {})
        lines += ["", f"Wait estimate given with the ticket vs the real wait: {we.get('count')} tickets, absolute error "
                      f"median {_fmt(we.get('absolute_error', {}).get('median'))} min, p90 "
                      f"{_fmt(we.get('absolute_error', {}).get('p90'))} min, within 5 min {we.get('within_5_minutes')}."]
        events = s.get("per_life_event") or {}
        if events:
            old = s.get("old_way") or {}
            lines += ["", "| life event | visits | old way min (counters) | total median | total p90 | waiting median "
                          "| with staff median | writing saved (name/address/birth/phone) |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|"]
            for event, b in events.items():
                w = b["writing_saved"]
                base = old.get(event)
                before = f"{_fmt(base['minutes'])} ({base['counters']})" if base else "-"
                lines.append(f"| {event} | {b['visits']} | {before} | {_fmt(b['total']['median'])} | "
                             f"{_fmt(b['total']['p90'])} | {_fmt(b['waiting']['median'])} | {_fmt(b['service']['median'])} "
                             f"| {w['total']} ({w['name']}/{w['address']}/{w['birth_date']}/{w['phone']}) |")
            lines.append("Old way: move_in is the city's survey; the other life events are assumptions, each with "
                         "what it leans on, in bench/assumptions.yaml (life_event_baselines).")
        kinds: dict[str, int] = {}
        for h in r.households:
            kinds[h["kind"]] = kinds.get(h["kind"], 0) + 1
        lines.append("Households: " + ", ".join(f"{k} {v}" for k, v in kinds.items()) + f"; survey baseline total "
                     f"{SURVEY_BASELINE['total_minutes']} min for the model family.")
    lines += ["", f"({r.api_calls} API calls, {r.wall_seconds:.1f} s of real time)"]
    return "\n".join(lines)


def main(args: Any) -> int:
    """Entry point of `kakanai bench visit` (arguments parsed in app.cli)."""
    overrides = {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        # YAML would read 10:00 as the sexagesimal number 600; times stay text.
        overrides[key] = value if re.fullmatch(r"\d{1,2}:\d{2}", value.strip()) else yaml.safe_load(value)
    try:
        a = load_assumptions(Path(args.assumptions), overrides)
        household = json.loads(Path(args.household).read_text(encoding="utf-8"))
        result = run(assumptions=a, household=household, day_mode=args.day, database_url=args.database_url,
                     server=args.server, households=args.households, counters=args.counters, seed=args.seed)
    except BenchError as exc:
        print(f"bench failed: {exc}")
        return 1
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=1, default=str))
    else:
        print(format_result(result))
    return 0
