"""The pinned operator's `retire_workers` against a real TLS scheduler (issue 10, point 4, with TLS).

Scale-down by the real operator is a control-plane scenario (tests/test_dask_runtime.py: (c) a
never-connected worker cannot keep its GPU node, (d) scaling one group never retires another's
workers and the retired workers' results survive through the rendered preStop hook). Those run
prod without TLS: through the harness's port-forward the TLS handshake failure of the operator's
plain-TCP RPC never arrives (GOTCHAS). This test covers that one path: a real scheduler with
prod's preload, speaking TLS, and the installed dask-kubernetes 2026.3.0 controller's own
`retire_workers`. Only its two Kubernetes reads are answered here (the Service's address, as
`get_scheduler_address` builds it: always `tcp://`, and the group's Deployments by label).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from types import SimpleNamespace
from typing import Any

import dask.config
import pytest
from distributed import Scheduler

from components import dask_spec
from components.security_spec import SCHEDULER_HTTP_ROUTES
from tests.conftest import settings_for

pytestmark = pytest.mark.process  # a real scheduler (in this process)

LOG = logging.getLogger("operator")
NAMESPACE = "dask"
HANG_S = 300  # guards a hang; the decision takes well under a second when nothing hangs


def _preload(cluster: dict[str, Any]) -> list[str]:
    args = cluster["spec"]["scheduler"]["spec"]["containers"][0]["args"]
    return [b for a, b in itertools.pairwise(args) if a == "--preload"]


async def _scale_down_a_tls_scheduler(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], float]:
    from dask_kubernetes.operator.controller import controller
    from distributed.security import Security

    s = settings_for("prod")
    cluster = dask_spec.dask_cluster(s.dask)
    assert "--protocol" in cluster["spec"]["scheduler"]["spec"]["containers"][0]["args"]  # prod is a TLS stack
    group = s.dask.default_group_name
    with dask.config.set({"distributed.scheduler.http.routes": SCHEDULER_HTTP_ROUTES}):
        scheduler = await Scheduler(
            host="127.0.0.1",
            port=0,
            protocol="tls",
            security=Security.temporary(),
            dashboard_address="127.0.0.1:0",
            preload=_preload(cluster),
        )
    addresses = {
        "tcp-comm": "tcp://" + scheduler.address.removeprefix("tls://"),
        "http-dashboard": f"http://127.0.0.1:{scheduler.http_server.port}",
    }
    deployments = [SimpleNamespace(name=f"{group}-worker-{i:010d}") for i in range(2)]

    async def address(service: str, namespace: str, port_name: str = "tcp-comm", **_: Any) -> str:
        return addresses[port_name]

    async def listed(kind: str, namespace: str, label_selector: dict[str, str]) -> Any:
        assert (kind, label_selector) == ("deployments", {"dask.org/workergroup-name": group})
        for deployment in deployments:
            yield deployment

    monkeypatch.setattr(controller, "get_scheduler_address", address)
    monkeypatch.setattr(controller.kr8s.asyncio, "get", listed)
    try:
        began = time.monotonic()
        chosen = await asyncio.wait_for(
            controller.retire_workers(1, f"{s.dask.name}-scheduler", group, NAMESPACE, LOG), HANG_S
        )
        return list(chosen), time.monotonic() - began
    finally:
        await scheduler.close()


def _run(coro: Any) -> Any:
    """Like `asyncio.run`, but leaves the thread's event loop setting alone: `asyncio.run`
    unsets it, and Pulumi's mocks in later tests call `asyncio.get_event_loop()`."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def test_with_tls_the_operator_falls_through_to_the_groups_own_deployments(monkeypatch: pytest.MonkeyPatch) -> None:
    """With TLS the HTTP path is refused by the preload and the plain-TCP RPC fails on the TLS
    handshake, so the operator picks one of the scaled group's own Deployments (its LIFO path)."""
    chosen, seconds = _run(_scale_down_a_tls_scheduler(monkeypatch))
    print(f"TLS scale-down 2 -> 1 decided in {seconds:.2f} s: {chosen}")
    assert chosen == [f"{settings_for('prod').dask.default_group_name}-worker-0000000001"], chosen
