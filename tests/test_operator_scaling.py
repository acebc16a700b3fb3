"""Scale-down by the pinned operator's own handlers against a real Dask scheduler (issue 10, points 3 and 4).

The scheduler runs in this process on loopback with what the stack renders for it: the HTTP
routes (the operator's API included) and the `--preload` text from the DaskCluster's args.
Workers are real `distributed` workers named as the operator names them. The handlers
(`daskautoscaler_adapt`, `daskworkergroup_replica_update`, and the `retire_workers` they
call) are the installed dask-kubernetes 2026.3.0 controller's; only their Kubernetes API calls
go to `tests.kube_store`. When a worker Deployment is deleted, the store plays the kubelet:
it runs the worker's preStop code (`components/worker_prestop.py`), then stops the worker.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import dask.config
import kopf
import pytest
from distributed import Client, Scheduler, Worker

from components import dask_spec, worker_prestop
from components.security_spec import SCHEDULER_HTTP_ROUTES
from tests.conftest import settings_for
from tests.kube_store import KubeStore, run

pytestmark = pytest.mark.process  # a real scheduler and workers (in this process)

LOG = logging.getLogger("operator")
NAMESPACE = "dask"


def _preload(cluster: dict[str, Any]) -> list[str]:
    args = cluster["spec"]["scheduler"]["spec"]["containers"][0]["args"]
    return [b for a, b in itertools.pairwise(args) if a == "--preload"]


@asynccontextmanager
async def _cluster(
    cluster: dict[str, Any], groups: dict[str, int], connected: bool = True, preload: bool = True
) -> AsyncIterator[tuple[KubeStore, Any, Scheduler, dict[str, Worker]]]:
    """A real scheduler and, per group, `n` worker Deployments (and their workers when `connected`)."""
    from dask_kubernetes.operator.controller import controller as real

    name = cluster["metadata"]["name"]
    with dask.config.set({"distributed.scheduler.http.routes": SCHEDULER_HTTP_ROUTES}):
        scheduler = await Scheduler(
            host="127.0.0.1", port=0, dashboard_address="127.0.0.1:0", preload=_preload(cluster) if preload else []
        )
    store = KubeStore(NAMESPACE)
    store.addresses = {
        "tcp-comm": scheduler.address,
        "http-dashboard": f"http://127.0.0.1:{scheduler.http_server.port}",
    }
    store.put("DaskCluster", cluster)
    store.put(
        "Pod",
        {
            "metadata": {
                "name": f"{name}-scheduler-0",
                "labels": {"dask.org/component": "scheduler", "dask.org/cluster-name": name},
            }
        },
    )
    workers: dict[str, Worker] = {}
    for index, (group, count) in enumerate(groups.items()):
        store.put(
            "DaskWorkerGroup", {"metadata": {"name": group}, "spec": {"cluster": name, "worker": {"replicas": count}}}
        )
        for i in range(count):
            deployment = real.build_worker_deployment_spec(
                group, NAMESPACE, name, f"{index}{i:09d}", cast(Any, {"containers": [{"name": "worker"}]}), {}, {}
            )
            store.put("Deployment", deployment)
            if connected:
                worker_name = deployment["metadata"]["name"]
                workers[worker_name] = await Worker(scheduler.address, name=worker_name, nthreads=1, host="127.0.0.1")

    async def kubelet(kind: str, body: dict[str, Any]) -> None:
        worker = workers.get(body["metadata"]["name"])
        if kind != "Deployment" or worker is None:
            return
        # preStop (the stack's hook), then SIGTERM.
        await worker_prestop.retire(scheduler.address, body["metadata"]["name"])
        await worker.close()

    store.delete_hooks.append(kubelet)
    try:
        yield store, scheduler, scheduler, workers
    finally:
        for worker in workers.values():
            await worker.close()
        await scheduler.close()


async def _scale(store: KubeStore, group: str, replicas: int, monkeypatch: pytest.MonkeyPatch) -> None:
    controller = store.install(monkeypatch)
    store.patch("DaskWorkerGroup", group, {"spec": {"worker": {"replicas": replicas}}})
    body = kopf.Body(cast(Any, store.objects[("DaskWorkerGroup", group)]))
    await controller.daskworkergroup_replica_update(
        name=group, namespace=NAMESPACE, meta=body.meta, spec=body.spec, new=replicas, body=body, logger=LOG
    )


async def _scale_cpu_group_down(preload: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str], Any]:
    s = settings_for("prod")
    cluster = dask_spec.dask_cluster(s.dask)
    gpu, cpu = s.dask.default_group_name, f"{s.dask.name}-cpu"
    async with (
        _cluster(cluster, {gpu: 2, cpu: 2}, preload=preload) as (store, _, scheduler, workers),
        Client(scheduler.address, asynchronous=True) as client,
    ):
        # The CPU workers hold results, the GPU workers none: left to choose by count, the
        # scheduler retires an idle GPU worker (least data) first.
        cpu_workers = [w.address for n, w in workers.items() if n.startswith(cpu)]
        futures = [client.submit(lambda i: bytes(2_000_000) + bytes([i]), i, workers=cpu_workers) for i in range(8)]
        await cast(Any, client.gather(futures))
        await _scale(store, cpu, 1, monkeypatch)
        deleted = [name for action, kind, name in store.log if action == "delete" and kind == "Deployment"]
        remaining = sorted(str(ws.name) for ws in scheduler.workers.values())
        results = await cast(Any, client.gather(futures))
    return deleted, remaining, results


def test_scaling_one_group_never_retires_another_groups_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    deleted, remaining, results = run(_scale_cpu_group_down(True, monkeypatch))
    assert len(deleted) == 1 and deleted[0].startswith("rapids-cpu-worker-"), deleted
    assert sum(n.startswith("rapids-default-worker-") for n in remaining) == 2, remaining
    assert sum(n.startswith("rapids-cpu-worker-") for n in remaining) == 1, remaining
    # The deleted worker left gracefully: every result it held moved before it closed.
    assert [r[-1] for r in results] == list(range(8))


def test_without_the_preload_the_operator_retires_the_other_groups_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """dask/dask-kubernetes#914 with the pinned operator: the bug the preload exists for."""
    deleted, remaining, _ = run(_scale_cpu_group_down(False, monkeypatch))
    assert deleted and deleted[0].startswith("rapids-default-worker-"), deleted
    assert sum(n.startswith("rapids-cpu-worker-") for n in remaining) == 2


