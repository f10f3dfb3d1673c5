"""Capacity benchmark (not a unit test): a March morning against a real uvicorn on PostgreSQL.

    .venv/bin/python bench/capacity.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/capacity.py                    # SQLite file, for comparison
    options: --workers N (default 1: what the Dockerfile and `kakanai serve` run), --seconds, --phones, --sse,
    --ratio-only

A throw-away database is created (and dropped) on the server; the uvicorn process group is stopped when
the run ends, also on failure or Ctrl-C. Everything is on loopback, every loop is bounded.

Phase R (ratio): 50 clients back to back for 4 s each on GET /healthz, on GET /api/v1/status/{token}
(statuses already read once: the per-visit cache), and on the same with If-None-Match (304).
Phase M (mixed, `--seconds`, all together): 500 phones polling their status every 5 s with the ETag
they got (as the page's fallback does), 300 SSE subscribers with a counter calling the next ticket
every 3 s, 20 tablets autosaving their interview every 2 s, 60 kiosk tickets spread over the phase.
Prints p50/p99, errors per endpoint and the status/healthz throughput ratio of phase R.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from status_load import PASSWORD, RawConnection, free_port, pct  # noqa: E402

from app.cli import migrate  # noqa: E402
from app.db import create_postgres_database, drop_postgres_database, make_engine  # noqa: E402
from app.services import auth, cases, queue  # noqa: E402
from app.services.clock import local_today  # noqa: E402
from app.services.definitions import DefinitionRegistry  # noqa: E402
from app.settings import Settings  # noqa: E402

MODEL = ROOT / "bench" / "households" / "model_move_in_family.json"


class Conn(RawConnection):
    """RawConnection with any method, headers and a JSON body; returns (status, headers, body)."""

    async def call(self, method: str, path: str, headers: dict[str, str] | None = None,
                   body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        for attempt in range(2):
            try:
                if self.writer is None:
                    await self._open()
                assert self.writer is not None and self.reader is not None
                head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", "Accept: application/json"]
                head += [f"{k}: {v}" for k, v in (headers or {}).items()]
                if body is not None:
                    head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
                self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
                line = await self.reader.readline()
                if not line:
                    raise ConnectionError("closed")
                status = int(line.split()[1])
                got: dict[str, str] = {}
                while True:
                    line = await self.reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    got[name.strip().lower()] = value.strip()
                data = await self.reader.readexactly(int(got.get("content-length", "0")))
                return status, got, data
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                self.close()
                if attempt or method != "GET":
                    raise
        raise ConnectionError("unreachable")


class Series:
    """Latencies (ms) and errors of one endpoint."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.latencies: list[float] = []
        self.errors = 0
        self.codes: dict[int | str, int] = {}

    def add(self, started: float, status: int | str, ok: bool) -> None:
        self.latencies.append((time.perf_counter() - started) * 1000)
        self.codes[status] = self.codes.get(status, 0) + 1
        if not ok:
            self.errors += 1

    def row(self, seconds: float) -> str:
        codes = ", ".join(f"{k}×{v}" for k, v in sorted(self.codes.items(), key=lambda kv: str(kv[0])))
        return (f"| {self.name} | {len(self.latencies)} | {len(self.latencies) / seconds:.0f} | "
                f"{pct(self.latencies, 0.5):.1f} | {pct(self.latencies, 0.99):.1f} | {self.errors} | {codes} |")


def prepare(url: str, data_dir: Path, phones: int, tablets: int) -> tuple[list[str], list[str]]:
    """Migrate; a counter account, `phones` waiting tickets and `tablets` interviews (the model household)."""
    settings = Settings(env="test", database_url=url, data_dir=data_dir)
    migrate(settings)
    registry = DefinitionRegistry(settings.definitions_dir)
    registry.load()
    engine = make_engine(url)
    today = local_today(settings)
    tokens, interviews = [], []
    model = json.loads(MODEL.read_text(encoding="utf-8"))
    with Session(engine) as s:
        auth.create_user(s, username="bench", password=PASSWORD, role="counter")
        for i in range(phones):
            case = cases.create_case(s, defs=registry.current, answers={"life_events": ["move_in", "childcare"]},
                                     user=None, office=settings.office_code, today=today, draft=True)
            queue.issue_ticket(s, case=case, priority=0)
            tokens.append(case.status_token)
            if i % 200 == 199:
                s.commit()
        for _ in range(tablets):
            case = cases.create_case(s, defs=registry.current, answers=model, user=None, office=settings.office_code,
                                     today=today, draft=True)
            interviews.append(case.id)
        s.commit()
    engine.dispose()
    return tokens, interviews


