"""Operator plugin: a worker group scales down by its own best workers (a `dask_operator_plugin` entry point).

The pinned operator (dask-kubernetes 2026.3.0) loads every `dask_operator_plugin` entry point
when its controller module is imported (controller.py, `PLUGINS`), before kopf registers the
handlers' lookups. `daskworkergroup_replica_update` calls the module-level `retire_workers`
at call time, so a plugin that replaces it decides which workers a scale-down removes.

Upstream asks the scheduler for `n` workers with no group (`POST /api/v1/retire_workers
{"n": n}`): another group's idle worker can be named (dask/dask-kubernetes#914), a worker
that has not connected never is (#817), and the last fallback deletes the group's last `n`
Deployments by name, whose suffix is random, busy or not. Here instead:

1. the candidates are the scaled group's own Deployments (label `dask.org/workergroup-name`);
2. pending first: a Deployment whose worker has not connected (it holds nothing; its node may
   still be booting);
3. then idle connected workers (nothing executing, ready or waiting), least data first;
4. then busy ones, least work first, only when no idle one is left;
5. the connected ones are retired by address through the scheduler's HTTP API
   (`POST /api/v1/retire_workers {"workers": [...]}`): their data moves before the operator
   deletes their Deployments (and their preStop hook finds nothing left to move).

Busy or idle comes from `GET /json/identity.json` (each worker's last heartbeat: task counts
and managed bytes). When the scheduler's HTTP API does not answer, the choice falls back to
pending-first among the group's Deployments; never another group's.

Self-contained on purpose: the stack ships this text in a ConfigMap mounted into the stock
operator image with a `.dist-info/entry_points.txt` next to it on `PYTHONPATH`
(components/operator_spec.py), so no custom image is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

ENTRY_POINT_GROUP = "dask_operator_plugin"
MODULE = "gpudask_operator_plugin"
BUSY_STATES = ("executing", "long-running", "ready", "constrained", "waiting", "fetch", "flight")
HTTP_TIMEOUT_S = 30.0
LOG = logging.getLogger(MODULE)


def worker_load(identity: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per worker name: address, busy (tasks in a busy state) and bytes, from `/json/identity.json`."""
    out: dict[str, dict[str, Any]] = {}
    for address, worker in (identity.get("workers") or {}).items():
        metrics = worker.get("metrics") or {}
        counts = metrics.get("task_counts") or {}
        busy = sum(int(counts.get(state, 0)) for state in BUSY_STATES)
        out[str(worker.get("name", address))] = {
            "address": address,
            "busy": busy,
            "bytes": int(metrics.get("managed_bytes") or 0),
        }
    return out


def choose(deployments: Sequence[str], workers: Mapping[str, Mapping[str, Any]], n: int) -> list[str]:
    """The `n` Deployments of one group to remove: pending, then idle (least data), then busy (least work)."""
    pending = [d for d in deployments if d not in workers]
    connected = [d for d in deployments if d in workers]
    idle = sorted((d for d in connected if not workers[d]["busy"]), key=lambda d: (workers[d]["bytes"], d))
    busy = sorted(
        (d for d in connected if workers[d]["busy"]), key=lambda d: (workers[d]["busy"], workers[d]["bytes"], d)
    )
    return [*pending, *idle, *busy][: max(n, 0)]


async def retire_workers(
    n_workers: int,
    scheduler_service_name: str,
    worker_group_name: str,
    namespace: str | None,
    logger: Any,
) -> list[str]:
    """Drop-in for the controller's `retire_workers` (same signature, same return: Deployment names)."""
    import aiohttp
    import kr8s
    from dask_kubernetes.operator.controller import controller

    deployments = [
        str(cast(Any, d).name)
        async for d in kr8s.asyncio.get(
            "deployments", namespace=namespace, label_selector={"dask.org/workergroup-name": worker_group_name}
        )
    ]
    deployments.sort()
    workers: dict[str, dict[str, Any]] = {}
    try:
        dashboard = await controller.get_scheduler_address(
            scheduler_service_name, namespace, port_name="http-dashboard", allow_external=False
        )
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(f"{dashboard}/json/identity.json") as resp:
                workers = worker_load(await resp.json(content_type=None))
            chosen = choose(deployments, workers, n_workers)
            addresses = [workers[d]["address"] for d in chosen if d in workers]
            if addresses:
                async with session.post(f"{dashboard}/api/v1/retire_workers", json={"workers": addresses}) as resp:
                    if resp.status >= 300:
                        logger.warning("retiring %s answered %d: %s", addresses, resp.status, await resp.text())
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError) as err:  # no scheduler view
        logger.warning("scheduler API not usable for %s (%s); choosing pending-first by name", worker_group_name, err)
        chosen = choose(deployments, {}, n_workers)
    logger.info("gpu-dask plugin: %s scales down by %s (of %s)", worker_group_name, chosen, deployments)
    return chosen


def install(controller: Any) -> None:
    """Replace the controller's `retire_workers` (what loading the entry point does)."""
    controller.retire_workers = retire_workers


def _register() -> None:
    # The controller loads its plugins near the top of its module, before `retire_workers` is
    # defined, so replacing it then would be undone; kopf's startup handlers run once the
    # module is whole and before any object is handled.
    import kopf

    @kopf.on.startup()
    async def gpudask_retire_workers(**_: Any) -> None:
        from dask_kubernetes.operator.controller import controller

        install(controller)
        LOG.info("gpu-dask plugin: worker groups scale down pending, then idle workers first")


_register()
