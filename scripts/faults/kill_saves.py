"""Fault (a): SIGKILL the server while clients are saving answers in a loop.

Pass when, after a restart on the same database: every save acknowledged (2xx) before the kill is
there; each case is whole (its answers carry the marker of its version, and its `answers_saved`
events are exactly versions 2..N, one per save); a save that was in flight at the kill is either
fully there or fully absent; and the restarted service takes new saves.

    .venv/bin/python scripts/faults/kill_saves.py [--database-url URL] [--clients 4] [--seconds 1.5]
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faultlib import Server, create_cases, marked_answers, prepare_database, scenario_main, sqlite_url

ORIGINAL_MARKER = "塚口ベーカリー"


def _events(url: str) -> dict[str, list[int]]:
    from sqlalchemy import select

    from app.db import make_engine, make_sessionmaker
    from app.models import CaseEvent

    engine = make_engine(url)
    out: dict[str, list[int]] = {}
    with make_sessionmaker(engine)() as session:
        for ev in session.scalars(select(CaseEvent).where(CaseEvent.kind == "answers_saved").order_by(CaseEvent.id)):
            out.setdefault(ev.case_id, []).append(int(ev.data.get("version", 0)))
    engine.dispose()
    return out


def run(workdir: Path, *, database_url: str | None = None, clients: int = 4, seconds: float = 1.5) -> dict[str, Any]:
    """Run the scenario once; returns a report with `ok` and the problems found."""
    url = database_url or sqlite_url(workdir)
    tokens = prepare_database(url, workdir)
    headers = {"Authorization": f"Bearer {tokens['counter']}"}
    server = Server(url, workdir)
    server.start()
    try:
        cases = create_cases(server.base, tokens["counter"], clients)
    except BaseException:
        server.stop()  # (anything later that fails is stopped at exit: faultlib.stop_everything)
        raise
    acked = {c["id"]: 1 for c in cases}
    inflight: dict[str, int | None] = {c["id"]: None for c in cases}
    other_status: list[int] = []
    stop = threading.Event()

    def worker(case: dict[str, Any]) -> None:
        cid, version = case["id"], case["version"]
        with httpx.Client(base_url=server.base, headers=headers, timeout=15) as client:
            while not stop.is_set():
                target = version + 1
                inflight[cid] = target
                try:
                    res = client.put(f"/api/v1/cases/{cid}/answers",
                                     json={"version": version, "answers": marked_answers(f"v{target}")})
                except httpx.HTTPError:
                    return  # the server is gone: this save's outcome is unknown until we look
                if res.status_code != 200 or res.json().get("version") != target:
                    other_status.append(res.status_code)
                    inflight[cid] = None
                    return
                version = acked[cid] = target
                inflight[cid] = None

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in cases]
    for t in threads:
        t.start()
    # At least `seconds`, and on a slow machine until enough saves were acknowledged (at most 60 s).
    deadline = time.monotonic() + 60
    time.sleep(seconds)
    while sum(v - 1 for v in acked.values()) < 2 * len(cases) and time.monotonic() < deadline and not other_status:
        time.sleep(0.05)
    time.sleep(0.2)
    server.kill()
    stop.set()
    for t in threads:
        t.join(timeout=20)

    restarted = Server(url, workdir)
    restarted.start()
    problems: list[str] = []
    completed_inflight = 0
    try:
        events = _events(url)
        with httpx.Client(base_url=restarted.base, headers=headers, timeout=30) as client:
            for case in cases:
                cid = case["id"]
                got = client.get(f"/api/v1/cases/{cid}")
                if got.status_code != 200:
                    problems.append(f"{cid}: GET after restart {got.status_code}")
                    continue
                body = got.json()
                version = body["version"]
                marker = body["answers"]["household"]["members"][1]["employer"]
                if version < acked[cid]:
                    problems.append(f"{cid}: LOST acknowledged save: stored v{version} < acknowledged v{acked[cid]}")
                elif version > acked[cid]:
                    if inflight[cid] == version:
                        completed_inflight += 1
                    else:
                        problems.append(f"{cid}: v{version} stored, but only v{acked[cid]} (+ in flight {inflight[cid]})")
                expected_marker = f"v{version}" if version > 1 else ORIGINAL_MARKER
                if marker != expected_marker:
                    problems.append(f"{cid}: HALF-WRITTEN: version {version} with answers of {marker!r}")
                if events.get(cid, []) != list(range(2, version + 1)):
                    problems.append(f"{cid}: events {events.get(cid)} do not match version {version}")
                res = client.put(f"/api/v1/cases/{cid}/answers",
                                 json={"version": version, "answers": marked_answers(f"v{version + 1}")})
                if res.status_code != 200:
                    problems.append(f"{cid}: save after restart {res.status_code}")
    finally:
        restarted.stop()
    saves = sum(v - 1 for v in acked.values())
    if other_status:
        problems.append(f"unexpected statuses before the kill: {sorted(set(other_status))}")
    if saves < len(cases):
        problems.append(f"only {saves} saves were acknowledged before the kill: the scenario did not exercise anything")
    return {"scenario": "kill -9 while saving answers", "database": url.split(":")[0], "clients": len(cases),
            "saves_acknowledged": saves, "in_flight_at_kill": sum(1 for v in inflight.values() if v),
            "in_flight_completed": completed_inflight, "lost": sum("LOST" in p for p in problems),
            "half_written": sum("HALF" in p for p in problems), "problems": problems, "ok": not problems}


def main() -> int:
    """Command line entry point: prints the report as JSON."""
    return scenario_main(__doc__ or "", run, clients=4, seconds=1.5)


if __name__ == "__main__":
    raise SystemExit(main())