async def _autoscale_before_the_worker_connects(monkeypatch: pytest.MonkeyPatch, preload: bool = True) -> list[str]:
    s = settings_for("dev")
    cluster = dask_spec.dask_cluster(s.dask)
    group = s.dask.default_group_name
    assert s.dask.autoscale is not None
    # One worker Deployment whose worker has not connected yet (its spot A100 node is still
    # booting, or the image still pulling) while the autoscaler wants the group at its minimum.
    async with _cluster(cluster, {group: 1}, connected=False, preload=preload) as (store, _, _, _):
        controller = store.install(monkeypatch)
        autoscaler = dask_spec.dask_autoscaler(s.dask)
        assert autoscaler is not None
        store.put("DaskAutoscaler", autoscaler)
        await controller.daskautoscaler_adapt(
            spec=autoscaler["spec"], name=autoscaler["metadata"]["name"], namespace=NAMESPACE, logger=LOG
        )
        replicas = store.objects[("DaskWorkerGroup", group)]["spec"]["worker"]["replicas"]
        assert replicas == s.dask.autoscale.minimum == 0
        body = kopf.Body(cast(Any, store.objects[("DaskWorkerGroup", group)]))
        await controller.daskworkergroup_replica_update(
            name=group, namespace=NAMESPACE, meta=body.meta, spec=body.spec, new=replicas, body=body, logger=LOG
        )
        return store.names("Deployment", {"dask.org/workergroup-name": group})


def test_a_worker_that_never_connected_cannot_keep_its_gpu_node(monkeypatch: pytest.MonkeyPatch) -> None:
    # Drained: no worker Deployment, so no pod holds the A100 pool and GKE can remove the node.
    assert run(_autoscale_before_the_worker_connects(monkeypatch)) == []


def test_without_the_preload_the_unconnected_worker_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    """dask/dask-kubernetes#817 with the pinned operator."""
    assert len(run(_autoscale_before_the_worker_connects(monkeypatch, preload=False))) == 1


def test_an_autoscaled_group_starts_at_its_minimum() -> None:
    s = settings_for("dev")
    assert s.dask.autoscale is not None
    assert dask_spec.dask_cluster(s.dask)["spec"]["worker"]["replicas"] == s.dask.autoscale.minimum


