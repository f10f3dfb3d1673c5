"""Load benchmark of the resident status page (not a unit test): 1,000 phones polling the JSON and 500 SSE
subscribers, against a real uvicorn (1 worker), measured next to the app's bare /healthz in the same run.

    .venv/bin/python bench/status_load.py                       # SQLite file (the embedded default)
    .venv/bin/python bench/status_load.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

With a PostgreSQL URL a throw-away database is created on that server and dropped afterwards. The load
generator (httpx + asyncio) runs on the same machine as the server, so both share its cores.

Phases:
  A  closed loop, 50 concurrent clients, 5 s each: GET /healthz, then GET /api/v1/status/{token}
  B  open loop: 1,000 phones, each polling its own status every 5 s (the page's fallback), for 10 s
  C  500 SSE subscribers connected, the 1,000 pollers still running, and a counter calling the next
     ticket every 2 s (each call changes the position of every waiting ticket): SSE delivery latency
     (call → event received on each of the 500 phones), poll latency and /healthz latency under that load
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.orm import Session  # noqa: E402

from app.cli import migrate  # noqa: E402
from app.db import create_postgres_database, drop_postgres_database, make_engine  # noqa: E402
from app.services import auth, cases, queue  # noqa: E402
from app.services.clock import local_today  # noqa: E402
from app.services.definitions import DefinitionRegistry  # noqa: E402
from app.settings import Settings  # noqa: E402

PASSWORD = "bench-password-0123456789"  # noqa: S105 - a throw-away account in a throw-away database


def pct(values: list[float], q: float) -> float:
    """Percentile (nearest rank) of latencies in ms."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def summary(name: str, latencies: list[float], seconds: float, errors: int) -> dict[str, Any]:
    """Throughput and latency of one measured series."""
    return {"series": name, "requests": len(latencies), "errors": errors, "rps": len(latencies) / seconds if seconds else 0,
            "p50_ms": pct(latencies, 0.50), "p99_ms": pct(latencies, 0.99), "max_ms": max(latencies) if latencies else 0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RawConnection:
    """A minimal keep-alive HTTP/1.1 client (GET only): far lighter than httpx, so the load generator,
    which shares the machine's two cores with the server, takes less of them."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def _headers(self) -> tuple[int, int | None]:
        assert self.reader is not None
        line = await self.reader.readline()
        if not line:
            raise ConnectionError("closed")
        status = int(line.split()[1])
        length: int | None = None
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                return status, length
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)

    async def get(self, path: str) -> int:
        """GET `path`, read the whole body; reconnects once when the server closed an idle connection."""
        for attempt in range(2):
            try:
                if self.writer is None:
                    await self._open()
                assert self.writer is not None and self.reader is not None
                self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: application/json\r\n\r\n".encode())
                status, length = await self._headers()
                await self.reader.readexactly(length or 0)
                return status
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                self.close()
                if attempt:
                    raise
        raise ConnectionError("unreachable")

    async def stream_lines(self, path: str) -> Any:
        """GET an event stream and yield its lines (the chunk-size lines of chunked encoding are harmless)."""
        await self._open()
        assert self.writer is not None and self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: text/event-stream\r\n\r\n".encode())
        status, _length = await self._headers()
        if status != 200:
            raise ConnectionError(f"status {status}")
        while True:
            line = await self.reader.readline()
            if not line:
                return
            yield line


def prepare(url: str, data_dir: Path, tickets: int) -> tuple[Settings, list[str]]:
    """Migrate, create a counter account and `tickets` waiting visits; their status tokens."""
    settings = Settings(env="test", database_url=url, data_dir=data_dir)
    migrate(settings)
    registry = DefinitionRegistry(settings.definitions_dir)
    registry.load()
    engine = make_engine(url)
    today = local_today(settings)
    tokens = []
    with Session(engine) as s:
        auth.create_user(s, username="bench", password=PASSWORD, role="counter")
        for i in range(tickets):
            case = cases.create_case(s, defs=registry.current, answers={"life_events": ["move_in", "childcare"]},
                                     user=None, office=settings.office_code, today=today, draft=True)
            queue.issue_ticket(s, case=case, priority=0)
            tokens.append(case.status_token)
            if i % 200 == 199:
                s.commit()
        s.commit()
    engine.dispose()
    return settings, tokens


async def closed_loop(host: str, port: int, name: str, paths: list[str], concurrency: int, seconds: float) -> dict[str, Any]:
    """`concurrency` clients, each sending its next request as soon as the previous one is answered."""
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        conn = RawConnection(host, port)
        while time.perf_counter() < end:
            start = time.perf_counter()
            try:
                ok = await conn.get(random.choice(paths)) == 200
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                ok = False
            if ok:
                latencies.append((time.perf_counter() - start) * 1000)
            else:
                errors += 1
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summary(name, latencies, time.perf_counter() - started, errors)


class Pollers:
    """N phones, each with its own connection, GETting its own status every `period` seconds."""

    def __init__(self, host: str, port: int, tokens: list[str], period: float) -> None:
        self.host, self.port, self.tokens, self.period = host, port, tokens, period
        self.latencies: list[float] = []
        self.errors = 0
        self._stop = asyncio.Event()

    async def _phone(self, token: str) -> None:
        conn = RawConnection(self.host, self.port)
        await asyncio.sleep(random.uniform(0, self.period))  # phones do not start in step
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                ok = await conn.get(f"/api/v1/status/{token}") == 200
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                ok = False
            if ok:
                self.latencies.append((time.perf_counter() - start) * 1000)
            else:
                self.errors += 1
            try:
                await asyncio.wait_for(self._stop.wait(), self.period)
            except TimeoutError:
                pass
        conn.close()

    def start(self) -> list[asyncio.Task[None]]:
        """Start every phone."""
        return [asyncio.create_task(self._phone(t)) for t in self.tokens]

    def reset(self) -> None:
        """Forget what was measured so far."""
        self.latencies, self.errors = [], 0

    def stop(self) -> None:
        """Stop every phone after its current request."""
        self._stop.set()


async def probe(host: str, port: int, path: str, rate: float, seconds: float) -> tuple[list[float], int]:
    """GET `path` at a fixed rate (open loop, fresh connections as needed): the bare endpoint under the same load."""
    latencies: list[float] = []
    errors = 0
    idle: list[RawConnection] = []

    async def one() -> None:
        nonlocal errors
        conn = idle.pop() if idle else RawConnection(host, port)
        start = time.perf_counter()
        try:
            ok = await conn.get(path) == 200
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            ok = False
        if ok:
            latencies.append((time.perf_counter() - start) * 1000)
            idle.append(conn)
        else:
            errors += 1
            conn.close()

    tasks = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        tasks.append(asyncio.create_task(one()))
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.close()
    return latencies, errors


async def subscriber(host: str, port: int, token: str, received: list[float], connected: list[int],
                     all_connected: asyncio.Event) -> None:
    """One phone with an open EventSource: records when each status event arrives."""
    conn = RawConnection(host, port)
    first = True
    try:
        async for line in conn.stream_lines(f"/q/{token}/events"):
            if line.startswith(b"data:"):
                if first:
                    first = False
                    connected[0] += 1
                    if connected[0] == connected[1]:
                        all_connected.set()
                    continue
                received.append(time.perf_counter())
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass
    finally:
        conn.close()


async def run(base: str, tokens: list[str], sse_count: int) -> dict[str, Any]:
    host, port = "127.0.0.1", int(base.rsplit(":", 1)[1])
    results: dict[str, Any] = {}
    status_paths = [f"/api/v1/status/{t}" for t in tokens]
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        login = await client.post("/api/v1/auth/token", data={"username": "bench", "password": PASSWORD})
        auth_headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        # Warm-up (imports, connection pools); the status caches start empty for phase A.
        await closed_loop(host, port, "warm-up", ["/healthz"], 20, 0.5)

        # A: capacity of the bare endpoint and of the status endpoint, same client, same concurrency.
        # Every status request here is the first for its token: the uncached path (database reads).
        results["A_healthz"] = await closed_loop(host, port, "/healthz, 50 clients back to back", ["/healthz"], 50, 4)
        results["A_status"] = await closed_loop(host, port, "/api/v1/status/{token}, 50 clients, first reads",
                                                status_paths, 50, 4)

        # B: 1,000 phones polling every 5 s (their statuses now come from the caches), /healthz beside.
        pollers = Pollers(host, port, tokens, 5.0)
        poll_tasks = pollers.start()
        await asyncio.sleep(5)  # every phone has started
        pollers.reset()
        b_start = time.perf_counter()
        health_b, health_b_err = await probe(host, port, "/healthz", 20, 8)
        results["B_status"] = summary(f"{len(tokens):,} phones polling their status every 5 s", pollers.latencies,
                                      time.perf_counter() - b_start, pollers.errors)
        results["B_healthz"] = summary("/healthz at 20/s beside B", health_b, 8, health_b_err)

        # C: 500 SSE subscribers, pollers still on, a call every 2 s (every waiting ticket moves up).
        received: list[list[float]] = [[] for _ in range(sse_count)]
        all_connected = asyncio.Event()
        connected = [0, sse_count]
        c_connect = time.perf_counter()
        subs = [asyncio.create_task(subscriber(host, port, tokens[-(i + 1)], received[i], connected, all_connected))
                for i in range(sse_count)]
        await asyncio.wait_for(all_connected.wait(), 60)
        results["C_connect_s"] = time.perf_counter() - c_connect
        await asyncio.sleep(1.0)
        for r in received:
            r.clear()
        pollers.reset()
        calls: list[float] = []
        c_start = time.perf_counter()
        probe_task = asyncio.create_task(probe(host, port, "/healthz", 20, 10))
        for _ in range(5):
            calls.append(time.perf_counter())
            res = await client.post("/api/v1/queue/call-next", json={"counter": "1"}, headers=auth_headers)
            assert res.status_code == 200 and res.json()["ticket"], res.text
            await asyncio.sleep(2.0)
        health_c, health_c_err = await probe_task
        c_seconds = time.perf_counter() - c_start
        delivery: list[float] = []
        missed = 0
        for times in received:
            for i, call_at in enumerate(calls):
                window_end = calls[i + 1] if i + 1 < len(calls) else call_at + 5
                got = [t for t in times if call_at <= t < window_end]
                if got:
                    delivery.append((got[0] - call_at) * 1000)
                else:
                    missed += 1
        results["C_sse"] = summary(f"SSE: call → event on each of {sse_count} phones (5 calls)", delivery, c_seconds, missed)
        results["C_status"] = summary(f"{len(tokens):,} phones polling during C", pollers.latencies, c_seconds,
                                      pollers.errors)
        results["C_healthz"] = summary("/healthz at 20/s beside C", health_c, 10, health_c_err)

        pollers.stop()
        for t in subs:
            t.cancel()
        await asyncio.gather(*poll_tasks, *subs, return_exceptions=True)
    return results


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's whole process group (SIGTERM, then SIGKILL); also at exit and on SIGTERM."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="", help="PostgreSQL server URL (a throw-away database is made); default SQLite")
    parser.add_argument("--phones", type=int, default=1000)
    parser.add_argument("--sse", type=int, default=500)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # unwind: the finally below stops the server
    tmp = Path(tempfile.mkdtemp(prefix="kakanai-bench-"))
    pg_url = None
    if args.database_url.startswith("postgresql"):
        url = pg_url = create_postgres_database(args.database_url, prefix="kakanai_bench")
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    proc = None
    try:
        t0 = time.perf_counter()
        _settings, tokens = prepare(url, tmp, args.phones)
        print(f"prepared {len(tokens)} waiting tickets in {time.perf_counter() - t0:.1f} s", flush=True)
        port = free_port()
        env = {**os.environ, "KAKANAI_ENV": "test", "KAKANAI_DATABASE_URL": url, "KAKANAI_DATA_DIR": str(tmp),
               "KAKANAI_LOG_LEVEL": "WARNING", "KAKANAI_LIVE_POLL_INTERVAL": "0.5"}
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),  # noqa: S603
                                 "--workers", "1", "--log-level", "warning", "--no-access-log",
                                 "--timeout-graceful-shutdown", "2", "--backlog", "4096"], cwd=ROOT, env=env,
                                start_new_session=True)
        atexit.register(_stop_group, proc)
        base_url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        results = asyncio.run(run(base_url, tokens, args.sse))
        backend = "PostgreSQL" if pg_url else "SQLite"
        print(f"\nbackend: {backend}; uvicorn 1 worker; live_poll_interval 0.5 s; {args.phones} phones, {args.sse} SSE\n")
        print("| series | requests | errors | req/s | p50 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|---|---|")
        for key, r in results.items():
            if isinstance(r, dict):
                print(f"| {key}: {r['series']} | {r['requests']} | {r['errors']} | {r['rps']:.0f} | {r['p50_ms']:.1f} "
                      f"| {r['p99_ms']:.1f} | {r['max_ms']:.1f} |")
        print(f"\n{args.sse} SSE streams connected in {results['C_connect_s']:.1f} s")
    finally:
        if proc is not None:
            _stop_group(proc)
        if pg_url is not None:
            drop_postgres_database(pg_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
