"""The card bridge end to end: kakanai card-bridge → pyscard → pcscd → vpcd → the fictional card, then the API.

No mock anywhere: a real pcscd with vsmartcard's virtual reader, the emulator answering APDUs, the
bridge as a subprocess (its console entry), a live uvicorn on its own database.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app.models import AnswerSource, AuditEntry, CardPairing, Case, User
from app.services import card_pairing, cases
from tests.browser.conftest import LiveServer, running_server
from tests.cardbridge.conftest import PcscStack
from tests.cardbridge.emulator import Person

TODAY = dt.date(2026, 4, 6)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The service the bridge talks to (over HTTP only)."""
    with running_server(tmp_path_factory, "card") as server:
        yield server


def _visit(live: LiveServer, life_events: list[str], *, member_id: str | None = None,
           members: list[dict[str, str]] | None = None) -> tuple[str, str]:
    """A visit opened at the counter and a pairing code for it, as the tablet would show it."""
    with live.session() as s:
        clerk = s.scalar(select(User).where(User.username == "clerk"))
        answers = {"life_events": life_events, "visit_date": TODAY.isoformat()}
        if members:
            answers["household"] = {"members": members}
        case = cases.create_case(s, defs=live.app.state.definitions.current, answers=answers, user=clerk,
                                 office=live.settings.office_code, today=TODAY, draft=True)
        code, _ = card_pairing.create_pairing(s, case_id=case.id, member_id=member_id, user=clerk)
        s.commit()
        return case.id, card_pairing.format_code(code)


def _bridge(live: LiveServer, stack: PcscStack, code: str, lines: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("kakanai", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "app.cli"]
    return subprocess.run([*command, "card-bridge", "--server", live.url, "--code", code, "--wait", "15", *extra],
                          input="".join(f"{line}\n" for line in lines), env=stack.env(), capture_output=True,
                          text=True, timeout=90, check=False)


def _case(live: LiveServer, case_id: str) -> Case:
    with live.session() as s:
        return s.get(Case, case_id)


def test_pin_read_puts_the_four_facts_and_my_number_on_the_visit(live: LiveServer, stack_factory) -> None:
    person = Person()
    case_id, code = _visit(live, ["move_in"])
    with stack_factory(person) as stack:
        run = _bridge(live, stack, code, [person.pin])
        assert run.returncode == 0, run.stdout + run.stderr
        assert "残り3回" in run.stdout and "読み取りました" in run.stdout
        assert stack.card.state.pin_tries == 3
    case = _case(live, case_id)
    member = case.answers["household"]["members"][0]
    assert member == {"id": "m1", "relationship": "head", "family_name": "番号", "given_name": "花子",
                      "birth_date": "1992-11-03", "sex": "female", "my_number": "234567890121"}
    # A 転入: the card still carries the old address, which becomes 前住所.
    assert case.answers["move"]["previous_address"] == {
        "postal_code": "530-0001", "prefecture": "大阪府", "city": "大阪市北区", "town": "梅田",
        "block": "一丁目2番3号", "building": "梅田ハイツ301号室"}
    assert "address" not in case.answers
    with live.session() as s:
        marked = set(s.scalars(select(AnswerSource.path).where(AnswerSource.case_id == case_id)))
        raw = s.connection().exec_driver_sql("select answers from cases where id = ?" if "sqlite" in live.settings.effective_database_url
                                             else "select answers::text from cases where id = %s", (case_id,)).scalar_one()
        pairing = s.scalar(select(CardPairing).where(CardPairing.case_id == case_id))
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.case_id == case_id)))
    assert "household.members.m1.my_number" in marked and "move.previous_address" in marked
    assert "234567890121" not in str(raw), "the My Number is encrypted at rest"
    assert pairing.used_at is not None
    assert "card_reading" in actions
    # The code is spent: the same code again is refused.
    again = subprocess.run([sys.executable, "-c", (
        "import json,urllib.request,urllib.error,sys\n"
        f"r=urllib.request.Request({live.url!r}+'/api/v1/card-readings/check',data=json.dumps({{'pairing_code':{code!r}}}).encode(),"
        "headers={'Content-Type':'application/json'})\n"
        "try: urllib.request.urlopen(r)\nexcept urllib.error.HTTPError as e: print(e.code)")],
        capture_output=True, text=True, check=False)
    assert again.stdout.strip() == "404"


