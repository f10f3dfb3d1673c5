"""When a department's routing step is ready to start: its answers are confirmed and its hard gates are done.

"Confirmed" means, concretely, for the visit the step belongs to:

1. the clerk has confirmed every answer that came from another source than the clerk's own typing:
   no answer marked 本人入力 (pre-entered on the resident's phone), カード (read from a マイナンバーカード)
   or 転入予約 (imported) is left unconfirmed in answer_sources; and
2. none of the step's own forms has a signature that a later change voided and that was not signed
   again (the changed answers are not what the resident confirmed).

The routing slip itself only exists once the clerk has ended the interview at the counter (the
counter builds it after the signature), so a step that exists and passes 1 and 2 carries answers the
resident confirmed at the counter. A step is ready when, in addition, every department it has a hard
gate on (`requires` in the application definitions, kept as the step's `depends_on`) is done or
cancelled. Ordering hints (`after`) only place the step on the slip; they never hold it back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AnswerSource, RoutingStep, SignedForm

FINISHED = frozenset({"done", "cancelled"})
UNCONFIRMED_MARKS = "窓口で確認していない回答（本人入力・カード・転入予約）があります"
VOIDED_SIGNATURE = "内容の変更で署名が無効になった申請書があります（再署名が必要）"


@dataclass(frozen=True)
class Confirmation:
    """What of a visit's answers is not confirmed yet: marked answers and forms whose signature was voided."""

    unconfirmed_marks: int = 0
    voided: frozenset[str] = field(default_factory=frozenset)

    def blocks(self, step: RoutingStep) -> list[str]:
        """Why the step's answers are not confirmed (empty when they are)."""
        out = []
        if self.unconfirmed_marks:
            out.append(UNCONFIRMED_MARKS)
        if self.voided.intersection(step.applications or []):
            out.append(VOIDED_SIGNATURE)
        return out


CONFIRMED = Confirmation()


def confirmations(session: Session, case_ids: Iterable[str]) -> dict[str, Confirmation]:
    """Confirmation state per visit (two queries for any number of visits; visits absent = confirmed)."""
    ids = set(case_ids)
    if not ids:
        return {}
    marks: dict[str, int] = defaultdict(int)
    for case_id in session.scalars(select(AnswerSource.case_id).where(AnswerSource.case_id.in_(ids),
                                                                      AnswerSource.confirmed_at.is_(None))):
        marks[case_id] += 1
    voided: dict[str, set[str]] = defaultdict(set)
    valid: dict[str, set[str]] = defaultdict(set)
    for case_id, instance_id, voided_at in session.execute(
            select(SignedForm.case_id, SignedForm.instance_id, SignedForm.voided_at)
            .where(SignedForm.case_id.in_(ids))):
        (voided if voided_at is not None else valid)[case_id].add(instance_id)
    out = {}
    for case_id in ids:
        out[case_id] = Confirmation(marks.get(case_id, 0), frozenset(voided[case_id] - valid[case_id]))
    return out


def waiting_for(step: RoutingStep, siblings: Iterable[RoutingStep]) -> list[str]:
    """The departments of the step's hard gates that are not finished yet."""
    status = {s.department_id: s.status for s in siblings}
    return [d for d in step.depends_on or [] if status.get(d, "done") not in FINISHED]


def is_ready(step: RoutingStep, siblings: Iterable[RoutingStep], confirmation: Confirmation = CONFIRMED) -> bool:
    """Hard gates finished and the step's answers confirmed."""
    return not waiting_for(step, siblings) and not confirmation.blocks(step)
