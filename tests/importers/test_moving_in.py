"""転入予約 import: the sample export through its mapping file, bad rows reported per row and column, all or nothing."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cli import main
from app.forms.loader import DefinitionSet
from app.importers.mapping import MappingError, load_mapping
from app.importers.moving_in import build
from app.models import AnswerSource, Case, PlannedVisit
from app.services import planned_visits
from app.services.clock import local_today
from app.settings import PROJECT_ROOT, Settings
from tests.conftest import make_user, page_login

SAMPLES = PROJECT_ROOT / "samples" / "moving_in"
DAY = dt.date(2026, 4, 6)
CSV_HEADER = "予約番号,来庁予定日,異動予定日,転出元住所,転入先住所,電話番号,転出の方法,続柄,氏名,氏名フリガナ,生年月日,性別\n"


@pytest.fixture
def defs(registry) -> DefinitionSet:
    return registry.current


@pytest.fixture
def csv_mapping():
    return load_mapping(SAMPLES / "mapping.yaml")


def test_the_sample_export_becomes_one_answers_document_per_household(defs: DefinitionSet, csv_mapping) -> None:
    result = build((SAMPLES / "export.csv").read_bytes(), csv_mapping, defs, today=DAY)
    assert result.errors == []
    assert [(h.reference, h.planned_on) for h in result.households] == [
        ("R2026-0001", DAY), ("R2026-0002", DAY), ("R2026-0003", dt.date(2026, 4, 7))]
    first = result.households[0].answers
    assert first["life_events"] == ["move_in"] and first["visit_date"] == "2026-04-06"
    assert first["move"] == {
        "moved_on": "2026-04-01", "moving_out_method": "card_special",
        "previous_address": {"postal_code": "530-0001", "prefecture": "大阪府", "city": "大阪市北区", "town": "梅田",
                             "block": "一丁目2番3号", "building": "梅田ハイツ301号室"}}
    assert first["address"] == {"postal_code": "661-0012", "prefecture": "兵庫県", "city": "尼崎市", "town": "南塚口町",
                                "block": "二丁目4番5号", "building": "塚口コーポ202号室"}
    assert first["phone"] == "090-1234-5678"
    assert first["household"]["members"] == [
        {"id": "m1", "relationship": "head", "family_name": "港", "given_name": "太郎", "family_name_kana": "ミナト",
         "given_name_kana": "タロウ", "birth_date": "1990-06-15", "sex": "male"},
        {"id": "m2", "relationship": "spouse", "family_name": "港", "given_name": "花子", "family_name_kana": "ミナト",
         "given_name_kana": "ハナコ", "birth_date": "1992-11-03", "sex": "female"},
        {"id": "m3", "relationship": "child", "family_name": "港", "given_name": "一郎", "family_name_kana": "ミナト",
         "given_name_kana": "イチロウ", "birth_date": "2017-09-20", "sex": "male"},
    ]
    assert result.households[1].answers["move"]["moving_out_method"] == "certificate"


def test_the_json_sample_with_nested_members(defs: DefinitionSet) -> None:
    result = build((SAMPLES / "export.json").read_bytes(), load_mapping(SAMPLES / "mapping_json.yaml"), defs, today=DAY)
    assert result.errors == []
    (household,) = result.households
    assert household.reference == "J2026-0101"
    assert household.answers["move"]["moved_on"] == "2026-04-02"  # 令和8年4月2日
    assert [(m["given_name"], m["given_name_kana"], m["relationship"]) for m in household.answers["household"]["members"]] \
        == [("次郎", "ジロウ", "head"), ("三郎", "サブロウ", "child")]


def test_bad_rows_are_reported_per_row_and_column_and_nothing_is_stored(db: Session, defs: DefinitionSet,
                                                                         csv_mapping) -> None:
    osaka, hyogo = "大阪府大阪市北区梅田一丁目2番3号", "兵庫県尼崎市南塚口町二丁目4番5号"
    rows = [
        f"R1,2026/04/06,2026/04/01,{osaka},{hyogo},090-1234-5678,転出証明書,世帯主,港　太郎,ﾐﾅﾄ ﾀﾛｳ,19900615,1",
        f"R1,2026/04/06,2026/04/01,{osaka},{hyogo},090-1234-5678,転出証明書,妻,港　花子,ﾐﾅﾄ ﾊﾅｺ,19921341,3",
        f"R2,2026-04-06,2026/04/01,どこかの町1-2,{hyogo},090-1234-5678,郵送,世帯主,港太郎,,19900615,1",
        f"R3,2026/04/06,2026/04/01,{osaka},{hyogo},12,転出証明書,世帯主,見本　一,ﾐﾎﾝ ﾊｼﾞﾒ,20990101,2",
        f"R4,2026/04/06,2026/04/01,{osaka},{hyogo},090-1234-5678,転出証明書,世帯主,見本　二郎,ﾐﾎﾝ ｼﾞﾛｳ,19800101,1",
    ]
    data = (CSV_HEADER + "\n".join(rows) + "\n").encode()
    with pytest.raises(planned_visits.ImportFailed) as caught:
        planned_visits.import_file(db, defs=defs, mapping=csv_mapping, data=data, office="honcho", user=None, today=DAY)
    problems = [(e["row"], e["column"], e["message"]) for e in caught.value.details]
    assert problems[:2] == [
        ("3行目", "生年月日", "日付「19921341」が形式 %Y%m%d に合いません"),
        ("3行目", "性別", "「3」は対応表にありません（1・2・男・女 のいずれか）"),
    ]
    assert ("4行目", "来庁予定日", "日付「2026-04-06」が形式 %Y/%m/%d に合いません") in problems
    assert ("4行目", "転出元住所", "住所を郵便番号のデータと突き合わせられません（都道府県から書いてください）") in problems
    assert ("4行目", "転出の方法", "「郵送」は対応表にありません（マイナンバーカード特例・転出証明書 のいずれか）") in problems
    assert ("4行目", "氏名", "姓と名の間に空白がありません") in problems
    # Values that transform fine but break the interview's rules are traced back to their column.
    assert ("5行目", "電話番号") in [(r, c) for r, c, _ in problems]
    assert ("5行目", "生年月日", "未来の日付は入力できません") in problems
    assert not any(r == "6行目" for r, _, _ in problems)
    # Nothing half-imported: the good household R4 was not stored either.
    assert db.scalar(select(func.count()).select_from(PlannedVisit)) == 0
    assert caught.value.status == 422


def test_a_file_imported_twice_adds_nothing_twice(db: Session, defs: DefinitionSet, csv_mapping) -> None:
    data = (SAMPLES / "export.csv").read_bytes()
    report = planned_visits.import_file(db, defs=defs, mapping=csv_mapping, data=data, office="honcho", user=None,
                                        today=DAY)
    assert (report.households, report.members, report.days) == (3, 5, {"2026-04-06": 2, "2026-04-07": 1})
    with pytest.raises(planned_visits.ImportFailed) as caught:
        planned_visits.import_file(db, defs=defs, mapping=csv_mapping, data=data, office="honcho", user=None, today=DAY)
    assert caught.value.details[0] == {"row": "2行目", "column": "予約番号", "field": "予約番号",
                                       "message": "予約番号 R2026-0001 はすでに取り込まれています"}
    assert db.scalar(select(func.count()).select_from(PlannedVisit)) == 3
    stored = db.scalar(select(PlannedVisit).where(PlannedVisit.reference == "R2026-0002"))
    assert stored.answers["household"]["members"][0]["family_name"] == "記載"


def test_missing_columns_and_broken_mappings_are_reported(tmp_path: Path, defs: DefinitionSet, csv_mapping) -> None:
    result = build("予約番号,来庁予定日\nR1,2026/04/06\n".encode(), csv_mapping, defs, today=DAY)
    texts = [e.text() for e in result.errors]
    assert "ファイル「氏名」: この列がありません" in texts and "ファイル「転出元住所」: この列がありません" in texts
    assert len(texts) == 10 and result.households == []
    broken = tmp_path / "m.yaml"
    broken.write_text("reference: 予約番号\nvisit_date: {column: 来庁予定日, path: visit_date}\n"
                      "member:\n  - {column: 氏名, path: family_name, transform: [furigana]}\n"
                      "  - {column: 氏名, path: family_name, transform: split_name}\nunknown: 1\n", encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(broken)
    text = str(caught.value)
    assert "unknown" in text
    broken.write_text(broken.read_text(encoding="utf-8").replace("unknown: 1\n", ""), encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(broken)
    assert caught.value.problems == [
        f"{broken}: member.0.transform: 変換「furigana」はありません（date, kana, map, split_name, address, digits, strip）",
        f"{broken}: member.1.path: split_name には2つ、それ以外は1つの path を書いてください",
    ]


def test_today_list_shows_planned_visits_and_opens_one_with_marked_answers(client: TestClient, db: Session,
                                                                           settings: Settings, defs: DefinitionSet,
                                                                           csv_mapping) -> None:
    today = local_today(settings)
    data = (SAMPLES / "export.csv").read_text(encoding="utf-8").replace("2026/04/06", today.strftime("%Y/%m/%d"))
    planned_visits.import_file(db, defs=defs, mapping=csv_mapping, data=data.encode(), office=settings.office_code,
                               user=None, today=today)
    db.commit()
    make_user(db, "clerk", "counter")
    csrf = page_login(client, "clerk")
    page = client.get("/counter", headers={"Accept": "text/html"}).text
    assert "本日の来庁予定　2件" in page
    assert "R2026-0001" in page and "港 太郎" in page and "R2026-0003" not in page
    planned_id = re.search(r"/counter/planned/([0-9a-f]+)/start", page).group(1)
    res = client.post(f"/counter/planned/{planned_id}/start", data={"csrf_token": csrf}, follow_redirects=False)
    assert res.status_code == 303
    case_id = re.search(r"/counter/visits/([0-9a-f]+)", res.headers["location"]).group(1)
    case = db.get(Case, case_id)
    assert case.answers["visit_date"] == today.isoformat()
    assert [m["given_name"] for m in case.answers["household"]["members"]] == ["太郎", "花子", "一郎"]
    marked = set(db.scalars(select(AnswerSource.path).where(AnswerSource.case_id == case_id)))
    assert {"move.previous_address", "address", "phone", "household.members.m2.birth_date"} <= marked
    interview = client.get(f"/counter/visits/{case_id}", headers={"Accept": "text/html"}).text
    assert '"household.members[1].birth_date": "\\u8ee2\\u5165\\u4e88\\u7d04"' in interview  # 転入予約
    # Opened once: it leaves the planned list, and a second start is refused.
    assert "R2026-0001" not in client.get("/counter", headers={"Accept": "text/html"}).text
    again = client.post(f"/counter/planned/{planned_id}/start", data={"csrf_token": csrf}, follow_redirects=False)
    assert again.status_code == 409


def test_cli_imports_the_sample(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KAKANAI_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("KAKANAI_DATA_DIR", str(tmp_path))
    from app.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 0
        args = ["import", "moving-in", str(SAMPLES / "export.csv"), "--mapping", str(SAMPLES / "mapping.yaml")]
        assert main([*args, "--dry-run"]) == 0
        assert "3世帯（5人）を確認しました（保存していません）" in capsys.readouterr().out
        assert main(args) == 0
        assert "3世帯（5人）を取り込みました。来庁予定日: 2026-04-06 2世帯、2026-04-07 1世帯" in capsys.readouterr().out
        assert main(args) == 1
        assert "2行目「予約番号」: 予約番号 R2026-0001 はすでに取り込まれています" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


def test_planned_visits_are_purged_by_retention_and_emptied_when_opened(db: Session, defs: DefinitionSet,
                                                                         csv_mapping) -> None:
    from app.models import User
    from app.services import auth, retention

    planned_visits.import_file(db, defs=defs, mapping=csv_mapping, data=(SAMPLES / "export.csv").read_bytes(),
                               office="honcho", user=None, today=DAY)
    clerk = auth.create_user(db, username="clerk2", password="a-very-long-password", role="counter")
    first = db.scalar(select(PlannedVisit).where(PlannedVisit.reference == "R2026-0001"))
    planned_visits.start_planned(db, defs=defs, planned_id=first.id, user=db.get(User, clerk.id), office="honcho",
                                 today=DAY)
    assert first.answers == {} and first.case_id
    now = dt.datetime(2026, 4, 7, 3, tzinfo=dt.UTC)  # R2026-0003 is planned for 04-07: kept
    retention.purge(db, older_than_days=0, now=now)
    assert list(db.scalars(select(PlannedVisit.reference))) == ["R2026-0003"]


def test_admin_upload_imports_all_or_nothing(client: TestClient, db: Session) -> None:
    from tests.conftest import login

    make_user(db, "admin1", "admin")
    make_user(db, "clerk1", "counter")
    headers = login(client, "admin1")
    files = {"file": ("export.csv", (SAMPLES / "export.csv").read_bytes(), "text/csv"),
             "mapping": ("mapping.yaml", (SAMPLES / "mapping.yaml").read_bytes(), "application/yaml")}
    assert client.post("/api/v1/admin/imports/moving-in", files=files, headers=login(client, "clerk1")).status_code == 403
    dry = client.post("/api/v1/admin/imports/moving-in?dry_run=true", files=files, headers=headers)
    assert dry.status_code == 200 and dry.json()["dry_run"] is True
    assert db.scalar(select(func.count()).select_from(PlannedVisit)) == 0
    res = client.post("/api/v1/admin/imports/moving-in", files=files, headers=headers)
    assert res.json() == {"households": 3, "members": 5, "days": {"2026-04-06": 2, "2026-04-07": 1}, "dry_run": False}
    again = client.post("/api/v1/admin/imports/moving-in", files=files, headers=headers)
    assert again.status_code == 422
    assert again.json()["errors"][0]["message"] == "予約番号 R2026-0001 はすでに取り込まれています"
    bad_mapping = {**files, "mapping": ("m.yaml", b"format: xml\n", "application/yaml")}
    res = client.post("/api/v1/admin/imports/moving-in", files=bad_mapping, headers=headers)
    assert res.status_code == 422 and all(e["field"] == "mapping" for e in res.json()["errors"])
