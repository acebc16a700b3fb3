"""Loopback ports for local processes, and the kubelet stand-in's httpGet probe.

A fresh-machine CI run failed because a Dask worker's own comm listener (bound to port 0)
took the port the kubelet stand-in had mapped for the worker's dashboard: the pod stayed
not Ready and every probe raised BadStatusLine out of the kubelet's loop.
"""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from distributed.comm.core import Comm
from distributed.comm.core import listen as comm_listen

from gpudask.local import procs
from gpudask.local.cluster.kubelet import http_probe_passes


def test_free_ports_lie_outside_the_ephemeral_range_and_are_never_handed_out_twice() -> None:
    low, high = 32768, 60999
    ports = [procs.free_port((low, high)) for _ in range(300)]
    inside = [p for p in ports if low <= p <= high]
    assert not inside, f"ports in the ephemeral range {low}-{high}: {inside[:10]}"
    assert all(procs.PORT_FLOOR <= p <= 65535 for p in ports), ports
    assert len(set(ports)) == len(ports), "a port was handed out twice"


def test_a_free_port_skips_a_port_something_listens_on() -> None:
    listening = []
    try:
        for _ in range(50):
            sock = socket.socket()
            sock.bind((procs.LOOPBACK, procs.free_port()))
            sock.listen()
            listening.append(sock)
        taken = {s.getsockname()[1] for s in listening}
        assert not taken & {procs.free_port() for _ in range(200)}
    finally:
        for sock in listening:
            sock.close()


def test_the_ephemeral_range_is_read_from_the_kernel_and_defaults_when_unreadable(tmp_path: Path) -> None:
    source = tmp_path / "ip_local_port_range"
    source.write_text("20000\t40000\n")
    assert procs.ephemeral_range(source) == (20000, 40000)
    assert procs.ephemeral_range(tmp_path / "absent") == procs.EPHEMERAL_DEFAULT


@contextmanager
def _dask_comm_listener() -> Iterator[int]:
    """A real Dask TCP comm listener (what took the dashboard's port in CI): it greets every
    connection with its msgpack handshake, which is not HTTP."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def handle(comm: Comm) -> None:
        await comm.close()

    listener = comm_listen(f"tcp://{procs.LOOPBACK}:0", handle)
    assert listener is not None
    try:
        asyncio.run_coroutine_threadsafe(listener.start(), loop).result(10)
        yield int(listener.get_host_port()[1])
    finally:
        loop.call_soon_threadsafe(listener.stop)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_an_http_probe_against_a_listener_that_is_not_http_fails_without_raising() -> None:
    with _dask_comm_listener() as port:
        assert http_probe_passes(port, "/health", timeout=2) is False


@pytest.mark.parametrize(("status", "passes"), [(200, True), (302, True), (404, False), (500, False)])
def test_an_http_probe_passes_on_2xx_and_3xx_only(status: int, passes: bool) -> None:
    class Reply(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.HTTPServer((procs.LOOPBACK, 0), Reply)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        assert http_probe_passes(server.server_address[1], "/health", timeout=2) is passes
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_probe_of_a_closed_port_fails() -> None:
    assert http_probe_passes(procs.free_port(), "/health", timeout=1) is False
