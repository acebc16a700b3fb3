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
from typing import Any, cast

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


# --- the stack's operator plugin: which of the group's workers go (issue 21, points 3 and 7) ---------
# A real scheduler with the stack's preload and HTTP routes, real workers named as the operator
# names them; `retire_workers` (the plugin's, or the controller's own as the broken variant)
# gets only its two Kubernetes reads answered, as above.
async def _decide(
    monkeypatch: pytest.MonkeyPatch,
    stack: str,
    groups: dict[str, int],
    scaled: str,
    plugin: bool,
    busy_last: bool = False,
    pending: str = "",
) -> tuple[list[str], str, list[int], bool, set[str]]:
    """(chosen Deployments, the busy worker, results held by the others, whether the busy
    worker's pinned task finished, workers left)."""
    from dask_kubernetes.operator.controller import controller
    from distributed import Client, Worker

    from components import operator_plugin

    s = settings_for(stack)
    cluster = dask_spec.dask_cluster(s.dask)
    with dask.config.set({"distributed.scheduler.http.routes": SCHEDULER_HTTP_ROUTES}):
        scheduler = await Scheduler(
            host="127.0.0.1", port=0, dashboard_address="127.0.0.1:0", preload=_preload(cluster)
        )
    addresses = {"tcp-comm": scheduler.address, "http-dashboard": f"http://127.0.0.1:{scheduler.http_server.port}"}
    names = {g: [f"{g}-worker-{i:010d}" for i in range(n)] for g, n in groups.items()}

    async def address(service: str, namespace: str, port_name: str = "tcp-comm", **_: Any) -> str:
        return addresses[port_name]

    async def listed(kind: str, namespace: str, label_selector: dict[str, str]) -> Any:
        group = label_selector["dask.org/workergroup-name"]
        for name in sorted([*names[group], *([pending] if pending and group == scaled else [])]):
            yield SimpleNamespace(name=name)

    monkeypatch.setattr(controller, "get_scheduler_address", address)
    monkeypatch.setattr(controller.kr8s.asyncio, "get", listed)
    retire = operator_plugin.retire_workers if plugin else controller.retire_workers
    workers = [await Worker(scheduler.address, name=n, nthreads=1, host="127.0.0.1") for g in names.values() for n in g]
    try:
        async with Client(scheduler.address, asynchronous=True) as client:
            ordered = sorted(names[scaled])
            busy = ordered[-1] if busy_last else ""
            holders = [w.address for w in workers if w.name in ordered and w.name != busy]
            held = [client.submit(lambda i: bytes(1_000_000) + bytes([i]), i, workers=holders) for i in range(6)]
            await cast(Any, client.gather(held))
            long = None
            if busy:
                [busy_address] = [w.address for w in workers if w.name == busy]
                long = client.submit(time.sleep, 3.0, workers=[busy_address], pure=False)
                while not any(ws.processing for ws in scheduler.workers.values() if ws.name == busy):
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.5)  # a heartbeat carries the busy worker's task counts
            chosen = list(await asyncio.wait_for(retire(1, f"{s.dask.name}-scheduler", scaled, NAMESPACE, LOG), HANG_S))
            # The operator then deletes the chosen Deployments: their workers stop after their preStop hook.
            for worker in workers:
                if worker.name in chosen:
                    await worker.close()
            results = [r[-1] for r in await cast(Any, client.gather(held))]
            finished = False
            if long is not None:
                if busy not in chosen:  # pinned to the busy worker: it finishes only if that worker stays
                    await asyncio.wait_for(cast(Any, long.result()), 30)
                    finished = True
                await cast(Any, long.cancel())
            left = {str(ws.name) for ws in scheduler.workers.values()}
        return chosen, busy, results, finished, left
    finally:
        for worker in workers:
            await worker.close()
        await scheduler.close()


def _cpu_group() -> tuple[str, str]:
    s = settings_for("prod")
    return s.dask.default_group_name, f"{s.dask.name}-cpu"


def test_the_plugin_retires_an_idle_worker_not_the_busy_one(monkeypatch: pytest.MonkeyPatch) -> None:
    _, cpu = _cpu_group()
    chosen, busy, results, finished, _ = _run(_decide(monkeypatch, "prod", {cpu: 3}, cpu, True, busy_last=True))
    assert len(chosen) == 1 and chosen[0] != busy, f"retired {chosen} while {busy} was the only busy worker"
    assert finished, "the busy worker's task did not finish"
    assert results == list(range(6)), "the retired worker's results did not move first"


def test_without_the_plugin_the_busy_worker_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken variant: the preload refuses the count, the controller's LIFO path takes the last by name."""
    _, cpu = _cpu_group()
    chosen, busy, _, finished, _ = _run(_decide(monkeypatch, "prod", {cpu: 3}, cpu, False, busy_last=True))
    assert chosen == [busy] and not finished, chosen


def _pending(group: str) -> str:
    return f"{group}-worker-000000-pnd"  # first by name: the LIFO path would never pick it


def test_the_plugin_removes_a_pending_worker_first(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu, _ = _cpu_group()
    chosen, *_ = _run(_decide(monkeypatch, "prod", {gpu: 2}, gpu, True, pending=_pending(gpu)))
    assert chosen == [_pending(gpu)], chosen


def test_without_the_plugin_a_connected_worker_goes_while_one_is_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu, _ = _cpu_group()
    chosen, *_ = _run(_decide(monkeypatch, "prod", {gpu: 2}, gpu, False, pending=_pending(gpu)))
    assert len(chosen) == 1 and chosen != [_pending(gpu)], chosen


def test_the_plugin_never_retires_another_groups_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu, cpu = _cpu_group()
    chosen, _, results, _, left = _run(_decide(monkeypatch, "prod", {gpu: 2, cpu: 2}, cpu, True))
    assert len(chosen) == 1 and chosen[0].startswith(f"{cpu}-worker-"), chosen
    assert sum(n.startswith(f"{gpu}-worker-") for n in left) == 2, left
    assert results == list(range(6))


async def _users_retire_workers_by_count() -> tuple[int, int]:
    from distributed import Client, Worker

    cluster = dask_spec.dask_cluster(settings_for("prod").dask)
    with dask.config.set({"distributed.scheduler.http.routes": SCHEDULER_HTTP_ROUTES}):
        scheduler = await Scheduler(
            host="127.0.0.1", port=0, dashboard_address="127.0.0.1:0", preload=_preload(cluster)
        )
    workers = [await Worker(scheduler.address, nthreads=1, host="127.0.0.1") for _ in range(3)]
    try:
        async with Client(scheduler.address, asynchronous=True) as client:
            before = len(scheduler.workers)
            await cast(Any, client.retire_workers(n=1))
            return before, len(scheduler.workers)
    finally:
        for worker in workers:
            await worker.close()
        await scheduler.close()


def test_users_retire_workers_by_count_still_works_with_the_preload() -> None:
    """The preload refuses the operator's count-only calls, not a user's `client.retire_workers(n=...)`."""
    assert _run(_users_retire_workers_by_count()) == (3, 2)
