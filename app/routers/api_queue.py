"""Queue API v1: reception issues tickets, counters call / recall / skip / transfer / serve them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from app.deps import CounterUser, DefinitionsDep, SessionDep, SettingsDep
from app.models import QueueTicket
from app.schemas import ErrorOut
from app.services import queue
from app.services.clock import local_today
from app.services.wait_estimate import wait_defaults

router = APIRouter(prefix="/api/v1/queue", tags=["queue"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut},
    422: {"model": ErrorOut},
}


class TicketIn(BaseModel):
    """A reception kiosk's request: the life events (nothing personal) and any priority."""

    life_events: list[str] = Field(min_length=1, max_length=10, description="move_in, birth, childcare, ...")
    priority: int = Field(0, ge=0, le=queue.MAX_PRIORITY, description="大きいほど先に呼ぶ（予約・配慮が必要な方）")
    priority_reason: str = Field("", description="'' | appointment | accessibility | other")
    queue: str = Field("", max_length=64, description="'' = 総合窓口、または課のID")


class TicketOut(BaseModel):
    """A queue ticket as counters see it (no personal data)."""

    case_id: str
    number: int
    label: str
    status: str
    queue: str
    counter: str
    priority: int
    priority_reason: str
    call_count: int
    issued_at: dt.datetime
    called_at: dt.datetime | None
    served_at: dt.datetime | None
    finished_at: dt.datetime | None
    estimated_wait_minutes: float | None
    version: int

    @classmethod
    def of(cls, t: QueueTicket) -> TicketOut:
        """Build from a model."""
        return cls(case_id=t.case_id, number=t.number, label=f"{t.number:03d}", status=t.status, queue=t.queue,
                   counter=t.counter, priority=t.priority, priority_reason=t.priority_reason, call_count=t.call_count,
                   issued_at=t.issued_at, called_at=t.called_at, served_at=t.served_at, finished_at=t.finished_at,
                   estimated_wait_minutes=t.estimated_wait_minutes, version=t.version)


class TicketIssued(TicketOut):
    """A new ticket with what to print on it: the number and the resident page's QR link."""

    ticket_number: int
    status_token: str
    resident_url: str
    position: int


class TicketList(BaseModel):
    """Today's tickets in calling order."""

    day: dt.date
    tickets: list[TicketOut]


class CallNextIn(BaseModel):
    """The counter that calls, and its queue."""

    counter: str = Field(max_length=40)
    queue: str = Field("", max_length=64)


class CallNextOut(BaseModel):
    """The ticket called, or null with a message when nobody waits."""

    ticket: TicketOut | None
    message: str


class ActionIn(BaseModel):
    """An optional counter (recall / start at another counter) and the version the clerk saw."""

    counter: str | None = Field(None, max_length=40)
    version: int | None = None


class TransferIn(BaseModel):
    """Where a ticket goes next."""

    to_queue: str = Field(max_length=64, description="'' = 総合窓口、または課のID")
    to_counter: str = Field("", max_length=40, description="この窓口だけが呼ぶ（空なら待ち列のどの窓口でも）")
    version: int | None = None


@router.post("/tickets", status_code=201, response_model=TicketIssued, responses=ERRORS,
             summary="受付で整理券を発行する（聞き取り前の下書き案件を作る）")
def issue_ticket(body: TicketIn, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                 user: CounterUser) -> TicketIssued:
    """Create a draft visit (life events only) and its queue ticket."""
    case, ticket = queue.open_visit(
        session, defs=defs, life_events=body.life_events, user=user, office=settings.office_code,
        today=local_today(settings), priority=body.priority, priority_reason=body.priority_reason, queue=body.queue,
        defaults=wait_defaults(settings, defs),
    )
    base = settings.public_base_url.rstrip("/")
    return TicketIssued(**TicketOut.of(ticket).model_dump(), ticket_number=case.ticket_number,
                        status_token=case.status_token, resident_url=f"{base}/q/{case.status_token}",
                        position=queue.tickets_ahead(session, ticket) + 1)


class VisitTicketIn(BaseModel):
    """Priority and queue for the ticket of an existing visit."""

    priority: int = Field(0, ge=0, le=queue.MAX_PRIORITY)
    priority_reason: str = Field("", description="'' | appointment | accessibility | other")
    queue: str = Field("", max_length=64, description="'' = 総合窓口、または課のID")


@router.post("/tickets/{case_id}/issue", status_code=201, response_model=TicketIssued, responses=ERRORS,
             summary="既にある来庁（事前入力の引き継ぎ・転入予約）に整理券を発行する")
def issue_ticket_for_visit(case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                           user: CounterUser, body: Annotated[VisitTicketIn | None, Body()] = None) -> TicketIssued:
    """The resident arrives with a visit the service already holds: it gets its ticket (once)."""
    body = body or VisitTicketIn()
    case, ticket = queue.ticket_for_visit(session, defs=defs, case_id=case_id, priority=body.priority,
                                          priority_reason=body.priority_reason, queue=body.queue,
                                          defaults=wait_defaults(settings, defs))
    base = settings.public_base_url.rstrip("/")
    return TicketIssued(**TicketOut.of(ticket).model_dump(), ticket_number=case.ticket_number,
                        status_token=case.status_token, resident_url=f"{base}/q/{case.status_token}",
                        position=queue.tickets_ahead(session, ticket) + 1)


