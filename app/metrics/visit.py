"""Per-visit figures from a visit's event log (pure: events in, figures out; no database).

Definitions (the README section "Metrics and the 2 h 18 min benchmark" repeats them for readers):

- **total**: arrival → departure. An open visit (no departure yet) runs up to `now` and is flagged
  `open`; aggregates leave open visits out and count them separately. A resident the counter
  released (`resident_released`: they may leave while the departments work) is at the office until
  that moment, or until the end of the last in-person contact a department asked for after it:
  their total ends there, although the visit stays open until the departments finish and the
  visit is closed. Back-office time still runs to the departure.
- **service** (staff time with the resident): the union of the intervals in which a member of staff
  is with the resident. A visit that went through the queue has `service_started` → `service_ended`
  intervals (an unclosed one ends at the next `service_started`, a transfer, the departure or now).
  A visit opened directly at the counter, without queue events, counts its interview:
  `interview_started` → `interview_ended` (or, when that was not recorded, the last counter-side event:
  answers saved, signed, forms printed, routing slip built). A department that asked for the
  resident in person (`step_needs_resident`) is with them from its next claim (the resume) until the
  step is done.
- **waiting**: the time the resident is present and not with staff, so total = waiting + service.
  It is split into `wait_first` (arrival → first staff contact), `wait_between` (gaps between
  contacts: walking to another counter, waiting to be called again) and `wait_tail` (after the last
  contact until departure, e.g. waiting for the departments to finish).
- **lunch**: resident-facing times (total, waiting) are wall-clock: the resident sits through the
  lunch break too, so lunch is NOT excluded from waiting; `lunch_minutes` reports the overlap so a
  reader can see it. Back-office time counts only office hours outside the lunch break.
- **back office** per department: `step_claimed` → `step_done`, paused from `step_needs_resident`
  until the step is claimed again, counted only within office hours (lunch and nights excluded).
  A cancelled step counts nowhere (neither back-office time nor counters nor staff).
- **counters**: distinct counters the resident stood at: the counter of each staff contact
  (`data.counter`, or the one-stop counter when none is recorded) plus the counter (or department)
  of each step that needed the resident in person.
- **tickets**: distinct ticket numbers the resident held (`ticket_number` / `number` / `new_number`
  in event data); one ticket per visit, a transfer keeps its number and adds none.
- **staff**: distinct staff accounts that dealt with the resident face to face (actors of arrival
  (the ticket), interview, signing, call and service events, and of a step that asked for the resident).
- **pamphlets**: papers the service itself hands the resident to take home: the routing slip, one
  per visit once it is built. Departments' own leaflets are outside the service, so this is a
  lower bound.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from app import events as ev

Interval = tuple[dt.datetime, dt.datetime]

QUEUE_KINDS = frozenset({ev.TICKET_CALLED, ev.SERVICE_STARTED})
# Counter-side work the clerk does with the resident still at the counter (closes an interview
# interval when `interview_ended` was not recorded).
COUNTER_WORK_KINDS = frozenset({ev.ANSWERS_SAVED, ev.SIGNED, ev.FORM_PRINTED, ev.BUNDLE_PRINTED, ev.SLIP_CREATED})
FACE_TO_FACE_KINDS = frozenset({
    ev.ARRIVAL, ev.INTERVIEW_STARTED, ev.INTERVIEW_ENDED, ev.SIGNED, ev.TICKET_CALLED, ev.TICKET_RECALLED,
    ev.SERVICE_STARTED, ev.SERVICE_ENDED,
})
TICKET_KEYS = ("ticket_number", "number", "new_number")
ONE_STOP = "窓口"

# Stages of a visit for the "time per stage" chart: (key, Japanese label).
STAGES: tuple[tuple[str, str], ...] = (
    ("wait_call", "呼び出しまで"),
    ("interview", "聞き取り"),
    ("review_sign", "確認・署名"),
    ("back_office", "各課の処理"),
    ("handover", "お渡し・終了"),
)


@dataclass(frozen=True)
class Event:
    """One event of a visit, as the metrics see it (kind, UTC time, staff actor, small data)."""

    kind: str
    at: dt.datetime
    actor_id: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OfficeHours:
    """When the office works, in the city's time zone; back-office time counts only inside it."""

    opens: dt.time = dt.time(8, 30)
    closes: dt.time = dt.time(17, 15)
    lunch_start: dt.time = dt.time(12, 0)
    lunch_end: dt.time = dt.time(13, 0)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Tokyo"))

    @classmethod
    def parse(cls, hours: str, lunch: str, tz: str | ZoneInfo) -> OfficeHours:
        """Build from 'HH:MM-HH:MM' strings (lunch may be empty: no lunch break)."""
        opens, closes = _span(hours)
        lunch_start, lunch_end = _span(lunch) if lunch.strip() else (opens, opens)
        return cls(opens, closes, lunch_start, lunch_end, tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz))

    def lunch_intervals(self, start: dt.datetime, end: dt.datetime) -> list[Interval]:
        """The lunch breaks (UTC intervals) of every local day between start and end."""
        return [(a, b) for a, b in self._daily(start, end, self.lunch_start, self.lunch_end) if b > a]

    def working_intervals(self, start: dt.datetime, end: dt.datetime) -> list[Interval]:
        """Office hours minus lunch (UTC intervals) of every local day between start and end."""
        out: list[Interval] = []
        for day_open, day_close in self._daily(start, end, self.opens, self.closes):
            lunch = [(a, b) for a, b in self._daily(day_open, day_close, self.lunch_start, self.lunch_end) if b > a]
            out.extend(subtract([(day_open, day_close)], lunch))
        return out

    def _daily(self, start: dt.datetime, end: dt.datetime, t0: dt.time, t1: dt.time) -> list[Interval]:
        first = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        out = []
        day = first
        while day <= last:
            out.append((dt.datetime.combine(day, t0, self.tz).astimezone(dt.UTC),
                        dt.datetime.combine(day, t1, self.tz).astimezone(dt.UTC)))
            day += dt.timedelta(days=1)
        return out


