"""Load held by one uvicorn worker: a counter-tablet mix of GET case (80 %) and PUT answers (20 %).

For each number of concurrent clients the script runs a fixed time and reports requests per second
and latency percentiles; the answer is the highest throughput whose p99 stays under 200 ms.
Bounded in time (steps x seconds) and only talks to 127.0.0.1.

    .venv/bin/python bench/reliability_load.py [--database-url URL] [--seconds 5] [--clients 1,2,4,8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "faults"))
from faultlib import Server, create_cases, marked_answers, prepare_database, sqlite_url  # noqa: E402

P99_LIMIT_MS = 200.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def step(base: str, token: str, cases: list[dict[str, Any]], clients: int, seconds: float) -> dict[str, Any]:
    """Run `clients` concurrent clients for `seconds`; latencies in milliseconds."""
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client_loop(case: dict[str, Any]) -> None:
        cid = case["id"]
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            version = client.get(f"/api/v1/cases/{cid}").json()["version"]
            n = 0
            while time.monotonic() < deadline:
                n += 1
                started = time.perf_counter()
                if n % 5 == 0:
                    res = client.put(f"/api/v1/cases/{cid}/answers",
                                     json={"version": version, "answers": marked_answers(f"v{version + 1}")})
                    if res.status_code == 200:
                        version = res.json()["version"]
                else:
                    res = client.get(f"/api/v1/cases/{cid}")
                took = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(took)
                    if res.status_code != 200:
                        errors.append(res.status_code)

    threads = [threading.Thread(target=client_loop, args=(cases[i],)) for i in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    return {"clients": clients, "requests": len(latencies), "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(_pct(latencies, 0.50), 1), "p95_ms": round(_pct(latencies, 0.95), 1),
            "p99_ms": round(_pct(latencies, 0.99), 1), "mean_ms": round(statistics.fmean(latencies), 1) if latencies else 0,
            "errors": len(errors)}


def run(workdir: Path, *, database_url: str | None, seconds: float, client_steps: list[int]) -> dict[str, Any]:
    """Start a server, run every step, stop it."""
    url = database_url or sqlite_url(workdir)
    tokens = prepare_database(url, workdir)
    server = Server(url, workdir)
    server.start()
    try:
        cases = create_cases(server.base, tokens["counter"], max(client_steps))
        step(server.base, tokens["counter"], cases, 1, 1.0)  # warm-up: fonts, postal data, caches
        steps = [step(server.base, tokens["counter"], cases, n, seconds) for n in client_steps]
    finally:
        server.stop()
    held = [s for s in steps if s["p99_ms"] < P99_LIMIT_MS and s["errors"] == 0]
    best = max(held, key=lambda s: s["rps"]) if held else None
    return {"database": url.split(":")[0], "mix": "80% GET /api/v1/cases/{id}, 20% PUT /api/v1/cases/{id}/answers",
            "workers": 1, "steps": steps, "held_rps_at_p99_under_200ms": best["rps"] if best else None,
            "at_clients": best["clients"] if best else None}


def main() -> int:
    """Print the report as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", default="1,2,4,8")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kakanai-load-") as tmp:
        report = run(Path(tmp), database_url=args.database_url, seconds=args.seconds,
                     client_steps=[int(c) for c in args.clients.split(",")])
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