@router.get("/tickets", response_model=TicketList, responses=ERRORS, summary="本日の整理券（呼出順）")
def list_tickets(session: SessionDep, settings: SettingsDep, user: CounterUser,
                 queue_id: Annotated[str | None, Query(alias="queue", max_length=64)] = None,
                 status: Annotated[list[str] | None, Query(description="waiting, called, ...")] = None) -> TicketList:
    """Today's tickets of this office, optionally of one queue or some statuses."""
    today = local_today(settings)
    rows = queue.list_tickets(session, office=settings.office_code, day=today, queue=queue_id, statuses=status)
    return TicketList(day=today, tickets=[TicketOut.of(t) for t in rows])


@router.get("/tickets/{case_id}", response_model=TicketOut, responses=ERRORS, summary="整理券を読む")
def get_ticket(case_id: str, session: SessionDep, user: CounterUser) -> TicketOut:
    """One ticket."""
    return TicketOut.of(queue.get_ticket_or_raise(session, case_id))


@router.post("/call-next", response_model=CallNextOut, responses=ERRORS, summary="次の方を呼ぶ")
def call_next(body: CallNextIn, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
              user: CounterUser) -> CallNextOut:
    """Call the next ticket (priority first, then issue order) to this counter."""
    ticket = queue.call_next(session, office=settings.office_code, day=local_today(settings), counter=body.counter,
                             queue=body.queue, actor=user, queues=defs.departments.keys())
    if ticket is None:
        return CallNextOut(ticket=None, message="お待ちの方はいません")
    return CallNextOut(ticket=TicketOut.of(ticket), message=f"{ticket.number:03d}番の方を{ticket.counter}番窓口に呼びました")


@router.post("/tickets/{case_id}/recall", response_model=TicketOut, responses=ERRORS, summary="もう一度呼ぶ")
def recall(case_id: str, session: SessionDep, user: CounterUser,
           body: Annotated[ActionIn | None, Body()] = None) -> TicketOut:
    """Call the same ticket again (also brings a skipped ticket back)."""
    body = body or ActionIn()
    return TicketOut.of(queue.recall(session, case_id=case_id, counter=body.counter, actor=user,
                                     expected_version=body.version))


@router.post("/tickets/{case_id}/skip", response_model=TicketOut, responses=ERRORS, summary="不在にする")
def skip(case_id: str, session: SessionDep, user: CounterUser,
         body: Annotated[ActionIn | None, Body()] = None) -> TicketOut:
    """The called resident did not come."""
    body = body or ActionIn()
    return TicketOut.of(queue.skip(session, case_id=case_id, actor=user, expected_version=body.version))


@router.post("/tickets/{case_id}/requeue", response_model=TicketOut, responses=ERRORS, summary="不在の方を順番待ちに戻す")
def requeue(case_id: str, session: SessionDep, user: CounterUser,
            body: Annotated[ActionIn | None, Body()] = None) -> TicketOut:
    """A skipped resident came back: the ticket waits again (keeping its place by issue time)."""
    body = body or ActionIn()
    return TicketOut.of(queue.requeue(session, case_id=case_id, actor=user, expected_version=body.version))


@router.post("/tickets/{case_id}/transfer", response_model=TicketOut, responses=ERRORS, summary="別の課・窓口へ回す")
def transfer(case_id: str, body: TransferIn, session: SessionDep, defs: DefinitionsDep, user: CounterUser) -> TicketOut:
    """Send the ticket to another queue (a department) or a particular counter."""
    return TicketOut.of(queue.transfer(session, case_id=case_id, to_queue=body.to_queue, to_counter=body.to_counter,
                                       actor=user, queues=defs.departments.keys(), expected_version=body.version))


@router.post("/tickets/{case_id}/start", response_model=TicketOut, responses=ERRORS, summary="対応を始める")
def start(case_id: str, session: SessionDep, user: CounterUser,
          body: Annotated[ActionIn | None, Body()] = None) -> TicketOut:
    """The resident is at the counter."""
    body = body or ActionIn()
    return TicketOut.of(queue.start_service(session, case_id=case_id, counter=body.counter, actor=user,
                                            expected_version=body.version))


@router.post("/tickets/{case_id}/finish", response_model=TicketOut, responses=ERRORS, summary="対応を終える")
def finish(case_id: str, session: SessionDep, user: CounterUser,
           body: Annotated[ActionIn | None, Body()] = None) -> TicketOut:
    """Service is over."""
    body = body or ActionIn()
    return TicketOut.of(queue.finish_service(session, case_id=case_id, actor=user, expected_version=body.version))


@router.get("/estimate-error", responses=ERRORS, summary="待ち時間の見込みの誤差（その日の実績）")
def estimate_error(session: SessionDep, settings: SettingsDep, user: CounterUser,
                   day: Annotated[dt.date | None, Query(description="YYYY-MM-DD（省略時は今日）")] = None) -> dict[str, Any]:
    """For every called ticket: actual wait minus the wait told at issue (minutes)."""
    return queue.estimate_error_report(session, settings.office_code, day or local_today(settings))