async def closed_loop(port: int, paths: list[str], seconds: float, series: Series,
                      headers: dict[str, str] | None = None, tags: dict[str, str] | None = None) -> float:
    """50 clients, each sending its next request as soon as the previous one is answered."""
    end = time.perf_counter() + seconds
    counter = [0]

    async def client() -> None:
        conn = Conn("127.0.0.1", port)
        try:
            while time.perf_counter() < end:
                path = paths[counter[0] % len(paths)]
                counter[0] += 1
                extra = dict(headers or {})
                if tags is not None and path in tags:
                    extra["If-None-Match"] = tags[path]
                began = time.perf_counter()
                try:
                    status, got, _ = await conn.call("GET", path, extra)
                    if tags is not None and "etag" in got and path not in tags:
                        tags[path] = got["etag"]
                    series.add(began, status, status in (200, 304))
                except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
                    series.add(began, type(exc).__name__, False)
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(50)))
    return time.perf_counter() - started


async def read_each_once(port: int, paths: list[str]) -> None:
    """GET every path once, 50 at a time."""
    todo = list(paths)

    async def client() -> None:
        conn = Conn("127.0.0.1", port)
        try:
            while todo:
                await conn.call("GET", todo.pop())
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(50)))


async def mixed(port: int, auth_headers: dict[str, str], tokens: list[str], interviews: list[str], seconds: float,
                sse_count: int, ticket_count: int) -> tuple[dict[str, Series], dict[str, Any]]:
    s = {k: Series(v) for k, v in {
        "status": f"GET /api/v1/status/{{token}}: {len(tokens)} phones every 5 s (If-None-Match)",
        "ticket": f"POST /api/v1/queue/tickets: {ticket_count} kiosk tickets",
        "autosave": f"PUT /api/v1/cases/{{id}}/answers: {len(interviews)} tablets every 2 s",
        "call": "POST /api/v1/queue/call-next every 3 s",
        "sse": f"SSE: call → event on each of {sse_count} phones (errors: none before the next call)",
        "healthz": "GET /healthz at 10/s beside it all",
    }.items()}
    end = time.perf_counter() + seconds
    loop = asyncio.get_running_loop()
    info: dict[str, Any] = {}

    async def phone(token: str, offset: float) -> None:
        conn, tag = Conn("127.0.0.1", port), None
        await asyncio.sleep(offset)
        try:
            while time.perf_counter() < end:
                began = time.perf_counter()
                try:
                    status, got, _ = await conn.call("GET", f"/api/v1/status/{token}",
                                                     {"If-None-Match": tag} if tag else None)
                    tag = got.get("etag", tag)
                    s["status"].add(began, status, status in (200, 304))
                except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
                    s["status"].add(began, type(exc).__name__, False)
                await asyncio.sleep(max(0.0, 5.0 - (time.perf_counter() - began)))
        finally:
            conn.close()

    async def tablet(case_id: str, offset: float) -> None:
        conn = Conn("127.0.0.1", port)
        await asyncio.sleep(offset)
        try:
            _, _, body = await conn.call("GET", f"/api/v1/cases/{case_id}", auth_headers)
            case = json.loads(body)
            version, answers = case["version"], case["answers"]
            while time.perf_counter() < end:
                began = time.perf_counter()
                payload = json.dumps({"version": version, "answers": answers}, ensure_ascii=False).encode()
                try:
                    status, _, body = await conn.call("PUT", f"/api/v1/cases/{case_id}/answers?draft=true",
                                                      auth_headers, payload)
                    if status == 200:
                        version = json.loads(body)["version"]
                    s["autosave"].add(began, status, status == 200)
                except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
                    s["autosave"].add(began, type(exc).__name__, False)
                    conn.close()
                await asyncio.sleep(max(0.0, 2.0 - (time.perf_counter() - began)))
        finally:
            conn.close()

    async def kiosk() -> None:
        gap = seconds / max(1, ticket_count)
        body = json.dumps({"life_events": ["move_in"]}).encode()

        async def one() -> None:
            conn = Conn("127.0.0.1", port)
            began = time.perf_counter()
            try:
                status, _, _ = await conn.call("POST", "/api/v1/queue/tickets", auth_headers, body)
                s["ticket"].add(began, status, status == 201)
            except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
                s["ticket"].add(began, type(exc).__name__, False)
            finally:
                conn.close()

        jobs = []
        for _ in range(ticket_count):
            jobs.append(asyncio.create_task(one()))
            await asyncio.sleep(gap)
        await asyncio.gather(*jobs)

    received: list[list[float]] = [[] for _ in range(sse_count)]
    connected = [0]

    async def subscriber(i: int) -> None:
        conn = Conn("127.0.0.1", port)
        first = True
        try:
            async for line in conn.stream_lines(f"/q/{tokens[-(i + 1)]}/events"):
                if line.startswith(b"data:"):
                    if first:
                        first = False
                        connected[0] += 1
                    else:
                        received[i].append(time.perf_counter())
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            conn.close()

    calls: list[float] = []

    async def counter() -> None:
        conn = Conn("127.0.0.1", port)
        body = json.dumps({"counter": "1"}).encode()
        try:
            await asyncio.sleep(2.0)
            while time.perf_counter() < end - 3:
                began = time.perf_counter()
                try:
                    status, _, _ = await conn.call("POST", "/api/v1/queue/call-next", auth_headers, body)
                    s["call"].add(began, status, status == 200)
                    calls.append(began)
                except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
                    s["call"].add(began, type(exc).__name__, False)
                await asyncio.sleep(max(0.0, 3.0 - (time.perf_counter() - began)))
        finally:
            conn.close()

    async def health() -> None:
        conn = Conn("127.0.0.1", port)
        try:
            while time.perf_counter() < end:
                began = time.perf_counter()
                try:
                    status, _, _ = await conn.call("GET", "/healthz")
                    s["healthz"].add(began, status, status == 200)
                except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
                    s["healthz"].add(began, type(exc).__name__, False)
                await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - began)))
        finally:
            conn.close()

    subs = [asyncio.create_task(subscriber(i)) for i in range(sse_count)]
    connect_deadline = loop.time() + 60
    while connected[0] < sse_count and loop.time() < connect_deadline:
        await asyncio.sleep(0.1)
    info["sse_connected"] = connected[0]
    for r in received:
        r.clear()
    end = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(phone(t, 5.0 * i / len(tokens)) for i, t in enumerate(tokens)),
                         *(tablet(c, 2.0 * i / len(interviews)) for i, c in enumerate(interviews)),
                         kiosk(), counter(), health())
    info["seconds"] = time.perf_counter() - started
    await asyncio.sleep(2.0)  # the last call's deliveries
    for t in subs:
        t.cancel()
    await asyncio.gather(*subs, return_exceptions=True)
    for times in received:
        for i, call_at in enumerate(calls):
            window_end = calls[i + 1] if i + 1 < len(calls) else call_at + 3
            got = [t for t in times if call_at <= t < window_end]
            if got:
                s["sse"].latencies.append((got[0] - call_at) * 1000)
                s["sse"].codes["event"] = s["sse"].codes.get("event", 0) + 1
            else:
                s["sse"].errors += 1
                s["sse"].codes["late"] = s["sse"].codes.get("late", 0) + 1
    return s, info


