"""The personal procedures handbook (おくやみハンドブック): every step of a visit, in the city and outside it.

Pure: definitions and answers in, a plain document out (rendered by handbook_pdf). Each step says where
to go and by when; deadlines are already moved off closed days by the determination.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.forms.context import build_context
from app.forms.determine import Instance, determine
from app.forms.expr import as_date
from app.forms.loader import DefinitionSet
from app.forms.transforms import full_name
from app.forms.wareki import format_wareki

DEATH_REPORT_DAYS = 7  # 戸籍法 第86条: 死亡の事実を知った日から7日以内


@dataclass(frozen=True)
class HandbookStep:
    """One procedure as the handbook lists it."""

    title: str
    place: str
    deadline: dt.date | None
    deadline_text: str
    documents: tuple[str, ...]
    how: str
    external: bool
    fee_total: int


@dataclass(frozen=True)
class Handbook:
    """Everything printed in the handbook."""

    title: str
    case_number: str
    city_name: str
    person_label: str
    person_name: str
    event_date: dt.date | None
    intro: tuple[str, ...]
    steps: tuple[HandbookStep, ...]


def _place(defs: DefinitionSet, inst: Instance) -> str:
    app = inst.application
    if app.external is not None:
        return app.external.place
    dep = defs.departments[app.department] if app.department else None
    if dep is None:
        return ""
    counters = f" {'・'.join(dep.counters)}番窓口" if dep.counters else ""
    return f"{dep.name}（{dep.location}{counters}）"


def _step(defs: DefinitionSet, inst: Instance) -> HandbookStep:
    app = inst.application
    deadline_text = app.deadline.text if app.deadline else "期限はありません"
    if inst.deadline is not None and inst.legal_deadline is not None and inst.deadline != inst.legal_deadline:
        deadline_text += f"（期限の日が閉庁日のため {format_wareki(inst.deadline)} まで）"
    return HandbookStep(
        title=inst.title, place=_place(defs, inst), deadline=inst.deadline, deadline_text=deadline_text,
        documents=inst.documents, how=app.external.how if app.external else "", external=app.external is not None,
        fee_total=inst.fee_total,
    )


def build_handbook(
    defs: DefinitionSet, answers: Mapping[str, Any], *, case_number: str, city_name: str,
) -> Handbook:
    """The handbook of a visit: steps sorted by deadline (those without one last), city and external."""
    instances = determine(defs, answers, case_number=case_number, include_external=True)
    steps = sorted((_step(defs, i) for i in instances),
                   key=lambda s: (s.deadline is None, s.deadline or dt.date.max, s.external))
    ctx = build_context(answers)
    events = answers.get("life_events") or []
    if "death" in events:
        died_on = as_date((answers.get("death") or {}).get("died_on"))
        intro = ["このハンドブックは、ご家族が亡くなった後の手続きを、市役所の中と外に分けずに期限の順に並べたものです。"]
        if died_on is not None:
            report_by = died_on + dt.timedelta(days=DEATH_REPORT_DAYS)
            intro.append(f"死亡届は亡くなったことを知った日から7日以内（戸籍法 第86条。目安 {format_wareki(report_by)}）"
                         "で、葬儀社などが提出済みのことが多いため、この一覧には入れていません。")
        intro.append("期限の目安：14日（資格喪失・世帯主変更）、3か月（相続放棄）、4か月（準確定申告）、"
                      "10か月（相続税）、3年（相続登記）。期限の日が役所の閉庁日に当たるときは、次の開庁日までです。")
        deceased = ctx.get("deceased")
        return Handbook(
            title="おくやみハンドブック", case_number=case_number, city_name=city_name, person_label="亡くなった方",
            person_name=full_name(deceased, ctx) if deceased else "", event_date=died_on, intro=tuple(intro),
            steps=tuple(steps),
        )
    head = ctx.get("head")
    return Handbook(
        title="手続きのご案内", case_number=case_number, city_name=city_name, person_label="世帯主",
        person_name=full_name(head, ctx) if head else "", event_date=as_date(answers.get("visit_date")),
        intro=("今日の手続きと、これからの期限を一覧にしました。期限の日が閉庁日に当たるときは、次の開庁日までです。",),
        steps=tuple(steps),
    )
