"""`gpudask rehearse --serve` stops on SIGINT/SIGTERM whatever clients did, and nothing outlives it (issue 10, point 9).

The supervisor runs as a real `python -m gpudask rehearse dev --serve`; an outside client runs
a task on it first. Its scheduler and worker (and the nanny's worker process) must all be gone,
and the scheduler's port closed, within seconds of the signal, or of a SIGKILL of the supervisor.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest
from distributed import Client

from gpudask.record.recorder import PROJECT_DIR

pytestmark = pytest.mark.process
STOP_WITHIN_S = 8


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _as_background_job() -> None:
    # What `gpudask rehearse --serve &` from a script (a non-interactive shell) gets: SIGINT
    # ignored at start, so Python installs no KeyboardInterrupt handler of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _serving() -> Iterator[tuple[subprocess.Popen[str], str, list[psutil.Process]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpudask", "rehearse", "dev", "--serve"],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_as_background_job,
    )
    try:
        address = ""
        deadline = time.monotonic() + 240
        assert proc.stdout is not None
        for line in proc.stdout:
            m = re.match(r"scheduler: (tcp://\S+)", line)
            address = m.group(1) if m else address
            if "serving" in line:
                break
            assert time.monotonic() < deadline, "rehearsal did not start"
        assert address, "no scheduler address printed"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children
        yield proc, address, children
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for child in psutil.Process().children(recursive=True):
            if child.pid != proc.pid:
                child.kill()


def _gone(children: list[psutil.Process], port: int, within_s: float) -> list[int]:
    _, alive = psutil.wait_procs(children, timeout=within_s)
    deadline = time.monotonic() + within_s
    while _port_open(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _port_open(port), f"port {port} still open"
    return [p.pid for p in alive]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_everything_after_a_client_used_it(signum: signal.Signals) -> None:
    with _serving() as (proc, address, children):
        with Client(address, timeout=30) as client:
            assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
        started = time.monotonic()
        proc.send_signal(signum)
        proc.wait(timeout=30)
        assert time.monotonic() - started < STOP_WITHIN_S
        assert _gone(children, int(address.rsplit(":", 1)[1]), 10) == []


def test_children_die_with_a_killed_supervisor() -> None:
    with _serving() as (proc, address, children):
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert _gone(children, int(address.rsplit(":", 1)[1]), 10) == []
