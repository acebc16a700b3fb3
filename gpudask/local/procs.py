"""Child processes that never outlive us: own process group, killed when their parent dies.

Every process of the local control plane, the rehearsal's containers (`rehearse.spawn`) and
the runtime helpers' Dask processes goes through `spawn`: `PR_SET_PDEATHSIG` makes the kernel SIGKILL the child when the thread that
started it exits (so a `kill -9` of the parent leaves nothing behind), and a new session
keeps a terminal's Ctrl-C from reaching the children before we stop them in order.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: process groups are still stopped, a hard kill may leak
        return None


# Looked up here, in the parent: between fork and exec the child must not load a library (it
# could wait forever on a loader lock that another thread held at the fork).
_PRCTL = _load_prctl()


def _die_with_parent() -> None:  # runs in the child between fork and exec: only prctl
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(
    argv: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` with stdout+stderr appended to `log`, dying with this thread."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def stop_all(processes: Iterable[subprocess.Popen[bytes]], grace: float = 5.0) -> None:
    """SIGTERM every process group, SIGKILL what is left after `grace` seconds (one deadline for
    all), reap every process."""
    processes = list(processes)
    for proc in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    for proc in processes:
        # The whole group: a child (a nanny's worker) can outlive its parent by a moment.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds; wait for the process."""
    stop_all([proc], grace)


# Ports handed out are drawn from below the kernel's ephemeral range. A port that bind(0)
# reported free is free only until someone binds it, and the kernel hands the same range out
# again to every bind(0) and outgoing connection: a Dask worker's own comm listener once took
# the port the kubelet stand-in had mapped for its dashboard, seconds before the dashboard
# bound it (GOTCHAS.md, "Upstream programs and the local control plane", 2026-12-03).
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
EPHEMERAL_DEFAULT = (32768, 60999)  # Linux's default net.ipv4.ip_local_port_range
PORT_FLOOR = 10000  # below this live the well-known defaults other programs may bind
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def ephemeral_range(source: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The kernel's range for bind(0) and outgoing connections (Linux's default where unreadable)."""
    try:
        low, high = (int(part) for part in source.read_text().split())
    except (OSError, ValueError):
        return EPHEMERAL_DEFAULT
    return low, high


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port(ephemeral: tuple[int, int] | None = None) -> int:
    """A loopback port nothing listens on now, outside the ephemeral range, and not handed out
    before by this process, so that no bind(0) or outgoing connection can take it before the
    program it is meant for binds it."""
    low, high = ephemeral or ephemeral_range()
    candidates = [*range(PORT_FLOOR, min(low, 65536)), *range(max(high + 1, PORT_FLOOR), 65536)]
    for _ in range(200):
        port = random.choice(candidates) if candidates else 0
        with _handed_out_lock:
            if port in _handed_out:
                continue
            if port == 0:  # the whole range is ephemeral here: fall back on the kernel's pick
                with socket.socket() as sock:
                    sock.bind((LOOPBACK, 0))
                    port = int(sock.getsockname()[1])
            elif not _bindable(port):
                continue
            _handed_out.add(port)
            return port
    raise OSError(f"no free loopback port in {PORT_FLOOR}-65535 outside the ephemeral range {low}-{high}")


def port_open(port: int, host: str = LOOPBACK) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def log_tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
