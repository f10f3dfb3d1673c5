"""A real PC/SC stack for the card bridge tests: pcscd + vsmartcard's vpcd + the fictional card emulator.

pcscd runs privately: in its own mount namespace with /run/pcscd bound to a temporary directory, so
its socket does not clash with a system pcscd or another test run; clients find it through
PCSCLITE_CSOCK_NAME. Where namespaces are not allowed, a pcscd is started on the system socket if none
is running (serialised by a lock file). Tests skip only when the Debian packages are missing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cardbridge.emulator import FictionalCard, Person, VpcdEmulator

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
SYSTEM_SOCKET = Path("/run/pcscd/pcscd.comm")


def missing_stack() -> str | None:
    """Why the PC/SC stack cannot run here, or None."""
    if shutil.which("pcscd") is None:
        return "Debian package pcscd is not installed (scripts/system-deps.sh installs it)"
    if not VPCD_DRIVER.exists():
        return "Debian package vsmartcard-vpcd is not installed (scripts/system-deps.sh installs it)"
    try:
        import smartcard  # noqa: F401
    except ImportError:
        return "pyscard is not installed (pip install -e '.[test]' needs swig and libpcsclite-dev)"
    return None


@dataclass
class PcscStack:
    """A running pcscd whose only reader is vpcd talking to the emulator."""

    socket_path: Path
    log_path: Path
    card: FictionalCard

    def env(self) -> dict[str, str]:
        """Environment for a process that should use this pcscd."""
        return {**os.environ, "PCSCLITE_CSOCK_NAME": str(self.socket_path)}


def _namespaces_work() -> bool:
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True,
                           check=False)
    return probe.returncode == 0


@contextmanager
def pcsc_stack(tmp: Path, person: Person, *, tamper: bool = False) -> Iterator[PcscStack]:
    """Start the emulator, then pcscd with a private reader.conf.d pointing vpcd at it; stop both after."""
    card = FictionalCard(person, tamper=tamper)
    emulator = VpcdEmulator(card)
    emulator.start()
    conf = tmp / "reader.conf.d"
    conf.mkdir()
    # vpcd in client mode connects to the emulator on loopback (nothing listens on other interfaces).
    (conf / "vpcd").write_text(
        'FRIENDLYNAME "Virtual PCD"\n'
        f"DEVICENAME   127.0.0.1:0x{emulator.port:04X}\n"
        f"LIBPATH      {VPCD_DRIVER}\n"
        f"CHANNELID    0x{emulator.port:04X}\n"
    )
    run_dir = tmp / "run"
    run_dir.mkdir()
    log_path = tmp / "pcscd.log"
    lock = None
    if _namespaces_work():
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'mkdir -p /run/pcscd && mount --bind "$0" /run/pcscd && exec pcscd -f -d -c "$1"',
                   str(run_dir), str(conf)]
        socket_path = run_dir / "pcscd.comm"
    else:
        lock = open("/tmp/kakanai-test-pcscd.lock", "w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        if SYSTEM_SOCKET.exists():
            lock.close()
            emulator.stop()
            pytest.skip("a system pcscd is running and mount namespaces are not allowed: cannot start a private one")
        command = ["pcscd", "-f", "-d", "-c", str(conf)]
        socket_path = SYSTEM_SOCKET
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while "daemon ready" not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pcscd did not start:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        yield PcscStack(socket_path=socket_path, log_path=log_path, card=card)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        emulator.stop()
        if lock is not None:
            lock.close()


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[object]:
    """Start a PC/SC stack with a given fictional person's card (skips if the packages are missing)."""
    reason = missing_stack()
    if reason:
        pytest.skip(reason)
    stacks: list[object] = []

    @contextmanager
    def start(person: Person | None = None, *, tamper: bool = False) -> Iterator[PcscStack]:
        sub = tmp_path / f"stack{len(stacks)}"
        sub.mkdir()
        with pcsc_stack(sub, person or Person(), tamper=tamper) as stack:
            stacks.append(stack)
            yield stack

    yield start
