"""What a resident's phone shows for a visit (/q/<token>), and the satisfaction answer at the end.

The status holds no personal data at all: the ticket number, the queue position and wait, each routing
step by department with the application TITLES from the definitions (never a member's name or an
answer), the counter to come back to, the documents to bring (definition text) and whether the
satisfaction question is open. It is built in two layers: `build_status` reads the database into a
language-neutral dict (cached per process while the live watcher runs, invalidated by its change
counters), and `localize` adds the words in the resident's language.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import events
from app.errors import Conflict, NotFound, ValidationFailed
from app.forms import translations
from app.forms.loader import DefinitionSet
from app.i18n import N_, furigana
from app.models import Case, QueueTicket, RoutingStep, SatisfactionResponse, utcnow
from app.services import queue as queue_service
from app.services.cases import record_event
from app.services.documents import list_applications
from app.services.live import Hub
from app.services.wait_estimate import ServiceStats, WaitDefaults, service_stats

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
CLOSED_STEP = ("done", "cancelled")
MAX_COMMENT = 500

# Resident-facing messages: Japanese msgids, translated by the page (scripts/i18n.sh extracts them).
NOT_FOUND = N_("この番号の受付は見つかりません。QRコードをもう一度読み取るか、受付でおたずねください")
SCORE_ERROR = N_("満足度を1から5の中から選んでください")
COMMENT_ERROR = N_("ご意見は500文字以内でお書きください")
NOT_YET = N_("手続きが終わってからお答えください")
ALREADY = N_("すでにお答えいただいています。ありがとうございました")

TICKET_WORDS = {
    None: N_("受付済みです"),
    "waiting": N_("順番をお待ちください"),
    "called": N_("%(counter)s番窓口へお越しください"),
    "serving": N_("窓口で対応しています"),
    "done": N_("窓口での受付は終わりました"),
    "skipped": N_("お呼びしましたがいらっしゃいませんでした。受付におたずねください"),
}
STEP_WORDS = {
    "pending": N_("順番を待っています"),
    "in_progress": N_("担当の課で手続きをしています"),
    "done": N_("終わりました"),
    "needs_resident": N_("窓口へお越しください"),
}
ONE_STOP = N_("総合窓口")
LATER = N_("%(before)sの手続きが終わってから始まります")
STEP_WAIT = N_("始まるまで約%(minutes)s分（目安）")
STEP_WORKING = N_("終わるまで約%(minutes)s分（目安）")
CALLED_TO = N_("%(where)s %(counter)s番窓口へお越しください")
WAIT_HERE = N_("待合室でお待ちください。順番が来たらこの画面と表示板でお知らせします")
WORKING_WAIT = N_("待合室でお待ちください。各課で手続きを進めています")
COME_BACK_BY = N_("%(time)sごろまでに待合室へお戻りください。それまでは外出できます")
GO_TO = N_("%(where)sへお越しください")
ALL_DONE = N_("手続きはすべて終わりました。お帰りいただけます")
MAY_LEAVE = N_("お帰りいただけます。%(what)sの準備ができたらお知らせします")
STEP_READY = N_("%(what)sの手続きが終わりました")
REMAINING = N_("残りの手続き")  # MAY_LEAVE's %(what)s when more than two procedures are open (the list shows them)
COMMON_GROUP = N_("どの窓口でも使うもの")
# Documents several applications ask for, shown once (form_definitions: `key:` on a documents_to_bring item).
COMMON_DOCUMENTS = {
    "identity": N_("本人確認書類（マイナンバーカード、運転免許証、在留カードなど）"),
    "my_number": N_("家族全員の個人番号がわかるもの（マイナンバーカード、通知カードなど）"),
}
# Back after this many minutes or more: the resident may leave the room until then.
COME_BACK_MINUTES = 40


Positions = dict[str, int]


def encode(view: dict[str, Any]) -> bytes:
    """The JSON body of a localized status (the bytes a JSONResponse would send)."""
    return json.dumps(view, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _plain(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k != "_versions"}


def etag(view: dict[str, Any]) -> str:
    """The HTTP entity tag of a localized status: its content digest (`version`)."""
    return f'"{view["version"]}"'


class StatusCache:
    """Per-process caches of the status, kept exact by the live hub's change counters.

    A status is two parts: the visit's own (case, ticket, steps, documents, satisfaction), which only an
    event of that visit changes (`case_seq`), and its place in the queue, read from one snapshot per
    queue shared by every visit (`queue_seq`). After a call, hundreds of phones then need one queue
    read between them instead of a handful of queries each. A counter is always read before the data
    it guards, so a stored part is never older than its key. Without a running watcher nothing is kept.
    """

    def __init__(self, hub: Hub | None, *, size: int = 10_000) -> None:
        self.hub = hub
        self.size = size
        self._lock = threading.Lock()
        self._case_ids: OrderedDict[str, str] = OrderedDict()
        self._bases: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()
        # (token, lang) → (case id, versions, localized view, its JSON, the language-neutral status it came from)
        self._views: OrderedDict[tuple[str, str], tuple[str, tuple[int, int], dict[str, Any], bytes, dict[str, Any]]] \
            = OrderedDict()
        self._documents: OrderedDict[tuple[str, int, str], tuple[list[str], dict[str, list[str]]]] = OrderedDict()
        self._queues: dict[tuple[str, dt.date, str], tuple[int, Positions, ServiceStats]] = {}
        self._queue_locks: dict[tuple[str, dt.date, str], threading.Lock] = {}

    @property
    def live(self) -> bool:
        """Whether the change counters can be trusted (the process's watcher is running)."""
        return self.hub is not None and self.hub.running

    def _put(self, table: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        with self._lock:
            table[key] = value
            table.move_to_end(key)
            while len(table) > self.size:
                table.popitem(last=False)

    def versions(self, case_id: str) -> tuple[int, int]:
        """(queue_seq, case_seq) of a visit, read before reading what they guard."""
        assert self.hub is not None
        return self.hub.versions(case_id)

    def case_id(self, token: str) -> str | None:
        """The visit a token belongs to, if seen before (a token never moves to another visit)."""
        with self._lock:
            return self._case_ids.get(token)

    def remember_case_id(self, token: str, case_id: str) -> None:
        """Keep a token's visit id."""
        self._put(self._case_ids, token, case_id)

    def base(self, case_id: str, case_seq: int) -> dict[str, Any] | None:
        """The visit's own part, if no event of the visit came since it was read."""
        with self._lock:
            entry = self._bases.get(case_id)
        return entry[1] if entry is not None and entry[0] == case_seq else None

    def keep_base(self, case_id: str, case_seq: int, base: dict[str, Any]) -> None:
        """Keep the visit's own part, read after `case_seq` was."""
        self._put(self._bases, case_id, (case_seq, base))

    def _entry(self, token: str, lang: str) -> tuple[str, tuple[int, int], dict[str, Any], bytes, Any] | None:
        if not self.live:
            return None
        with self._lock:
            entry = self._views.get((token, lang))
        if entry is None or entry[1] != self.versions(entry[0]):
            return None
        return entry

    def view(self, token: str, lang: str) -> dict[str, Any] | None:
        """A localized status ready to send, if nothing it depends on changed (no database touched)."""
        entry = self._entry(token, lang)
        return entry[2] if entry is not None else None

    def encoded(self, token: str, lang: str) -> tuple[str, bytes] | None:
        """The same, as (ETag, JSON body): a poll that changed nothing costs a dict lookup."""
        entry = self._entry(token, lang)
        return (etag(entry[2]), entry[3]) if entry is not None else None

    def reuse(self, token: str, lang: str, status: dict[str, Any]) -> dict[str, Any] | None:
        """The localized status kept for this token and language if it was built from the same data
        (a change elsewhere in the queue that moved nobody ahead of this visit): no words to redo."""
        with self._lock:
            entry = self._views.get((token, lang))
        return entry[2] if entry is not None and entry[4] == _plain(status) else None

    def keep_view(self, token: str, lang: str, status: dict[str, Any], view: dict[str, Any]) -> None:
        """Keep a localized status built from parts read at `status["_versions"]`."""
        versions = status.get("_versions")
        if versions is not None and self.live:
            with self._lock:
                old = self._views.get((token, lang))
            body = old[3] if old is not None and old[2] is view else encode(view)
            self._put(self._views, (token, lang), (status["case_id"], versions, view, body, _plain(status)))

    def forget(self, token: str) -> None:
        """Drop a visit's cached parts (this process just changed it)."""
        with self._lock:
            case_id = self._case_ids.get(token)
            if case_id is not None:
                self._bases.pop(case_id, None)
            for key in [k for k in self._views if k[0] == token]:
                del self._views[key]

    def documents(self, key: tuple[str, int, str], build: Callable[[], tuple[list[str], dict[str, list[str]]]]
                  ) -> tuple[list[str], dict[str, list[str]]]:
        """Documents and titles per department of a case version (determination is pure: never stale)."""
        with self._lock:
            hit = self._documents.get(key)
        if hit is not None:
            return hit
        value = build()
        self._put(self._documents, key, value)
        return value

    def cached_queue(self, key: tuple[str, dt.date, str], queue_seq: int) -> tuple[Positions, ServiceStats] | None:
        """A queue's snapshot at this queue_seq, if one was read."""
        with self._lock:
            hit = self._queues.get(key)
        return (hit[1], hit[2]) if hit is not None and hit[0] == queue_seq else None

    def queue(self, key: tuple[str, dt.date, str], queue_seq: int | None,
              build: Callable[[], tuple[Positions, ServiceStats]]) -> tuple[Positions, ServiceStats]:
        """A queue's waiting order and service statistics, read once per change however many phones ask."""
        if queue_seq is None:
            return build()
        hit = self.cached_queue(key, queue_seq)
        if hit is not None:
            return hit
        with self._lock:
            lock = self._queue_locks.setdefault(key, threading.Lock())
        with lock:  # the phones woken by one call wait for the first reader instead of all reading
            hit = self.cached_queue(key, queue_seq)
            if hit is not None:
                return hit
            positions, stats = build()
            with self._lock:
                if len(self._queues) > 200:
                    self._queues.clear()
                self._queues[key] = (queue_seq, positions, stats)
        return positions, stats


def _lookup(session: Session, token: str) -> Any:
    # Malformed tokens run the same indexed query (with a value that cannot match), so a wrong token
    # is answered the same way, in the same time, whatever its shape.
    probe = token if isinstance(token, str) and TOKEN_RE.match(token) else "!"
    return session.execute(
        select(Case.id, Case.office, Case.ticket_day, Case.ticket_number, Case.status, Case.version,
               Case.definitions_fingerprint, Case.purged_at).where(Case.status_token == probe)
    ).first()


def _application_id(defs: DefinitionSet, instance_id: str) -> str | None:
    if instance_id in defs.applications:
        return instance_id
    base = instance_id.rsplit("-", 1)[0]
    return base if base in defs.applications else None


def _documents_and_titles(session: Session, defs: DefinitionSet, case_id: str) -> tuple[list[str], dict[str, list[str]]]:
    documents, titles, _groups = _documents_titles_groups(session, defs, case_id)
    return documents, titles


def _documents_titles_groups(
    session: Session, defs: DefinitionSet, case_id: str,
) -> tuple[list[str], dict[str, list[str]], dict[str, list[str]]]:
    """Documents (flat, each once), application titles per department, and documents per department.

    In the groups a document marked with a common `key` (identity proof, My Number proof) is kept
    once under "" (every counter) instead of under each department that asks for it.
    """
    case = session.get(Case, case_id)
    if case is None or case.purged_at is not None:
        return [], {}, {}
    documents: list[str] = []
    titles: dict[str, list[str]] = {}
    groups: dict[str, list[str]] = {}
    for inst in list_applications(defs, case):
        app = inst.application
        keys = {d.item: getattr(d, "key", None) for d in app.documents_to_bring}
        for item in inst.documents:
            if item not in documents:
                documents.append(item)
            key = keys.get(item)
            dep, text = ("", f"key:{key}") if key in COMMON_DOCUMENTS else (app.department, item)
            group = groups.setdefault(dep, [])
            if text not in group:
                group.append(text)
        # The application's own title: an instance title could carry a member's name.
        title = app.short_title or app.title
        dep_titles = titles.setdefault(app.department, [])
        if title not in dep_titles:
            dep_titles.append(title)
    return documents, titles, groups


def _department_backlog(session: Session, step: RoutingStep) -> int:
    """Other visits' steps of the same department that will be worked on before this one."""
    return session.scalar(
        select(func.count()).select_from(RoutingStep).where(
            RoutingStep.department_id == step.department_id, RoutingStep.id != step.id,
            or_(RoutingStep.status == "in_progress",
                and_(RoutingStep.status == "pending", RoutingStep.created_at < step.created_at)))
    ) or 0


def satisfaction_asked(case_status: str, step_statuses: list[str]) -> bool:
    """The question opens when the visit is closed, or when every routing step is done."""
    return case_status == "closed" or (bool(step_statuses) and all(s in CLOSED_STEP for s in step_statuses))


def _base(session: Session, defs: DefinitionSet, case_id: str, cache: StatusCache) -> dict[str, Any] | None:
    row = session.execute(
        select(Case.id, Case.ticket_number, Case.status, Case.version).where(Case.id == case_id)
    ).first()
    if row is None:
        return None
    ticket = session.get(QueueTicket, case_id)
    steps = list(session.scalars(
        select(RoutingStep).where(RoutingStep.case_id == case_id).order_by(RoutingStep.position, RoutingStep.id)
    ))
    read: list[tuple[list[str], dict[str, list[str]], dict[str, list[str]]]] = []

    def parts() -> tuple[list[str], dict[str, list[str]], dict[str, list[str]]]:
        if not read:
            read.append(_documents_titles_groups(session, defs, case_id))
        return read[0]

    documents, titles = cache.documents((case_id, row.version, defs.fingerprint), lambda: parts()[:2])
    _, groups = cache.documents((case_id, row.version, defs.fingerprint + ":groups"), lambda: (parts()[0], parts()[2]))
    finished = {s.department_id for s in steps if s.status in CLOSED_STEP}
    step_rows = []
    for step in steps:
        if step.status == "cancelled":
            continue
        waiting_for = [d for d in step.depends_on or [] if d not in finished]
        names: list[str] = []
        ids: list[str] = []
        for instance_id in step.applications or []:
            app_id = _application_id(defs, str(instance_id))
            if app_id is not None:
                app = defs.applications[app_id]
                title = app.short_title or app.title
                if title not in names:
                    names.append(title)
                    ids.append(app_id)
        step_rows.append({"department": step.department_id, "status": step.status, "stage": step.stage,
                          "counter": step.counter, "reason": step.resident_reason,
                          "applications": names or list(titles.get(step.department_id, [])),
                          "application_ids": ids if names else [],
                          "waiting_for": waiting_for,
                          "ahead": _department_backlog(session, step) if step.status == "pending" and not waiting_for
                          else None})
    return {
        "case_id": case_id,
        "ticket_number": row.ticket_number,
        "ticket_label": f"{row.ticket_number:03d}",
        "case_status": row.status,
        "ticket": None if ticket is None else {
            "status": ticket.status, "queue": ticket.queue, "counter": ticket.counter, "call_count": ticket.call_count,
            "priority": ticket.priority, "issued_at": ticket.issued_at, "number": ticket.number,
            "office": ticket.office, "day": ticket.day,
        },
        "steps": step_rows,
        "documents": documents,
        "document_groups": groups,
        "satisfaction": {"asked": satisfaction_asked(row.status, [s.status for s in steps]),
                         "answered": session.get(SatisfactionResponse, case_id) is not None},
    }


def _compose(base: dict[str, Any], positions: Positions | None, stats: ServiceStats | None,
             ahead: int | None = None) -> dict[str, Any]:
    ticket = base["ticket"]
    queue_part: dict[str, Any] = {"status": None, "queue": "", "counter": "", "position": None, "ahead": None,
                                  "estimated_wait_minutes": None, "call_count": 0, "priority": False}
    if ticket is not None:
        queue_part.update(status=ticket["status"], queue=ticket["queue"], counter=ticket["counter"],
                          call_count=ticket["call_count"], priority=ticket["priority"] > 0)
        if ticket["status"] == "waiting" and stats is not None:
            if ahead is None and positions is not None:
                ahead = positions.get(base["case_id"])
            if ahead is not None:
                queue_part.update(position=ahead + 1, ahead=ahead, estimated_wait_minutes=stats.estimate(ahead))
    return {**{k: v for k, v in base.items() if k != "ticket"}, "queue": queue_part}


def _queue_key(base: dict[str, Any]) -> tuple[str, dt.date, str] | None:
    ticket = base["ticket"]
    if ticket is None or ticket["status"] != "waiting":
        return None
    return ticket["office"], ticket["day"], ticket["queue"]


def cached_status(cache: StatusCache, token: str) -> dict[str, Any] | None:
    """The status from cached parts only (no database), or None when something must be read."""
    if not cache.live:
        return None
    case_id = cache.case_id(token)
    if case_id is None:
        return None
    queue_seq, case_seq = cache.versions(case_id)
    base = cache.base(case_id, case_seq)
    if base is None:
        return None
    key = _queue_key(base)
    if key is None:
        return {**_compose(base, None, None), "_versions": (queue_seq, case_seq)}
    hit = cache.cached_queue(key, queue_seq)
    if hit is None or base["case_id"] not in hit[0]:
        return None
    return {**_compose(base, hit[0], hit[1]), "_versions": (queue_seq, case_seq)}


def build_status(
    session: Session, *, token: str, defs: DefinitionSet, defaults: WaitDefaults, now: dt.datetime | None = None,
    cache: StatusCache | None = None, use_cache: bool = True,
) -> dict[str, Any]:
    """The language-neutral status of the visit with this token; NotFound for an unknown token.

    With a live cache the parts that did not change are reused; `_versions` in the result says which
    counters it is valid for (None when nothing may be cached).
    """
    cache = cache or StatusCache(None)
    live = cache.live and use_cache
    now = now or utcnow()
    case_id = cache.case_id(token) if live else None
    if case_id is None:
        row = _lookup(session, token)
        if row is None:
            raise NotFound(NOT_FOUND)
        case_id = row.id
        if cache.live:
            cache.remember_case_id(token, case_id)
    versions = cache.versions(case_id) if live else None
    base = cache.base(case_id, versions[1]) if versions is not None else None
    if base is None:
        base = _base(session, defs, case_id, cache)
        if base is None:
            raise NotFound(NOT_FOUND)
        # A visit without a ticket yet may get one without an event of its own: never kept.
        if versions is not None and base["ticket"] is not None:
            cache.keep_base(case_id, versions[1], base)
    key = _queue_key(base)
    if key is None:
        status = _compose(base, None, None)
    else:
        def read_queue() -> tuple[Positions, ServiceStats]:
            order = queue_service.waiting_order(session, office=key[0], day=key[1], queue=key[2])
            stats = service_stats(session, office=key[0], day=key[1], queue=key[2], now=now, defaults=defaults)
            return {cid: index for index, cid in enumerate(order)}, stats

        positions, stats = cache.queue(key, versions[0] if versions is not None else None, read_queue)
        ahead = positions.get(case_id)
        if ahead is None:  # the snapshot predates this ticket's return to the queue: count directly
            ticket = session.get(QueueTicket, case_id)
            ahead = queue_service.tickets_ahead(session, ticket) if ticket is not None else None
        status = _compose(base, positions, stats, ahead)
    status["_versions"] = versions if versions is not None and base["ticket"] is not None else None
    return status


def _minutes(value: float | None) -> int | None:
    if value is None:
        return None
    return max(0, int(-(-value // 1)))  # whole minutes, rounded up: nobody is told "0" too early


def localize(status: dict[str, Any], *, defs: DefinitionSet, lang: str, gettext: Callable[[str], str],
             now: dt.datetime | None = None, tz: dt.tzinfo | None = None) -> dict[str, Any]:
    """The status with every word in the resident's language (what the page, the JSON and SSE send)."""
    _ = gettext
    deps = defs.departments
    now = now or utcnow()
    tz = tz or ZoneInfo("Asia/Tokyo")

    def dep_name(dep_id: str) -> str:
        dep = deps.get(dep_id)
        return _(dep.name) if dep is not None else (_(ONE_STOP) if not dep_id else dep_id)

    def dep_location(dep_id: str) -> str:
        dep = deps.get(dep_id)
        return _(dep.location) if dep is not None and dep.location else ""

    def dep_place(dep_id: str) -> str:
        location = dep_location(dep_id)
        return f"{dep_name(dep_id)}（{location}）" if location else dep_name(dep_id)

    def minutes_of(dep_id: str) -> int:
        dep = deps.get(dep_id)
        return int(dep.service_minutes) if dep is not None and dep.service_minutes else 15

    easy = lang == "ja-x-easy"
    q = status["queue"]
    wait = _minutes(q["estimated_wait_minutes"])
    ticket_text = _(TICKET_WORDS.get(q["status"], TICKET_WORDS[None]))
    if q["status"] == "called":
        if q["queue"] and q["queue"] in deps:
            ticket_text = _(CALLED_TO) % {"where": dep_place(q["queue"]), "counter": q["counter"]}
        else:
            ticket_text = ticket_text % {"counter": q["counter"]}
    if q["status"] == "waiting":
        if q["ahead"] == 0:
            wait_text = _("まもなくお呼びします")
        else:
            wait_text = _("あと約%(minutes)s分（目安）") % {"minutes": wait}
        position_text = _("あなたの前に%(ahead)s人待っています") % {"ahead": q["ahead"]}
    else:
        wait_text = position_text = ""
    steps = []
    come_back = []
    remaining: list[int] = []
    later_minutes = 0
    for step in status["steps"]:
        counters = list(deps[step["department"]].counters) if step["department"] in deps else []
        counter = step["counter"] or (counters[0] if len(counters) == 1 else "")
        waiting_for = step.get("waiting_for") or []
        state = step["status"]
        detail = ""
        if state == "pending" and waiting_for:
            state_text = _(LATER) % {"before": "・".join(dep_name(d) for d in waiting_for)}
            later_minutes += minutes_of(step["department"])
        elif state == "pending":
            state_text = _(STEP_WORDS["pending"])
            per_counter = max(1, len(counters))
            start = -(-minutes_of(step["department"]) * (step.get("ahead") or 0) // per_counter)
            detail = _(STEP_WAIT) % {"minutes": max(1, start)}
            remaining.append(start + minutes_of(step["department"]))
        elif state == "in_progress":
            state_text = _(STEP_WORDS["in_progress"])
            detail = _(STEP_WORKING) % {"minutes": minutes_of(step["department"])}
            remaining.append(minutes_of(step["department"]))
        else:
            state_text = _(STEP_WORDS.get(state, STEP_WORDS["pending"]))
        row = {
            "department": step["department"], "department_name": dep_name(step["department"]),
            "location": dep_location(step["department"]), "counters": counters,
            "counters_text": _("%(counters)s番窓口") % {"counters": "・".join(counters)} if counters else "",
            "status": state, "startable": state == "pending" and not waiting_for,
            "status_text": state_text, "wait_text": detail,
            "applications": [translations.application_title(defs, lang, app_id, title) for app_id, title
                             in zip(step.get("application_ids") or [], step["applications"], strict=False)]
            or list(step["applications"]),
            "counter": step["counter"] if state == "needs_resident" else "",
        }
        if easy:
            row["applications_html"] = [str(furigana.ruby(t)) for t in row["applications"]]
        steps.append(row)
        if state == "needs_resident":
            where = _("%(department)s（%(location)s）%(counter)s番窓口") % {
                "department": row["department_name"], "location": row["location"], "counter": counter or "—",
            } if row["location"] else _("%(department)s %(counter)s番窓口") % {
                "department": row["department_name"], "counter": counter or "—"}
            come_back.append({"department": step["department"], "department_name": row["department_name"],
                              "counter": counter, "location": row["location"], "where": where,
                              "reason": "。".join(_(part) for part in step["reason"].split("。"))})
            if easy:
                come_back[-1]["reason_html"] = str(furigana.ruby(come_back[-1]["reason"]))
    all_done = status["satisfaction"]["asked"]
    sep = "、" if lang.startswith("ja") else ", "
    open_titles = list(dict.fromkeys(t for row in steps if row["status"] not in CLOSED_STEP for t in row["applications"]))
    # The counter is done with the resident and no department needs them: they need not wait in the
    # building while the departments work (departments in parallel; see app/services/readiness.py).
    may_leave = q["status"] == "done" and not come_back and not all_done and bool(open_titles)
    # One sentence: what to do now.
    if q["status"] == "called":
        headline = ticket_text
    elif come_back:
        headline = _(GO_TO) % {"where": come_back[0]["where"]}
    elif all_done:
        headline = _(ALL_DONE)
    elif q["status"] == "waiting":
        headline = _(WAIT_HERE)
    elif q["status"] == "serving":
        headline = ticket_text
    elif may_leave:
        what = sep.join(open_titles) if len(open_titles) <= 2 else _(REMAINING)
        headline = _(MAY_LEAVE) % {"what": what}
    elif steps:
        total = (max(remaining) if remaining else 0) + later_minutes
        if total >= COME_BACK_MINUTES:
            back = (now + dt.timedelta(minutes=total)).astimezone(tz)
            # Rounded up to the next 10 minutes: the page does not change every minute.
            back = back.replace(second=0, microsecond=0) + dt.timedelta(minutes=-back.minute % 10)
            headline = _(COME_BACK_BY) % {"time": back.strftime("%H:%M")}
        else:
            headline = _(WORKING_WAIT)
    else:
        headline = ticket_text
    open_deps = {s["department"] for s in status["steps"] if s["status"] not in CLOSED_STEP}
    groups = []
    document_groups = status.get("document_groups") or {}
    if not all_done and open_deps:
        if document_groups.get(""):
            groups.append({"department": "", "title": _(COMMON_GROUP),
                           "items": [_(COMMON_DOCUMENTS[t[4:]]) for t in document_groups[""]]})
        for step in status["steps"]:
            dep_id = step["department"]
            items = document_groups.get(dep_id)
            if dep_id in open_deps and items and all(g["department"] != dep_id for g in groups):
                groups.append({"department": dep_id, "title": dep_name(dep_id),
                               "items": [translations.document(defs, lang, t) for t in items]})
    if easy:  # やさしい日本語: readings over the kanji of the definitions' text (fugashi + unidic-lite)
        for g in groups:
            g["items_html"] = [str(furigana.ruby(item)) for item in g["items"]]
    untranslated = any(translations.FALLBACK_MARK in item for g in groups for item in g["items"])
    out = {
        "lang": lang,
        "ticket": {
            "number": status["ticket_number"], "label": status["ticket_label"], "status": q["status"],
            "status_text": ticket_text, "position": q["position"], "ahead": q["ahead"],
            "estimated_wait_minutes": wait, "wait_text": wait_text, "position_text": position_text,
            "counter": q["counter"] if q["status"] in ("called", "serving") else "",
            "queue": q["queue"], "queue_name": dep_name(q["queue"]), "call_count": q["call_count"],
        },
        "headline": headline,
        "all_done": all_done,
        "may_leave": may_leave,
        "ready_text": [{"department": row["department"],
                        "text": _(STEP_READY) % {"what": sep.join(row["applications"])}}
                       for row in steps if row["status"] == "done"] if q["status"] == "done" else [],
        "steps": steps,
        "come_back": come_back,
        "documents": status["documents"],
        "document_groups": groups,
        "documents_note": _("書類の名前は日本語で表示しています。わからないときは、この画面を係員に見せてください")
        if untranslated else "",
        "satisfaction": dict(status["satisfaction"]),
    }
    digest = hashlib.sha256(json.dumps(out, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]
    out["version"] = digest
    return out


def _clean_comment(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").strip()
    return "".join(ch for ch in text if ch == "\n" or not unicodedata.category(ch).startswith("C"))


def submit_satisfaction(
    session: Session, *, token: str, score: Any, comment: Any = "", language: str = "ja", now: dt.datetime | None = None,
) -> SatisfactionResponse:
    """Store the visit's one 手続満足度 answer (1-5, optional comment ≤ 500 characters)."""
    row = _lookup(session, token)
    if row is None:
        raise NotFound(NOT_FOUND)
    errors = []
    value: int | None = None
    if isinstance(score, int) and not isinstance(score, bool):
        value = score
    elif isinstance(score, str) and score.strip().isascii() and score.strip().isdigit():
        value = int(score.strip())
    if value is None or not 1 <= value <= 5:
        errors.append({"field": "score", "message": SCORE_ERROR})
    if comment is not None and not isinstance(comment, str):
        errors.append({"field": "comment", "message": COMMENT_ERROR})
    text = _clean_comment(comment)
    if len(text) > MAX_COMMENT:
        errors.append({"field": "comment", "message": COMMENT_ERROR})
    if errors:
        raise ValidationFailed(details=errors)
    statuses = list(session.scalars(select(RoutingStep.status).where(RoutingStep.case_id == row.id)))
    if not satisfaction_asked(row.status, statuses):
        raise Conflict(NOT_YET)
    if session.get(SatisfactionResponse, row.id) is not None:
        raise Conflict(ALREADY)
    now = now or utcnow()
    response = SatisfactionResponse(case_id=row.id, score=value, comment=text, language=language[:16], at=now)
    try:
        with session.begin_nested():
            session.add(response)
    except IntegrityError:
        # Two submissions at once: the first one counts.
        raise Conflict(ALREADY) from None
    case = session.get(Case, row.id)
    assert case is not None
    record_event(session, case, events.SATISFACTION, at=now, data={"score": value})
    return response