def test_collation_b_read_for_a_card_without_pin(live: LiveServer, stack_factory) -> None:
    person = Person(name="記載　一郎", address="兵庫県尼崎市南塚口町二丁目4番5号", birth_date="19880709", sex="1",
                    my_number="123456789018", collation_b="880709" + "2031" + "4406")
    case_id, code = _visit(live, ["childcare"], member_id="m2", members=[
        {"id": "m1", "relationship": "head", "family_name": "記載", "given_name": "花"},
        {"id": "m2", "relationship": "spouse"}])
    with stack_factory(person) as stack:
        run = _bridge(live, stack, code, ["880709", "2031", "4406"], "--collation-b")
        assert run.returncode == 0, run.stdout + run.stderr
        assert stack.card.state.b_tries == 3 and stack.card.state.pin_tries == 3
    case = _case(live, case_id)
    m1, m2 = case.answers["household"]["members"]
    assert m1 == {"id": "m1", "relationship": "head", "family_name": "記載", "given_name": "花"}
    assert m2 == {"id": "m2", "relationship": "spouse", "family_name": "記載", "given_name": "一郎",
                  "birth_date": "1988-07-09", "sex": "male", "my_number": "123456789018"}
    # Not a 転入: the card's address is the current address.
    assert case.answers["address"]["postal_code"] == "661-0012"
    assert case.answers["address"]["block"] == "二丁目4番5号"


def test_wrong_pin_stops_after_one_try_and_tells_the_tries_left(live: LiveServer, stack_factory) -> None:
    person = Person()
    case_id, code = _visit(live, ["move_in"])
    before = _case(live, case_id).answers
    with stack_factory(person) as stack:
        run = _bridge(live, stack, code, ["1111", "n"])
        assert run.returncode == 3, run.stdout + run.stderr
        assert "残り2回" in run.stdout and "これ以上は試しません" in run.stdout
        assert "照合番号B" in run.stdout  # offered, declined
        verifies_with_data = [a for a in stack.card.state.log if a[1] == 0x20]
        assert stack.card.state.pin_tries == 2, "exactly one wrong try reached the card"
        assert len(verifies_with_data) == 2  # the tries query (no data) and the one wrong PIN
    assert _case(live, case_id).answers == before
    with live.session() as s:
        assert s.scalar(select(CardPairing.used_at).where(CardPairing.case_id == case_id)) is None


def test_wrong_pin_then_collation_b_reads_the_card(live: LiveServer, stack_factory) -> None:
    person = Person()
    case_id, code = _visit(live, ["move_in"])
    with stack_factory(person) as stack:
        run = _bridge(live, stack, code, ["0000", "y", person.collation_b[:6], person.collation_b[6:10],
                                          person.collation_b[10:]])
        assert run.returncode == 0, run.stdout + run.stderr
        assert stack.card.state.pin_tries == 2
    assert _case(live, case_id).answers["household"]["members"][0]["my_number"] == person.my_number


def test_the_pin_and_the_my_number_appear_in_no_log(live: LiveServer, stack_factory,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    person = Person(pin="8361", my_number="345678901234")
    _, code = _visit(live, ["move_in"])
    with stack_factory(person) as stack:
        run = _bridge(live, stack, code, [person.pin], "--verbose")
        assert run.returncode == 0, run.stdout + run.stderr
        assert "APDU VERIFY" in run.stderr  # the trace is on, yet without data
        pcscd_log = stack.log_path.read_text(errors="replace")
    server_log = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "card reading stored" in server_log  # the server's log was captured
    pin_hex = person.pin.encode().hex().upper()
    for name, text in (("bridge stdout", run.stdout), ("bridge stderr", run.stderr), ("pcscd", pcscd_log),
                       ("server", server_log)):
        assert not re.search(rf"(?<!\d){person.pin}(?!\d)", text), f"PIN in the {name} log"
        assert pin_hex not in text.upper().replace(" ", ""), f"PIN (hex) in the {name} log"
        assert person.my_number not in text, f"My Number in the {name} log"
        assert "花子" not in text, f"name in the {name} log"


def test_a_card_whose_data_does_not_match_its_hashes_is_refused(live: LiveServer, stack_factory) -> None:
    case_id, code = _visit(live, ["move_in"])
    with stack_factory(Person(), tamper=True) as stack:
        run = _bridge(live, stack, code, [Person().pin])
        assert run.returncode == 4, run.stdout + run.stderr
        assert "ハッシュと一致しません" in run.stdout
    assert not (_case(live, case_id).answers.get("household") or {}).get("members")
