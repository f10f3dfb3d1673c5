"""Real uvicorn processes for tests: started on a free loopback port in their own process group,
always stopped (SIGTERM, then SIGKILL of the whole group), also when the test fails."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from app.settings import PROJECT_ROOT


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UvicornProcess:
    """One `uvicorn app.main:app` process (optionally with several workers)."""

    def __init__(self, url: str, data_dir: Path, *, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "KAKANAI_ENV": "test", "KAKANAI_DATABASE_URL": url,
                    "KAKANAI_DATA_DIR": str(data_dir), "KAKANAI_LOG_LEVEL": "WARNING",
                    "KAKANAI_LIVE_POLL_INTERVAL": "0.5", **(env or {})}
        cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(self.port),
               "--log-level", "warning", "--timeout-graceful-shutdown", "2"]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        self._stderr = open(data_dir / "uvicorn.stderr", "w+b")  # closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=full_env, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr, start_new_session=True)

    def stderr(self) -> str:
        """What the server wrote to stderr so far (tracebacks, warnings)."""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def wait_ready(self, deadline: float) -> None:
        """Block until /readyz answers 200 (or fail with the server's stderr)."""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.stderr()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.base} did not become ready: {self.stderr()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL it if it does not end in time."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                pass
        try:  # workers of a crashed master may be left: the group goes too
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=5)
        self._stderr.close()


@contextmanager
def uvicorn_processes(url: str, data_dirs: list[Path], *, workers: int = 1, env: dict[str, str] | None = None,
                      envs: list[dict[str, str]] | None = None) -> Iterator[list[UvicornProcess]]:
    """Start one server per data directory on the database `url` (`envs[i]` added to the i-th one's
    environment); all are stopped when the block ends, also when it fails."""
    procs: list[UvicornProcess] = []
    try:
        for i, data_dir in enumerate(data_dirs):
            extra = {**(env or {}), **(envs[i] if envs else {})}
            procs.append(UvicornProcess(url, data_dir, workers=workers, env=extra))
        deadline = time.monotonic() + 60
        for proc in procs:
            proc.wait_ready(deadline)
        yield procs
    finally:
        for proc in procs:
            proc.stop()


async def raw_request(port: int, method: str, path: str, *, headers: dict[str, str] | None = None,
                      json_body: Any = None) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a fresh loopback connection (`Connection: close`), read to the end.

    Far lighter than an httpx client: when hundreds of requests leave at once from the test process,
    which shares the machine's cores with the server, the client must not be what is slow.
    """
    body = json.dumps(json_body).encode() if json_body is not None else b""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", "Accept: application/json",
            *(f"{k}: {v}" for k, v in (headers or {}).items())]
    if json_body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    if not status_line.startswith(b"HTTP/1.1 "):
        raise ConnectionError(f"no HTTP answer: {status_line[:40]!r}")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]