async def run(base: str, port: int, tokens: list[str], interviews: list[str], args: argparse.Namespace) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        login = await client.post("/api/v1/auth/token", data={"username": "bench", "password": PASSWORD})
        auth_headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    paths = [f"/api/v1/status/{t}" for t in tokens]
    warm = Series("warm-up")
    await closed_loop(port, ["/healthz"], 1.0, warm)
    await read_each_once(port, paths)  # every status read once: the per-visit caches are filled
    r_health, r_status, r_304 = (Series("GET /healthz, 50 clients back to back"),
                                 Series("GET /api/v1/status/{token} (cached), 50 clients back to back"),
                                 Series("GET /api/v1/status/{token} with If-None-Match (304), 50 clients"))
    t_h = await closed_loop(port, ["/healthz"], 4.0, r_health)
    t_s = await closed_loop(port, paths, 4.0, r_status)
    tags: dict[str, str] = {}
    await closed_loop(port, paths, 2.0, Series("tags"), tags=tags)
    t_304 = await closed_loop(port, paths, 4.0, r_304, tags=tags)
    ratio = (len(r_status.latencies) / t_s) / (len(r_health.latencies) / t_h)
    ratio_304 = (len(r_304.latencies) / t_304) / (len(r_health.latencies) / t_h)

    series, info = ({}, {}) if args.ratio_only else await mixed(port, auth_headers, tokens, interviews, args.seconds,
                                                                  args.sse, args.tickets)
    print(f"\n### Phase R: status/healthz throughput ratio {ratio:.2f} (with If-None-Match: {ratio_304:.2f})\n")
    print("| series | requests | req/s | p50 ms | p99 ms | errors | answers |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for s_, t in ((r_health, t_h), (r_status, t_s), (r_304, t_304)):
        print(s_.row(t))
    if args.ratio_only:
        return
    print(f"\n### Phase M: everything together for {info['seconds']:.0f} s "
          f"({info['sse_connected']} of {args.sse} SSE streams connected)\n")
    print("| series | requests | req/s | p50 ms | p99 ms | errors | answers |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for s_ in series.values():
        print(s_.row(info["seconds"]))


_children: list[subprocess.Popen[bytes]] = []


def _stop_servers() -> None:
    """Stop every server process group this script started (also at exit and on a signal)."""
    for proc in _children:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=8)
                break
            except subprocess.TimeoutExpired:
                continue
    _children.clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="", help="PostgreSQL server URL (a throw-away database is made)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (default 1, as deployed)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--phones", type=int, default=500)
    parser.add_argument("--sse", type=int, default=300)
    parser.add_argument("--tablets", type=int, default=20)
    parser.add_argument("--tickets", type=int, default=60)
    parser.add_argument("--ratio-only", action="store_true", help="phase R only (e.g. to compare with older code)")
    args = parser.parse_args()
    atexit.register(_stop_servers)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    tmp = Path(tempfile.mkdtemp(prefix="kakanai-capacity-"))
    pg_url = None
    if args.database_url.startswith("postgresql"):
        url = pg_url = create_postgres_database(args.database_url, prefix="kakanai_bench")
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    try:
        t0 = time.perf_counter()
        tokens, interviews = prepare(url, tmp, args.phones, args.tablets)
        print(f"prepared {len(tokens)} waiting tickets and {len(interviews)} interviews in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        port = free_port()
        env = {**os.environ, "KAKANAI_ENV": "test", "KAKANAI_DATABASE_URL": url, "KAKANAI_DATA_DIR": str(tmp),
               "KAKANAI_LOG_LEVEL": "WARNING"}
        cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(args.workers), "--log-level", "warning", "--no-access-log",
               "--timeout-graceful-shutdown", "2", "--backlog", "4096"]
        _children.append(subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True))  # noqa: S603
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("the server did not become ready")
        load = os.getloadavg()[0]
        backend = "PostgreSQL" if pg_url else "SQLite"
        print(f"backend {backend}; uvicorn --workers {args.workers}; load average before {load:.1f}", flush=True)
        asyncio.run(run(base, port, tokens, interviews, args))
        print(f"\nload average after {os.getloadavg()[0]:.1f}")
    finally:
        _stop_servers()
        if pg_url is not None:
            drop_postgres_database(pg_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