async def _scale_down_a_tls_scheduler(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], float]:
    """prod's scheduler speaks TLS on 8786; the operator's RPC fallback connects with `tcp://`."""
    import time

    from distributed.security import Security

    s = settings_for("prod")
    cluster = dask_spec.dask_cluster(s.dask)
    assert "--protocol" in cluster["spec"]["scheduler"]["spec"]["containers"][0]["args"]  # prod is a TLS stack
    group, name = s.dask.default_group_name, s.dask.name
    with dask.config.set({"distributed.scheduler.http.routes": SCHEDULER_HTTP_ROUTES}):
        scheduler = await Scheduler(
            host="127.0.0.1",
            port=0,
            protocol="tls",
            security=Security.temporary(),
            dashboard_address="127.0.0.1:0",
            preload=_preload(cluster),
        )
    try:
        store = KubeStore(NAMESPACE)
        store.addresses = {
            # What `get_internal_address_for_scheduler_service` builds for the Service: always tcp://.
            "tcp-comm": "tcp://" + scheduler.address.removeprefix("tls://"),
            "http-dashboard": f"http://127.0.0.1:{scheduler.http_server.port}",
        }
        store.put("DaskCluster", cluster)
        store.put(
            "DaskWorkerGroup", {"metadata": {"name": group}, "spec": {"cluster": name, "worker": {"replicas": 2}}}
        )
        from dask_kubernetes.operator.controller import controller as real

        for i in range(2):
            spec = cast(Any, {"containers": [{"name": "worker"}]})
            store.put(
                "Deployment", real.build_worker_deployment_spec(group, NAMESPACE, name, f"{i:010d}", spec, {}, {})
            )
        began = time.monotonic()
        await _scale(store, group, 1, monkeypatch)
        seconds = time.monotonic() - began
    finally:
        await scheduler.close()
    return [n for action, kind, n in store.log if action == "delete" and kind == "Deployment"], seconds


def test_with_tls_the_operator_falls_through_to_the_groups_own_deployments_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With TLS the HTTP path is refused by the preload and the plain-TCP RPC fails on the TLS
    handshake, so the operator deletes one of the scaled group's own Deployments. On a direct
    connection (as in a cluster) that failure is immediate; through the local harness's
    port-forward it never arrives (GOTCHAS), which is why scenario (d) runs prod without TLS."""
    deleted, seconds = run(_scale_down_a_tls_scheduler(monkeypatch))
    print(f"TLS scale-down 2 -> 1 decided in {seconds:.2f} s: deleted {deleted}")
    assert len(deleted) == 1 and deleted[0].startswith("rapids-default-worker-"), deleted


# --- the stack's operator plugin: which of the group's workers go (issue 21, points 3 and 7) ---------
def _with_plugin(monkeypatch: pytest.MonkeyPatch, controller: Any) -> None:
    """What loading the `dask_operator_plugin` entry point does at the operator's startup."""
    from components import operator_plugin

    monkeypatch.setattr(controller, "retire_workers", operator_plugin.retire_workers)


async def _scale_with_a_busy_last_worker(
    monkeypatch: pytest.MonkeyPatch, plugin: bool
) -> tuple[list[str], str, list[int], bool]:
    """prod's cpu group, 3 workers: the last by Deployment name runs a long task, the others
    are idle and hold results. Scale 3 -> 2. (deleted, the busy worker, results, the long
    task survived)."""
    s = settings_for("prod")
    cluster = dask_spec.dask_cluster(s.dask)
    cpu = f"{s.dask.name}-cpu"
    async with (
        _cluster(cluster, {cpu: 3}) as (store, _, scheduler, workers),
        Client(scheduler.address, asynchronous=True) as client,
    ):
        names = sorted(workers)
        busy = names[-1]  # what the LIFO fallback deletes
        idle = [workers[n].address for n in names[:-1]]
        held = [client.submit(lambda i: bytes(1_000_000) + bytes([i]), i, workers=idle) for i in range(6)]
        await cast(Any, client.gather(held))
        import time as _time

        long = client.submit(_time.sleep, 3.0, workers=[workers[busy].address], pure=False)
        while not any(ws.processing for ws in scheduler.workers.values() if ws.name == busy):
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # a heartbeat carries the busy worker's task counts
        controller = store.install(monkeypatch)
        if plugin:
            _with_plugin(monkeypatch, controller)
        await _scale(store, cpu, 2, monkeypatch)
        deleted = [name for action, kind, name in store.log if action == "delete" and kind == "Deployment"]
        results = [r[-1] for r in await cast(Any, client.gather(held))]
        # Pinned to the busy worker: it finishes only if that worker was left to run it.
        survived = busy in {str(ws.name) for ws in scheduler.workers.values()}
        if survived:
            await asyncio.wait_for(cast(Any, long.result()), 30)
        await cast(Any, long.cancel())
    return deleted, busy, results, survived


