"""Work goes where it can run (issue 21, point 2): prod's `cpu` group shares the scheduler with
the GPU workers, so neither unannotated work nor a retiring GPU worker's data may reach it.

A real scheduler with the stack's rendered preload and the scheduler container's own env, and
real workers given the rendered `--nthreads` / `--resources` of their group (GPU group: `GPU=1`,
cpu group: `CPU=<threads>`); the retiring worker leaves through the rendered preStop hook's own
call (`worker_prestop.retire`, by name). Distributed 2026.7.1: unrestricted tasks may run on any
worker, and the active memory manager's `RetireWorker` replicates to any running worker (the one
with the least memory), restrictions or not.
"""

from __future__ import annotations

import asyncio
import itertools
import shlex
from typing import Any, cast

import dask.config
import pytest
from dask.base import annotate
from distributed import Client, Scheduler, Worker, get_worker, wait

from components import dask_spec, worker_prestop
from components.security_spec import SCHEDULER_HTTP_ROUTES
from tests.conftest import settings_for

pytestmark = pytest.mark.process  # a real scheduler and workers (in this process)

DEADLINE_S = 60  # guards a hang; each scenario takes a few seconds


def _flag(args: list[str], name: str) -> str | None:
    return next((b for a, b in itertools.pairwise(args) if a == name), None)


def _worker_options(group: dict[str, Any]) -> dict[str, Any]:
    """nthreads and resources of a worker as the group's rendered container args say."""
    args = group["spec"]["worker"]["spec"]["containers"][0]["args"]
    resources = _flag(args, "--resources") or ""
    parsed = {k: float(v) for k, v in (item.split("=") for item in shlex.split(resources.replace(",", " ")))}
    return {"nthreads": int(_flag(args, "--nthreads") or 1), "resources": parsed}


def _prod() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(the scheduler container, GPU worker options, cpu worker options) of prod."""
    s = settings_for("prod")
    cluster = dask_spec.dask_cluster(s.dask)
    [cpu] = [g for g in s.dask.worker_groups.values() if g.gpus_per_worker == 0]
    scheduler = cluster["spec"]["scheduler"]["spec"]["containers"][0]
    return scheduler, _worker_options(cluster), _worker_options(dask_spec.dask_worker_group(s.dask, cpu))


@pytest.fixture
def scheduler_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The prod scheduler container's own env in this process (less its `DASK_*` TLS and route
    config: the routes are set as dask config below, TLS is tests/test_operator_scaling.py's)."""
    container, *_ = _prod()
    for item in container.get("env") or []:
        if not item["name"].startswith("DASK_"):
            monkeypatch.setenv(item["name"], item["value"])
    return container


async def _start(container: dict[str, Any]) -> Scheduler:
    preload = [b for a, b in itertools.pairwise(container["args"]) if a == "--preload"]
    with dask.config.set({"distributed.scheduler.http.routes": SCHEDULER_HTTP_ROUTES}):
        return await Scheduler(host="127.0.0.1", port=0, dashboard_address="127.0.0.1:0", preload=preload)


def _run(coro: Any) -> Any:
    """Like `asyncio.run`, but leaves the thread's event loop setting alone (Pulumi mocks later)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, DEADLINE_S))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _where(i: int) -> str:
    return str(get_worker().name)


async def _placement(container: dict[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    """Where 60 unannotated tasks ran, and where 6 `resources={"CPU": 1}` tasks ran."""
    _, gpu, cpu = _prod()
    scheduler = await _start(container)
    workers = [
        await Worker(scheduler.address, name="gpu-0", host="127.0.0.1", **gpu),
        await Worker(scheduler.address, name="gpu-1", host="127.0.0.1", **gpu),
        await Worker(scheduler.address, name="cpu-0", host="127.0.0.1", **cpu),
    ]
    try:
        async with Client(scheduler.address, asynchronous=True) as client:
            ran = await cast(Any, client.gather(client.map(_where, range(60), pure=False)))
            with annotate(resources={"CPU": 1}):
                opted = client.map(_where, range(100, 106), pure=False)
            # On a cluster whose CPU workers advertise nothing, these never run: bounded, and said.
            try:
                cpu_ran = await asyncio.wait_for(cast(Any, client.gather(opted)), 15)
            except TimeoutError:
                cpu_ran = ["<not run within 15 s: no worker offers the CPU resource>"] * len(opted)
        count = lambda names: {n: names.count(n) for n in sorted(set(names))}  # noqa: E731
        return count(ran), count(cpu_ran)
    finally:
        for worker in workers:
            await worker.close()
        await scheduler.close()


def test_unannotated_work_never_runs_on_a_cpu_worker(scheduler_env: dict[str, Any]) -> None:
    ran, cpu_ran = _run(_placement(scheduler_env))
    print(f"60 unannotated tasks ran on {ran}; 6 CPU-annotated on {cpu_ran}")
    assert "cpu-0" not in ran, f"unannotated tasks ran on the CPU worker: {ran}"
    assert sum(ran.values()) == 60
    assert cpu_ran == {"cpu-0": 6}, f"tasks annotated resources={{'CPU': 1}} must run on the cpu group: {cpu_ran}"


async def _retire_a_gpu_worker(container: dict[str, Any], annotation: dict[str, Any]) -> dict[str, Any]:
    """A GPU worker holding results retires through the preStop hook's call: where do they go?"""
    _, gpu, cpu = _prod()
    scheduler = await _start(container)
    leaving = await Worker(scheduler.address, name="gpu-0", host="127.0.0.1", **gpu)
    workers = [leaving]
    try:
        async with Client(scheduler.address, asynchronous=True) as client:
            with annotate(**annotation):
                held = client.map(lambda i: bytes(200_000) + bytes([i]), range(20), pure=False)
            await cast(Any, wait(held))
            workers += [
                await Worker(scheduler.address, name="gpu-1", host="127.0.0.1", **gpu),
                await Worker(scheduler.address, name="cpu-0", host="127.0.0.1", **cpu),
            ]
            # The staying GPU worker already holds more than the CPU worker: the AMM sends a
            # retiring worker's keys to the running worker with the least memory.
            ballast = await cast(Any, client.scatter(bytes(20_000_000), workers=[workers[1].address]))
            await worker_prestop.retire(scheduler.address, "gpu-0")
            who_has = await cast(Any, client.who_has(held))
            holders = {scheduler.workers[a].name for addrs in who_has.values() for a in addrs}
            results = [r[-1] for r in await cast(Any, client.gather(held))]
            del ballast
            return {
                "retired": leaving.address not in scheduler.workers,
                "holders": sorted(str(h) for h in holders),
                "results": results,
            }
    finally:
        for worker in workers:
            await worker.close()
        await scheduler.close()


@pytest.mark.parametrize("annotation", [{}, {"resources": {"GPU": 1}}], ids=["unannotated", "gpu-annotated"])
def test_a_retiring_gpu_workers_data_never_lands_on_a_cpu_worker(
    scheduler_env: dict[str, Any], annotation: dict[str, Any]
) -> None:
    out = _run(_retire_a_gpu_worker(scheduler_env, annotation))
    print(f"retired gpu-0 ({annotation or 'unannotated'}): {out['holders']} now hold its 20 results")
    assert out["retired"], "gpu-0 was not retired"
    assert out["holders"] == ["gpu-1"], f"a retiring GPU worker's data went to {out['holders']}"
    assert out["results"] == list(range(20))
