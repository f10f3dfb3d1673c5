"""Metric definitions on hand-made event sequences (pure), then the service over real database rows."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from app import events as ev
from app.metrics.stats import EstimateSample, Summary, estimate_error, histogram, percentile, satisfaction
from app.metrics.visit import Event, OfficeHours, visit_figures
from app.services.definitions import DefinitionRegistry

JST = ZoneInfo("Asia/Tokyo")
HOURS = OfficeHours()


def t(hh: int, mm: int = 0, day: int = 6) -> dt.datetime:
    """A moment on 2026-04-<day> in Japan time."""
    return dt.datetime(2026, 4, day, hh, mm, tzinfo=JST)


def e(kind: str, at: dt.datetime, actor: int | None = None, **data: object) -> Event:
    return Event(kind, at, actor, data)


def queue_visit() -> list[Event]:
    """Arrive 9:00, called 9:10 to counter 1, served 9:12-9:42, departments work, leave 10:10."""
    return [
        e(ev.ARRIVAL, t(9, 0), 1, ticket_number=7),
        e(ev.INTERVIEW_STARTED, t(9, 0), 1),
        e(ev.TICKET_CALLED, t(9, 10), 2, counter="1"),
        e(ev.SERVICE_STARTED, t(9, 12), 2, counter="1"),
        e(ev.INTERVIEW_ENDED, t(9, 30), 2),
        e(ev.SIGNED, t(9, 35), 2),
        e(ev.SLIP_CREATED, t(9, 40), 2, steps=2),
        e(ev.SERVICE_ENDED, t(9, 42), 2, counter="1"),
        e(ev.STEP_CLAIMED, t(9, 41), 5, department="shimin", step_id=1),
        e(ev.STEP_DONE, t(9, 56), 5, department="shimin", step_id=1),
        e(ev.STEP_CLAIMED, t(9, 57), 6, department="kodomo", step_id=2),
        e(ev.STEP_DONE, t(10, 7), 6, department="kodomo", step_id=2),
        e(ev.DEPARTURE, t(10, 10), 2),
    ]


def test_waiting_service_and_total_add_up() -> None:
    v = visit_figures(queue_visit(), now=t(18), hours=HOURS)
    assert not v.open
    assert v.total_minutes == 70
    assert v.service_minutes == 30  # 9:12-9:42, the interview inside it is not counted twice
    assert v.waiting_minutes == 40
    assert v.wait_first_minutes == 12  # arrival -> start of service (walking to the counter included)
    assert v.wait_tail_minutes == 28  # waiting for the departments after the counter
    assert v.wait_between_minutes == 0
    assert v.total_minutes == v.waiting_minutes + v.service_minutes
    assert v.back_office_minutes == {"shimin": 15, "kodomo": 10}
    assert v.counters == ("1",)
    assert v.tickets == 1
    assert v.staff == 2  # the receptionist who opened the case and the clerk; department staff never met them
    assert v.pamphlets == 1
    assert v.lunch_minutes == 0
    assert v.stages == {"wait_call": 12, "interview": 18, "review_sign": 5, "back_office": 27, "handover": 3}


def test_waits_between_counters_and_transfer_keeps_the_ticket() -> None:
    events = [
        e(ev.ARRIVAL, t(9, 0), 1, ticket_number=3),
        e(ev.TICKET_CALLED, t(9, 5), 2, counter="1"),
        e(ev.SERVICE_STARTED, t(9, 5), 2, counter="1"),
        e(ev.TICKET_TRANSFERRED, t(9, 25), 2, counter="1", to="kodomo"),
        e(ev.TICKET_CALLED, t(9, 40), 3, counter="8", queue="kodomo"),
        e(ev.SERVICE_STARTED, t(9, 43), 3, counter="8"),
        e(ev.SERVICE_ENDED, t(9, 53), 3, counter="8"),
        e(ev.DEPARTURE, t(9, 55), 3),
    ]
    v = visit_figures(events, now=t(18))
    assert v.service_minutes == 30
    assert v.wait_first_minutes == 5
    assert v.wait_between_minutes == 18  # 9:25 -> 9:43: walk to counter 8 and wait there
    assert v.wait_tail_minutes == 2
    assert v.counters == ("1", "8")
    assert v.tickets == 1
    assert v.staff == 3


def test_a_transfer_that_issues_a_new_number_counts_a_second_ticket() -> None:
    events = [
        e(ev.ARRIVAL, t(9, 0), 1, ticket_number=3),
        e(ev.TICKET_TRANSFERRED, t(9, 20), 2, to="kodomo", new_number=51),
        e(ev.DEPARTURE, t(9, 30), 3),
    ]
    assert visit_figures(events, now=t(18)).tickets == 2


def test_a_visit_spanning_lunch_waits_through_it_but_the_back_office_does_not_count_it() -> None:
    events = [
        e(ev.ARRIVAL, t(11, 40), 1, ticket_number=30),
        e(ev.TICKET_CALLED, t(13, 5), 2, counter="2"),
        e(ev.SERVICE_STARTED, t(13, 5), 2, counter="2"),
        e(ev.SERVICE_ENDED, t(13, 35), 2),
        e(ev.STEP_CLAIMED, t(11, 50), 5, department="shimin", step_id=9),
        e(ev.STEP_DONE, t(13, 20), 5, department="shimin", step_id=9),
        e(ev.DEPARTURE, t(13, 40), 2),
    ]
    v = visit_figures(events, now=t(18), hours=HOURS)
    assert v.total_minutes == 120
    assert v.waiting_minutes == 90  # lunch is NOT excluded from waiting: the resident sat through it
    assert v.lunch_minutes == 60
    assert v.back_office_minutes == {"shimin": 30}  # 11:50-12:00 and 13:00-13:20


def test_back_office_counts_office_hours_only_across_a_night() -> None:
    events = [
        e(ev.ARRIVAL, t(16, 50)),
        e(ev.STEP_CLAIMED, t(17, 0), 5, department="hoiku", step_id=4),
        e(ev.STEP_DONE, t(9, 0, day=7), 5, department="hoiku", step_id=4),
        e(ev.DEPARTURE, t(17, 10)),
    ]
    v = visit_figures(events, now=t(18, day=7))
    assert v.back_office_minutes == {"hoiku": 15 + 30}  # 17:00-17:15, then 8:30-9:00 next morning


def test_an_open_visit_runs_up_to_now_and_is_flagged() -> None:
    events = [e(ev.ARRIVAL, t(10, 0), 1, ticket_number=1), e(ev.TICKET_CALLED, t(10, 20), 2, counter="3"),
              e(ev.SERVICE_STARTED, t(10, 20), 2, counter="3"),
              e(ev.STEP_CLAIMED, t(10, 30), 5, department="kodomo", step_id=1)]
    v = visit_figures(events, now=t(10, 45))
    assert v.open
    assert v.total_minutes == 45
    assert v.service_minutes == 25  # still being served
    assert v.waiting_minutes == 20
    assert v.back_office_minutes == {"kodomo": 15}
    assert v.steps["1"].status == "in_progress"
    assert v.stages["handover"] is None


def test_a_cancelled_step_counts_in_neither_back_office_time_nor_counters_nor_staff() -> None:
    events = [
        e(ev.ARRIVAL, t(9, 0), 1, ticket_number=2),
        e(ev.INTERVIEW_STARTED, t(9, 0), 1),
        e(ev.INTERVIEW_ENDED, t(9, 20), 1),
        e(ev.STEP_CLAIMED, t(9, 25), 7, department="hoiku", step_id=11),
        e(ev.STEP_NEEDS_RESIDENT, t(9, 35), 7, department="hoiku", step_id=11, counter="9"),
        e(ev.STEP_CANCELLED, t(9, 40), 7, department="hoiku", step_id=11),
        e(ev.STEP_CLAIMED, t(9, 25), 5, department="shimin", step_id=10),
        e(ev.STEP_DONE, t(9, 45), 5, department="shimin", step_id=10),
        e(ev.DEPARTURE, t(9, 50), 1),
    ]
    v = visit_figures(events, now=t(18))
    assert v.back_office_minutes == {"shimin": 20}
    assert v.steps["11"].status == "cancelled" and v.steps["11"].minutes == 0
    assert v.counters == ("窓口",)
    assert v.staff == 1


def test_needs_resident_pauses_the_step_and_adds_that_counter_and_person() -> None:
    events = [
        e(ev.ARRIVAL, t(9, 0), 1, ticket_number=2),
        e(ev.INTERVIEW_STARTED, t(9, 0), 1),
        e(ev.INTERVIEW_ENDED, t(9, 20), 1),
        e(ev.STEP_CLAIMED, t(10, 0), 7, department="hoiku", step_id=11),
        e(ev.STEP_NEEDS_RESIDENT, t(10, 10), 7, department="hoiku", step_id=11, counter="9"),
        e(ev.STEP_CLAIMED, t(10, 40), 7, department="hoiku", step_id=11),
        e(ev.STEP_DONE, t(10, 50), 7, department="hoiku", step_id=11),
        e(ev.DEPARTURE, t(11, 0), 1),
    ]
    v = visit_figures(events, now=t(18))
    assert v.back_office_minutes == {"hoiku": 20}  # the 30 minutes waiting for the resident are not department work
    assert v.service_minutes == 20 + 10  # the interview, then 保育課 with the resident from the resume to done
    assert v.wait_between_minutes == 80
    assert v.steps["11"].needed_resident
    assert v.counters == ("9", "窓口")
    assert v.staff == 2


def test_a_counter_visit_without_interview_end_closes_at_the_last_counter_work() -> None:
    events = [
        e(ev.ARRIVAL, t(9, 0), 1, ticket_number=4),
        e(ev.INTERVIEW_STARTED, t(9, 0), 1),
        e(ev.ANSWERS_SAVED, t(9, 15), 1, version=2),
        e(ev.SIGNED, t(9, 20), 1),
        e(ev.BUNDLE_PRINTED, t(9, 22), 1, forms=8),
        e(ev.SLIP_CREATED, t(9, 24), 1, steps=6),
        e(ev.DEPARTURE, t(10, 0), 1),
    ]
    v = visit_figures(events, now=t(18))
    assert v.service_minutes == 24
    assert v.wait_first_minutes == 0
    assert v.wait_tail_minutes == 36
    assert v.stages["interview"] == 20  # up to the signature when no interview_ended was recorded


def test_a_visit_with_no_staff_contact_yet_is_all_waiting() -> None:
    v = visit_figures([e(ev.ARRIVAL, t(9, 0), ticket_number=1)], now=t(9, 30))
    assert v.open and v.waiting_minutes == 30 and v.wait_first_minutes == 30 and v.service_minutes == 0
    assert v.counters == () and v.tickets == 1 and v.staff == 0 and v.pamphlets == 0


def test_office_hours_parse_and_refuse_a_reversed_span() -> None:
    h = OfficeHours.parse("09:00-17:00", "", "Asia/Tokyo")
    assert h.lunch_intervals(t(9), t(17)) == []
    with pytest.raises(ValueError):
        OfficeHours.parse("17:00-09:00", "12:00-13:00", "Asia/Tokyo")


def test_percentile_is_linear_between_closest_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 90) == 7.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([1, 2, 3, 4], 90) == pytest.approx(3.7)
    assert percentile(list(range(1, 11)), 90) == pytest.approx(9.1)
    s = Summary.of([10, 30, 20])
    assert (s.count, s.median, s.min, s.max, s.mean) == (3, 20, 10, 30, 20)
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_histogram_puts_long_visits_in_the_last_bin() -> None:
    assert histogram([0, 14.9, 15, 200], width=15, upto=45) == [(0, 15, 2), (15, 30, 1), (30, 45, 1)]


def test_estimate_error_and_satisfaction() -> None:
    report = estimate_error([EstimateSample(10, 14), EstimateSample(20, 12), EstimateSample(5, 5)])
    assert report["count"] == 3
    assert report["error"]["median"] == 0
    assert report["absolute_error"]["max"] == 8
    assert report["within_5_minutes"] == 2
    sat = satisfaction([5, 5, 4, 1, 9])
    assert sat == {"count": 4, "distribution": {"1": 1, "2": 0, "3": 0, "4": 1, "5": 2}, "mean": 3.75}


def test_the_baseline_copy_matches_the_shared_survey(model_case_raw: dict) -> None:
    from app.metrics.baseline import COMPARISON_ROWS, SURVEY_BASELINE

    shared = {k: v for k, v in model_case_raw["survey_baseline"].items() if not k.startswith("$")}
    assert shared == SURVEY_BASELINE
    assert [r[0] for r in COMPARISON_ROWS] == list(SURVEY_BASELINE)


def test_handwriting_counts_required_cells_left_empty_and_the_one_signature(registry: DefinitionRegistry, model_case: dict) -> None:
    from app.forms.determine import determine
    from app.forms.mapping import resolve_all
    from app.metrics.writing import handwriting

    defs = registry.current
    instances = determine(defs, model_case)
    everyone = {i.instance_id: {s.person_id for s in i.signing_slots} for i in instances}
    full = handwriting(resolve_all(defs, instances, case_number="t"), tablet_signed=everyone)
    # 本籍・筆頭者 (転入届) are not in the benchmark household's file: left for the resident to write.
    assert full == {"name": {"prefilled": 36, "by_hand": 2}, "address": {"prefilled": 15, "by_hand": 1},
                    "birth_date": {"prefilled": 23, "by_hand": 0}, "phone": {"prefilled": 10, "by_hand": 0}}
    del model_case["phone"]
    forms = resolve_all(defs, determine(defs, model_case), case_number="t")
    required_phone = sum(1 for f in forms for c in f.cells() if c.spec.kind == "phone" and c.spec.required)
    no_phone = handwriting(forms, tablet_signed=None)
    assert required_phone > 0
    assert no_phone["phone"] == {"prefilled": 0, "by_hand": required_phone}
    assert no_phone["name"]["by_hand"] == 1  # not signed yet: only the 筆頭者 the household file lacks


def test_handwriting_counts_one_name_per_signer_and_one_per_box_signed_with_a_pen(registry: DefinitionRegistry,
                                                                                 model_case: dict) -> None:
    import copy
    import json

    from app.forms.determine import determine
    from app.forms.mapping import resolve_all
    from app.metrics.writing import handwriting, signatures_by_hand
    from app.settings import PROJECT_ROOT

    defs = registry.current
    # The spouse comes alone: she signs her forms on the tablet, the head signs his on the tablet later.
    answers = copy.deepcopy(model_case)
    answers["household"]["members"][1]["present"] = True
    instances = determine(defs, answers)
    forms = resolve_all(defs, instances, case_number="t")
    slots = [(i.instance_id, s.person_id) for i in instances for s in i.signing_slots]
    assert {p for _, p in slots} == {"m1", "m2"}
    both = {i.instance_id: {s.person_id for s in i.signing_slots} for i in instances}
    assert signatures_by_hand(forms, both) == 2  # two people, each wrote their name once
    only_her = {k: v for k, v in both.items() if v == {"m2"}}
    his_boxes = sum(1 for _, p in slots if p == "m1")
    assert his_boxes >= 2
    # He never came: each of his forms is signed with a pen on paper, one name per box.
    assert signatures_by_hand(forms, only_her) == 1 + his_boxes
    base = handwriting(forms, tablet_signed=None)["name"]["by_hand"]
    assert handwriting(forms, tablet_signed=both)["name"]["by_hand"] == base + 2
    # 婚姻届: both spouses sign the one form, each in their own box: two names, not one.
    marriage = json.loads((PROJECT_ROOT / "bench" / "households" / "model_marriage.json").read_text("utf-8"))
    instances = determine(defs, marriage)
    forms = resolve_all(defs, instances, case_number="t")
    both = {i.instance_id: {s.person_id for s in i.signing_slots} for i in instances}
    assert both["konin_todoke"] == {"m1", "m2"}
    assert signatures_by_hand(forms, both) == 2
    assert signatures_by_hand(forms, {"konin_todoke": {"m1"}}) == 1 + sum(
        len(i.signing_slots) for i in instances) - 1


def test_charts_escape_text_and_draw_an_empty_state() -> None:
    from app.services.charts import Bar, horizontal_bars, nice_max, vertical_bars

    svg = str(vertical_bars("c1", "<script>alert(1)</script>", [Bar("a&b", 3, 5), Bar("<x>", 1)], unit="分"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg and "&lt;x&gt;" in svg
    assert svg.count('class="bar"') == 2 and svg.count('class="tick"') == 1
    assert 'viewBox="0 0 560 240"' in svg
    empty = str(horizontal_bars("c2", "空", [Bar("x", None)], unit="分"))
    assert "データがありません" in empty and 'class="bar"' not in empty
    assert "データがありません" in str(vertical_bars("c3", "t", [Bar("1", 0), Bar("2", 0)], unit="件", integer=True))
    assert (nice_max(0), nice_max(7), nice_max(26), nice_max(138)) == (1.0, 10.0, 50.0, 200.0)