def test_the_plugin_retires_an_idle_worker_not_the_busy_one(monkeypatch: pytest.MonkeyPatch) -> None:
    deleted, busy, results, survived = run(_scale_with_a_busy_last_worker(monkeypatch, plugin=True))
    assert len(deleted) == 1 and deleted[0] != busy, f"retired {deleted} while {busy} was the only busy worker"
    assert survived
    assert results == list(range(6)), "the retired worker's results did not move first"


def test_without_the_plugin_the_busy_worker_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken variant: the preload's group-scoped LIFO fallback deletes the last Deployment by name."""
    deleted, busy, _, survived = run(_scale_with_a_busy_last_worker(monkeypatch, plugin=False))
    assert deleted == [busy] and not survived, deleted


async def _scale_with_a_pending_worker(monkeypatch: pytest.MonkeyPatch, plugin: bool) -> tuple[list[str], str]:
    """dev's GPU group: two connected workers and, first by name, a Deployment whose worker has not
    connected (its node still booting). Scale 3 -> 2. The LIFO fallback deletes the last by name."""
    from dask_kubernetes.operator.controller import controller as real

    s = settings_for("dev")
    cluster = dask_spec.dask_cluster(s.dask)
    group, name = s.dask.default_group_name, s.dask.name
    async with _cluster(cluster, {group: 2}) as (store, _, _, _):
        pending = real.build_worker_deployment_spec(
            group, NAMESPACE, name, "000000-pnd", cast(Any, {"containers": [{"name": "worker"}]}), {}, {}
        )
        store.put("Deployment", pending)
        store.patch("DaskWorkerGroup", group, {"spec": {"worker": {"replicas": 3}}})
        controller = store.install(monkeypatch)
        if plugin:
            _with_plugin(monkeypatch, controller)
        await _scale(store, group, 2, monkeypatch)
        deleted = [n for action, kind, n in store.log if action == "delete" and kind == "Deployment"]
    return deleted, pending["metadata"]["name"]


def test_the_plugin_removes_a_pending_worker_first(monkeypatch: pytest.MonkeyPatch) -> None:
    deleted, pending = run(_scale_with_a_pending_worker(monkeypatch, plugin=True))
    assert deleted == [pending], deleted


def test_without_the_plugin_a_connected_worker_goes_while_one_is_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    deleted, pending = run(_scale_with_a_pending_worker(monkeypatch, plugin=False))
    assert len(deleted) == 1 and deleted != [pending], deleted


def test_the_plugin_never_retires_another_groups_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    from dask_kubernetes.operator.controller import controller

    _with_plugin(monkeypatch, controller)
    deleted, remaining, results = run(_scale_cpu_group_down(True, monkeypatch))
    assert len(deleted) == 1 and deleted[0].startswith("rapids-cpu-worker-"), deleted
    assert sum(n.startswith("rapids-default-worker-") for n in remaining) == 2, remaining
    assert [r[-1] for r in results] == list(range(8))


async def _users_retire_workers_by_count() -> tuple[int, int]:
    s = settings_for("prod")
    cluster = dask_spec.dask_cluster(s.dask)
    async with (
        _cluster(cluster, {f"{s.dask.name}-cpu": 3}) as (_, _, scheduler, _),
        Client(scheduler.address, asynchronous=True) as client,
    ):
        before = len(scheduler.workers)
        await cast(Any, client.retire_workers(n=1))
        return before, len(scheduler.workers)


def test_users_retire_workers_by_count_still_works_with_the_preload() -> None:
    """The preload refuses the operator's count-only calls, not a user's `client.retire_workers(n=...)`."""
    before, after = run(_users_retire_workers_by_count())
    assert (before, after) == (3, 2)