def _span(text: str) -> tuple[dt.time, dt.time]:
    a, _, b = text.partition("-")
    start, end = dt.time.fromisoformat(a.strip()), dt.time.fromisoformat(b.strip())
    if end <= start:
        raise ValueError(f"time span must end after it starts: {text!r}")
    return start, end


@dataclass(frozen=True)
class StepFigures:
    """Back-office figures of one department's step."""

    department: str
    status: str  # done | cancelled | needs_resident | in_progress | pending
    minutes: float  # working minutes, lunch and nights excluded; 0 for a cancelled step
    needed_resident: bool


@dataclass(frozen=True)
class VisitFigures:
    """Everything the metrics say about one visit; minutes are floats."""

    arrival_at: dt.datetime
    end_at: dt.datetime
    open: bool
    total_minutes: float
    waiting_minutes: float
    service_minutes: float
    wait_first_minutes: float
    wait_between_minutes: float
    wait_tail_minutes: float
    lunch_minutes: float
    back_office_minutes: dict[str, float]
    steps: dict[str, StepFigures]
    counters: tuple[str, ...]
    tickets: int
    staff: int
    pamphlets: int
    stages: dict[str, float | None]

    @property
    def back_office_total(self) -> float:
        """Back-office minutes summed over departments (they may have worked in parallel)."""
        return sum(self.back_office_minutes.values())

    def local_day(self, tz: ZoneInfo) -> dt.date:
        """The visit's day in the city's time zone."""
        return self.arrival_at.astimezone(tz).date()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (minutes rounded to 0.1)."""
        return {
            "arrival_at": self.arrival_at.isoformat(),
            "end_at": self.end_at.isoformat(),
            "open": self.open,
            "total_minutes": _r(self.total_minutes),
            "waiting_minutes": _r(self.waiting_minutes),
            "service_minutes": _r(self.service_minutes),
            "wait_first_minutes": _r(self.wait_first_minutes),
            "wait_between_minutes": _r(self.wait_between_minutes),
            "wait_tail_minutes": _r(self.wait_tail_minutes),
            "lunch_minutes": _r(self.lunch_minutes),
            "back_office_minutes": {k: _r(v) for k, v in sorted(self.back_office_minutes.items())},
            "back_office_total_minutes": _r(self.back_office_total),
            "steps": {k: {"department": s.department, "status": s.status, "minutes": _r(s.minutes),
                          "needed_resident": s.needed_resident} for k, s in sorted(self.steps.items())},
            "counters_visited": len(self.counters),
            "counters": list(self.counters),
            "tickets": self.tickets,
            "staff": self.staff,
            "pamphlets": self.pamphlets,
            "stages": {k: (None if v is None else _r(v)) for k, v in self.stages.items()},
        }


def _r(x: float) -> float:
    return round(x, 1)


def minutes(delta: dt.timedelta) -> float:
    """A duration in minutes."""
    return delta.total_seconds() / 60.0


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Merge overlapping intervals; empty ones are dropped."""
    out: list[Interval] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def subtract(base: Iterable[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """The parts of `base` not covered by `holes`."""
    holes = union(holes)
    out: list[Interval] = []
    for a, b in union(base):
        cur = a
        for h0, h1 in holes:
            if h1 <= cur or h0 >= b:
                continue
            if h0 > cur:
                out.append((cur, h0))
            cur = max(cur, h1)
        if cur < b:
            out.append((cur, b))
    return out


def intersect(xs: Iterable[Interval], ys: Iterable[Interval]) -> list[Interval]:
    """The parts covered by both sets of intervals."""
    ys = union(ys)
    out = []
    for a, b in union(xs):
        for c, d in ys:
            lo, hi = max(a, c), min(b, d)
            if hi > lo:
                out.append((lo, hi))
    return union(out)


def length(intervals: Iterable[Interval]) -> float:
    """Total minutes covered."""
    return sum(minutes(b - a) for a, b in union(intervals))


def _ordered(events: Iterable[Event]) -> list[Event]:
    # Stable: events recorded in the same instant keep their recorded order.
    return sorted(events, key=lambda e: e.at)


def _contacts(events: Sequence[Event], end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime, str]]:
    """Intervals with staff, each with the counter it happened at."""
    out: list[tuple[dt.datetime, dt.datetime, str]] = []
    if any(e.kind in QUEUE_KINDS for e in events):
        open_at: dt.datetime | None = None
        counter = ONE_STOP
        last_called = ONE_STOP
        for e in events:
            if e.kind == ev.TICKET_CALLED or e.kind == ev.TICKET_RECALLED:
                last_called = str(e.data.get("counter") or ONE_STOP)
            elif e.kind == ev.SERVICE_STARTED:
                if open_at is not None:
                    out.append((open_at, e.at, counter))
                open_at = e.at
                counter = str(e.data.get("counter") or last_called or ONE_STOP)
            elif e.kind in (ev.SERVICE_ENDED, ev.TICKET_TRANSFERRED, ev.DEPARTURE) and open_at is not None:
                out.append((open_at, e.at, counter))
                open_at = None
        if open_at is not None:
            out.append((open_at, end, counter))
        return out
    # Opened directly at the counter: the interview is the staff contact.
    start: dt.datetime | None = None
    for i, e in enumerate(events):
        if e.kind == ev.INTERVIEW_STARTED and start is None:
            start = e.at
            stop = next((x.at for x in events[i + 1:] if x.kind == ev.INTERVIEW_ENDED), None)
            if stop is None:
                work = [x.at for x in events[i + 1:] if x.kind in COUNTER_WORK_KINDS and x.at <= end]
                stop = max(work) if work else start
            out.append((start, min(stop, end), ONE_STOP))
            start = None
            break
    return out


Contact = tuple[dt.datetime, dt.datetime, str]


def _steps(events: Sequence[Event], end: dt.datetime, hours: OfficeHours
           ) -> tuple[dict[str, StepFigures], list[Event], list[Contact]]:
    """Back-office figures per step, the needs_resident events of steps that were not cancelled, and
    the time a department spent with the resident it asked for (claimed again → done)."""
    by_step: dict[str, list[Event]] = {}
    for e in events:
        if e.kind in (ev.STEP_CLAIMED, ev.STEP_DONE, ev.STEP_NEEDS_RESIDENT, ev.STEP_CANCELLED):
            key = str(e.data.get("step_id") or e.data.get("department") or "")
            by_step.setdefault(key, []).append(e)
    figures: dict[str, StepFigures] = {}
    asked: list[Event] = []
    met: list[Contact] = []
    for key, evs in by_step.items():
        department = str(next((e.data.get("department") for e in evs if e.data.get("department")), key))
        if any(e.kind == ev.STEP_CANCELLED for e in evs):
            figures[key] = StepFigures(department, "cancelled", 0.0, False)
            continue
        running: list[Interval] = []
        since: dt.datetime | None = None
        counter = ""  # set while the resident the department asked for is with it
        status = "pending"
        for e in evs:
            if e.kind == ev.STEP_CLAIMED:
                since = since or e.at
                if status == "needs_resident":
                    met.append((e.at, end, counter))
                status = "in_progress"
            elif e.kind in (ev.STEP_NEEDS_RESIDENT, ev.STEP_DONE):
                if since is not None:
                    running.append((since, e.at))
                if met and met[-1][1] == end and met[-1][2] == counter and counter:
                    met[-1] = (met[-1][0], e.at, counter)
                since = None
                status = "done" if e.kind == ev.STEP_DONE else "needs_resident"
                if e.kind == ev.STEP_NEEDS_RESIDENT:
                    counter = str(e.data.get("counter") or e.data.get("department") or department)
        if since is not None and end > since:
            running.append((since, end))
        work = intersect(running, hours.working_intervals(min(a for a, _ in running), max(b for _, b in running))) \
            if running else []
        needed = [e for e in evs if e.kind == ev.STEP_NEEDS_RESIDENT]
        asked.extend(needed)
        figures[key] = StepFigures(department, status, length(work), bool(needed))
    return figures, asked, met


def _stages(events: Sequence[Event], arrival: dt.datetime, end: dt.datetime, first_contact: dt.datetime | None,
            closed: bool) -> dict[str, float | None]:
    def first(*kinds: str) -> dt.datetime | None:
        return next((e.at for e in events if e.kind in kinds), None)

    def last(*kinds: str) -> dt.datetime | None:
        return next((e.at for e in reversed(events) if e.kind in kinds), None)

    called = first_contact or first(ev.INTERVIEW_STARTED)
    interview_end = first(ev.INTERVIEW_ENDED) or first(ev.SIGNED)
    signed = first(ev.SIGNED)
    slip = first(ev.SLIP_CREATED)
    step_kinds = (ev.STEP_DONE, ev.STEP_CANCELLED)
    steps_end = last(*step_kinds) if first(ev.STEP_CLAIMED, *step_kinds) else None
    departure = end if closed else None
    marks = [("wait_call", arrival, called), ("interview", called, interview_end),
             ("review_sign", interview_end, signed), ("back_office", slip or signed, steps_end),
             ("handover", steps_end or slip or signed, departure)]
    out: dict[str, float | None] = {}
    for key, a, b in marks:
        out[key] = max(0.0, minutes(b - a)) if a is not None and b is not None else None
    return out


def visit_figures(events: Iterable[Event], *, now: dt.datetime, hours: OfficeHours | None = None) -> VisitFigures:
    """Compute one visit's figures from its events (see the module docstring for the definitions)."""
    hours = hours or OfficeHours()
    evs = _ordered(events)
    arrival = next((e.at for e in evs if e.kind == ev.ARRIVAL), evs[0].at if evs else now)
    departure = next((e.at for e in reversed(evs) if e.kind == ev.DEPARTURE), None)
    closed = departure is not None
    visit_end = departure if departure is not None else max(now, arrival)
    steps, asked, met = _steps(evs, visit_end, hours)
    end = visit_end
    released = next((e.at for e in reversed(evs) if e.kind == ev.RESIDENT_RELEASED), None)
    if released is not None:
        # The resident left; a department that asked them back met them later (met ends when done).
        end = min(visit_end, max([released, *(b for a, b, _ in met if a >= released)]))
    contacts = [(max(a, arrival), min(b, end), c) for a, b, c in [*_contacts(evs, end), *met]]
    contacts = [c for c in contacts if c[1] >= c[0]]
    with_staff = union((a, b) for a, b, _ in contacts)
    total = minutes(end - arrival)
    service = length(with_staff)
    if with_staff:
        wait_first = minutes(with_staff[0][0] - arrival)
        wait_tail = minutes(end - with_staff[-1][1])
    else:
        wait_first, wait_tail = total, 0.0
    waiting = total - service
    wait_between = max(0.0, waiting - wait_first - wait_tail)
    lunch = length(intersect([(arrival, end)], hours.lunch_intervals(arrival, end)))

    back_office: dict[str, float] = {}
    for s in steps.values():
        if s.status != "cancelled":
            back_office[s.department] = back_office.get(s.department, 0.0) + s.minutes
    counters = {c for _, _, c in contacts}
    counters.update(str(e.data.get("counter") or e.data.get("department") or "") for e in asked)
    counters.discard("")
    staff = {e.actor_id for e in evs if e.kind in FACE_TO_FACE_KINDS and e.actor_id is not None}
    staff.update(e.actor_id for e in asked if e.actor_id is not None)
    numbers = {str(e.data[k]) for e in evs for k in TICKET_KEYS
               if e.kind in (ev.ARRIVAL, ev.TICKET_CALLED, ev.TICKET_TRANSFERRED) and e.data.get(k) is not None}
    tickets = len(numbers) or (1 if any(e.kind == ev.ARRIVAL for e in evs) else 0)
    pamphlets = 1 if any(e.kind == ev.SLIP_CREATED for e in evs) else 0
    first_contact = with_staff[0][0] if with_staff and any(e.kind in QUEUE_KINDS for e in evs) else None
    return VisitFigures(
        arrival_at=arrival, end_at=end, open=not closed, total_minutes=total, waiting_minutes=waiting,
        service_minutes=service, wait_first_minutes=wait_first, wait_between_minutes=wait_between,
        wait_tail_minutes=wait_tail, lunch_minutes=lunch, back_office_minutes=back_office, steps=steps,
        counters=tuple(sorted(counters)), tickets=tickets, staff=len(staff), pamphlets=pamphlets,
        stages=_stages(evs, arrival, visit_end, first_contact, closed),
    )
