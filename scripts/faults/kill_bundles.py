"""Fault (b): SIGKILL the server while clients are generating bundle PDFs.

What consistency means here: a bundle download is acknowledged when the client received the whole
PDF (Content-Length matched, it parses). Each generation writes one `bundle_printed` event and one
`pdf_download` audit entry in the same transaction, committed before the response is sent. After a
restart, for every case: events == audit entries (never one without the other), acknowledged <=
events <= acknowledged + in flight; every PDF a client accepted is complete; nothing else of the case
changed (version, answers); and the restarted service renders the same bytes again (deterministic).

    .venv/bin/python scripts/faults/kill_bundles.py [--database-url URL] [--clients 3] [--seconds 2.5]
"""

from __future__ import annotations

import hashlib
import io
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faultlib import Server, create_cases, prepare_database, scenario_main, sqlite_url


def _counts(url: str) -> tuple[dict[str, int], dict[str, int]]:
    from sqlalchemy import func, select

    from app.db import make_engine, make_sessionmaker
    from app.models import AuditEntry, CaseEvent

    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        events = dict(session.execute(select(CaseEvent.case_id, func.count()).where(CaseEvent.kind == "bundle_printed")
                                      .group_by(CaseEvent.case_id)).all())
        audits = dict(session.execute(select(AuditEntry.case_id, func.count())
                                      .where(AuditEntry.action == "pdf_download", AuditEntry.target == "bundle.pdf")
                                      .group_by(AuditEntry.case_id)).all())
    engine.dispose()
    return events, audits


def _complete(pdf: bytes) -> bool:
    if not pdf.startswith(b"%PDF") or b"%%EOF" not in pdf[-1024:]:
        return False
    try:
        return len(PdfReader(io.BytesIO(pdf)).pages) > 1
    except Exception:
        return False


def run(workdir: Path, *, database_url: str | None = None, clients: int = 3, seconds: float = 2.5) -> dict[str, Any]:
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
    acked = {c["id"]: 0 for c in cases}
    inflight = {c["id"]: 0 for c in cases}
    digests: dict[str, set[str]] = {c["id"]: set() for c in cases}
    problems: list[str] = []
    stop = threading.Event()

    def worker(case: dict[str, Any]) -> None:
        cid = case["id"]
        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
            while not stop.is_set():
                inflight[cid] = 1
                try:
                    res = client.get(f"/api/v1/cases/{cid}/bundle.pdf")
                    body = res.content  # a body cut by the kill raises here (fewer bytes than Content-Length)
                except httpx.HTTPError:
                    return
                if res.status_code != 200 or not _complete(body):
                    problems.append(f"{cid}: accepted an incomplete or failed bundle ({res.status_code})")
                    return
                acked[cid] += 1
                inflight[cid] = 0
                digests[cid].add(hashlib.sha256(body).hexdigest())

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in cases]
    for t in threads:
        t.start()
    # At least `seconds`, and on a slow machine until every client has had a bundle acknowledged (at most
    # 60 s): the kill must land while work is going on, not before any was done.
    deadline = time.monotonic() + 60
    time.sleep(seconds)
    while sum(acked.values()) < len(cases) and time.monotonic() < deadline and not problems:
        time.sleep(0.05)
    time.sleep(0.2)  # let the next requests get under way
    server.kill()
    stop.set()
    for t in threads:
        t.join(timeout=30)

    restarted = Server(url, workdir)
    restarted.start()
    try:
        events, audits = _counts(url)
        with httpx.Client(base_url=restarted.base, headers=headers, timeout=30) as client:
            for case in cases:
                cid = case["id"]
                n_events, n_audits = events.get(cid, 0), audits.get(cid, 0)
                if n_events != n_audits:
                    problems.append(f"{cid}: {n_events} bundle_printed events but {n_audits} audit entries")
                if n_events < acked[cid]:
                    problems.append(f"{cid}: LOST: {acked[cid]} bundles delivered, {n_events} recorded")
                if n_events > acked[cid] + inflight[cid]:
                    problems.append(f"{cid}: {n_events} recorded for {acked[cid]} delivered + {inflight[cid]} in flight")
                now = client.get(f"/api/v1/cases/{cid}").json()
                if now["version"] != case["version"]:
                    problems.append(f"{cid}: version changed from {case['version']} to {now['version']}")
                again = client.get(f"/api/v1/cases/{cid}/bundle.pdf")
                if again.status_code != 200 or not _complete(again.content):
                    problems.append(f"{cid}: bundle after restart {again.status_code}")
                elif len(digests[cid]) > 1 or (digests[cid] and hashlib.sha256(again.content).hexdigest() not in digests[cid]):
                    problems.append(f"{cid}: bundle bytes differ between renders")
    finally:
        restarted.stop()
    delivered = sum(acked.values())
    if delivered < len(cases):
        problems.append(f"only {delivered} bundles were delivered before the kill: the scenario did not exercise anything")
    return {"scenario": "kill -9 while generating bundles", "database": url.split(":")[0], "clients": len(cases),
            "bundles_delivered": delivered, "in_flight_at_kill": sum(inflight.values()),
            "recorded": sum(events.values()), "problems": problems, "ok": not problems}


def main() -> int:
    """Command line entry point: prints the report as JSON."""
    return scenario_main(__doc__ or "", run, clients=3, seconds=2.5)


if __name__ == "__main__":
    raise SystemExit(main())
