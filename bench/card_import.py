"""Timings of issue 16's two data sources: a 転入予約 import and a マイナンバーカード read at the counter.

1. `kakanai import moving-in` logic on N fictional households (3 members each) on a fresh SQLite file:
   the address lookup with a cold cache (first file of the day) and warm (next file).
2. The card bridge end to end over the emulated PC/SC stack of the tests (pcscd + vpcd + the fictional
   card, a live uvicorn): from starting `kakanai card-bridge` to its exit, PIN path; skipped when the
   Debian packages are missing.

Run: .venv/bin/python bench/card_import.py [--households 300] [--reads 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.cli import migrate  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.forms import address_split  # noqa: E402
from app.forms.loader import load_definitions  # noqa: E402
from app.importers.mapping import load_mapping  # noqa: E402
from app.services import planned_visits  # noqa: E402
from app.settings import PROJECT_ROOT, Settings  # noqa: E402

ADDRESSES = ["大阪府大阪市北区梅田一丁目2番3号", "東京都千代田区霞が関二丁目1番2号", "北海道札幌市中央区旭ケ丘五丁目6番7号",
             "福岡県福岡市博多区博多駅前一丁目1番1号", "宮城県仙台市青葉区一番町三丁目3番3号"]
HEADER = "予約番号,来庁予定日,異動予定日,転出元住所,転入先住所,電話番号,転出の方法,続柄,氏名,氏名フリガナ,生年月日,性別\n"


def export(households: int) -> bytes:
    rows = []
    for h in range(households):
        src = ADDRESSES[h % len(ADDRESSES)]
        for rel, given, kana, born, sex in (("世帯主", "太郎", "ﾀﾛｳ", "19900615", "1"), ("妻", "花子", "ﾊﾅｺ", "19921103", "2"),
                                            ("子", "一郎", "ｲﾁﾛｳ", "20170920", "1")):
            rows.append(f"B{h:05d},2026/04/06,2026/04/01,{src},兵庫県尼崎市南塚口町二丁目4番5号,090-1234-5678,"
                        f"転出証明書,{rel},見本{h}　{given},ﾐﾎﾝ {kana},{born},{sex}")
    return (HEADER + "\n".join(rows) + "\n").encode()


def bench_import(households: int) -> list[tuple[str, float]]:
    defs = load_definitions(PROJECT_ROOT / "form_definitions")
    mapping = load_mapping(ROOT / "samples" / "moving_in" / "mapping.yaml")
    out = []
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/bench.db"
        migrate(Settings(env="test", database_url=url, data_dir=Path(d)))
        engine = make_engine(url)
        for label, data in (("cold", export(households)), ("warm", export(households).replace(b"B0", b"C0"))):
            if label == "cold":
                address_split._prefecture.cache_clear()
            with Session(engine) as s:
                t = time.perf_counter()
                report = planned_visits.import_file(s, defs=defs, mapping=mapping, data=data, office="honcho",
                                                    user=None, today=dt.date(2026, 4, 6))
                s.commit()
                out.append((f"import {report.households} households / {report.members} people ({label} address cache)",
                            time.perf_counter() - t))
        engine.dispose()
    return out


class _Tmp:
    def __init__(self, root: Path):
        self.root, self.n = root, 0

    def mktemp(self, name: str) -> Path:
        self.n += 1
        path = self.root / f"{name}{self.n}"
        path.mkdir()
        return path


def bench_card(reads: int) -> list[float] | str:
    from app.models import User
    from app.services import card_pairing, cases
    from tests.browser.conftest import running_server
    from tests.cardbridge.conftest import missing_stack, pcsc_stack
    from tests.cardbridge.emulator import Person

    reason = missing_stack()
    if reason:
        return reason
    times = []
    with tempfile.TemporaryDirectory() as d, running_server(_Tmp(Path(d)), "bench") as live:
        for i in range(reads):
            with live.session() as s:
                clerk = s.scalar(select(User).where(User.username == "clerk"))
                case = cases.create_case(s, defs=live.app.state.definitions.current, answers={"life_events": ["move_in"]},
                                         user=clerk, office="honcho", today=dt.date(2026, 4, 6), draft=True)
                code, _ = card_pairing.create_pairing(s, case_id=case.id, member_id=None, user=clerk)
                s.commit()
            stack_dir = Path(d) / f"stack{i}"
            stack_dir.mkdir()
            person = Person()
            with pcsc_stack(stack_dir, person) as stack:
                t = time.perf_counter()
                run = subprocess.run([sys.executable, "-m", "app.cli", "card-bridge", "--server", live.url, "--code", code],  # noqa: S603
                                     input=f"{person.pin}\n", env=stack.env(), capture_output=True, text=True, check=False,
                                     cwd=ROOT)
                times.append(time.perf_counter() - t)
                if run.returncode != 0:
                    return f"bridge failed: {run.stdout} {run.stderr}"
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=300)
    parser.add_argument("--reads", type=int, default=5)
    args = parser.parse_args()
    for label, seconds in bench_import(args.households):
        print(f"{label}: {seconds:.2f} s")
    result = bench_card(args.reads)
    if isinstance(result, str):
        print(f"card read: skipped ({result})")
    else:
        print(f"card read end to end (bridge start → exit, PIN path), {len(result)} reads: median "
              f"{statistics.median(result):.2f} s, max {max(result):.2f} s")


if __name__ == "__main__":
    main()
