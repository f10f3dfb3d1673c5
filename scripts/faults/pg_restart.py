"""Fault (c): PostgreSQL restarted under load.

A PRIVATE PostgreSQL instance (own data directory, port and socket directory; the shared server on
5432 is never touched) serves a real uvicorn. Clients read cases and save answers in a loop; the
database is stopped (immediate: like a crash), left down, and started again. Pass when: while it is
down every request fails fast and cleanly (503 JSON with a Japanese message, no 500, no hang), and
after it is back the same server process answers 2xx again by itself (pool_pre_ping drops the dead
connections), with every acknowledged save present.

    .venv/bin/python scripts/faults/pg_restart.py [--clients 3] [--down-seconds 2]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faultlib import (
    Server,
    create_cases,
    marked_answers,
    prepare_database,
    private_pg_unavailable,
    private_postgres,
)

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
HANG_SECONDS = 10.0


def run(workdir: Path, *, clients: int = 3, warm_seconds: float = 1.0, down_seconds: float = 2.0,
        recover_seconds: float = 15.0) -> dict[str, Any]:
    """Run the scenario once; returns a report with `ok` and the problems found."""
    reason = private_pg_unavailable()
    if reason:
        return {"scenario": "PostgreSQL restart under load", "skipped": reason, "ok": True, "problems": []}
    problems: list[str] = []
    log: list[tuple[float, str, int, float]] = []  # (at, phase, status, seconds)
    lock = threading.Lock()
    phase = ["warm"]
    with private_postgres() as pg:
        url = pg.create_database("kakanai")
        tokens = prepare_database(url, workdir)
        headers = {"Authorization": f"Bearer {tokens['counter']}"}
        server = Server(url, workdir)
        server.start()
        try:
            cases = create_cases(server.base, tokens["counter"], clients)
            acked = {c["id"]: 1 for c in cases}
            stop = threading.Event()

            def worker(case: dict[str, Any]) -> None:
                cid, version = case["id"], case["version"]
                with httpx.Client(base_url=server.base, headers=headers, timeout=HANG_SECONDS + 5) as client:
                    n = 0
                    while not stop.is_set():
                        n += 1
                        started = time.monotonic()
                        try:
                            if n % 2:
                                res = client.get(f"/api/v1/cases/{cid}")
                            else:
                                res = client.put(f"/api/v1/cases/{cid}/answers",
                                                 json={"version": version, "answers": marked_answers(f"v{version + 1}")})
                        except httpx.HTTPError as exc:
                            with lock:
                                problems.append(f"{phase[0]}: transport error {type(exc).__name__}")
                            time.sleep(0.05)
                            continue
                        took = time.monotonic() - started
                        with lock:
                            log.append((started, phase[0], res.status_code, took))
                        if res.status_code == 200 and n % 2 == 0:
                            version = acked[cid] = res.json()["version"]
                        elif res.status_code == 409:
                            # A save whose commit reply was lost with the database: read the version again.
                            version = res.json().get("current_version", version)
                        elif res.status_code >= 500:
                            body = res.json() if res.headers.get("content-type", "").startswith("application/json") else {}
                            if res.status_code != 503 or body.get("error") != "unavailable" \
                                    or not JAPANESE.search(body.get("message", "")):
                                with lock:
                                    problems.append(f"{phase[0]}: unclean {res.status_code}: {res.text[:200]}")
                            time.sleep(0.05)

            threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in cases]
            for t in threads:
                t.start()
            time.sleep(warm_seconds)
            phase[0] = "down"
            pg.stop("immediate")
            time.sleep(down_seconds)
            phase[0] = "restarting"
            pg.start()
            back_at = time.monotonic()
            phase[0] = "recovered"
            recovered_after: float | None = None
            deadline = back_at + recover_seconds
            while time.monotonic() < deadline:
                with lock:
                    recent = [e for e in log if e[0] >= back_at]
                ok_in_a_row = 0
                for entry in recent:
                    ok_in_a_row = ok_in_a_row + 1 if entry[2] == 200 else 0
                if ok_in_a_row >= 3 * clients:
                    recovered_after = next(e[0] for e in recent if e[2] == 200) - back_at
                    break
                time.sleep(0.1)
            time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join(timeout=HANG_SECONDS + 10)

            # Every acknowledged save is there, seen by the same (never restarted) server process.
            with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
                for case in cases:
                    got = client.get(f"/api/v1/cases/{case['id']}")
                    if got.status_code != 200 or got.json()["version"] < acked[case["id"]]:
                        problems.append(f"{case['id']}: acknowledged v{acked[case['id']]}, now {got.status_code} "
                                        f"{got.json().get('version') if got.status_code == 200 else ''}")
        finally:
            server.stop()
    down = [e for e in log if e[1] == "down"]
    if recovered_after is None:
        problems.append(f"the service did not recover within {recover_seconds} s of the database coming back")
    if not down or all(e[2] == 200 for e in down):
        problems.append("no request hit the outage: the scenario did not exercise anything")
    slowest = max((e[3] for e in log), default=0.0)
    if slowest > HANG_SECONDS:
        problems.append(f"a request hung for {slowest:.1f} s")
    statuses: dict[str, dict[int, int]] = {}
    for _, ph, code, _ in log:
        statuses.setdefault(ph, {}).setdefault(code, 0)
        statuses[ph][code] += 1
    return {"scenario": "PostgreSQL restart under load (private instance)", "clients": clients,
            "down_seconds": down_seconds, "requests": len(log), "statuses_by_phase": statuses,
            "slowest_request_s": round(slowest, 2),
            "recovered_after_s": None if recovered_after is None else round(recovered_after, 2),
            "saves_acknowledged": sum(v - 1 for v in acked.values()), "problems": problems[:20], "ok": not problems}


def main() -> int:
    """Command line entry point: prints the report as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--down-seconds", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kakanai-faults-") as tmp:
        report = run(Path(tmp), clients=args.clients, down_seconds=args.down_seconds)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
