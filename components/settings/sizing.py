"""Sizing policy: a worker's default share of its node, what fits the pools, the scheduler's node."""

from __future__ import annotations

from components.catalog import (
    ACCELERATOR_ZONES,
    NODE_OVERHEAD_CPU,
    NODE_OVERHEAD_MEMORY_GB,
    SCHEDULER_GPU_MACHINE_TYPES,
    allocatable_ephemeral_storage_gb,
    gpu_pod_capacity,
)
from components.settings.model import _ZONE, DaskSettings, GpuPoolSettings, WorkerGroupSettings
from components.settings.reader import _Problems


def _worker_share(pools: list[GpuPoolSettings], gpus: int) -> tuple[float, float]:
    """Default CPU and memory for a worker holding `gpus` GPUs: its share of the smallest target node."""
    usable = [p for p in pools if p.machine_type and p.gpus_per_node >= gpus]
    if not usable or gpus <= 0:
        return 1.0, 4.0
    m = min((p.machine for p in usable), key=lambda m: m.allocatable_cpu / m.gpus)
    share = gpus / m.gpus
    cpu = max(1.0, int((m.allocatable_cpu - NODE_OVERHEAD_CPU) * share * 10) / 10)
    memory = max(4.0, float(int((m.allocatable_memory_gb - NODE_OVERHEAD_MEMORY_GB) * share)))
    return cpu, memory


# The smallest spill disk: the emptyDir keeps 1 GiB of the pod's ephemeral storage for logs and
# the container's writable layer (components/dask_spec.py SPILL_LOG_ROOM_GB).
MIN_SPILL_GB = 2.0


def _spill_room(pools: list[GpuPoolSettings], gpus: int) -> tuple[float, GpuPoolSettings] | None:
    """Ephemeral storage per GPU worker on the smallest-disk target pool, and that pool."""
    usable = [p for p in pools if p.machine_type and p.gpus_per_node >= gpus and gpus > 0]
    if not usable:
        return None
    pool = min(usable, key=lambda p: allocatable_ephemeral_storage_gb(p.disk_size_gb) * gpus / p.gpus_per_node)
    return int(allocatable_ephemeral_storage_gb(pool.disk_size_gb) * gpus / pool.gpus_per_node * 10) / 10, pool


def _spill_default(pools: list[GpuPoolSettings], gpus: int, memory_gb: float) -> float:
    """Twice the worker's memory (what it can hold: memory, then as much again spilled and shuffled),
    capped by a GPU worker's share of its node's allocatable ephemeral storage."""
    room = _spill_room(pools, gpus)
    wanted = 2 * memory_gb
    return max(MIN_SPILL_GB, min(wanted, room[0])) if room else wanted


def _check_spill(problems: _Problems, key: str, group: WorkerGroupSettings, pools: list[GpuPoolSettings]) -> None:
    if group.spill_gb < MIN_SPILL_GB:
        problems.add(key, group.spill_gb, f"must be at least {MIN_SPILL_GB:g} (1 GiB of it is for logs)")
    room = _spill_room(pools, group.gpus_per_worker)
    if room and group.spill_gb > room[0]:
        share, pool = room
        problems.add(
            key,
            group.spill_gb,
            f"does not fit pool '{pool.name}': a {pool.machine_type} node with a {pool.disk_size_gb} GB boot disk "
            f"has {share:g} GiB of allocatable ephemeral storage per worker "
            f"({pool.gpus_per_node // group.gpus_per_worker} per node); "
            f"lower it or raise gpuNodePools.{pool.name}.diskSizeGb",
        )


def _target_pools(
    problems: _Problems, key: str, pool: str | None, pools: dict[str, GpuPoolSettings]
) -> list[GpuPoolSettings]:
    if pool is None:
        return [p for p in pools.values() if p.machine_type]
    if pool not in pools:
        problems.add(key, pool, f"is not a GPU pool of this stack; one of {', '.join(pools) or '(none)'}")
        return []
    return [pools[pool]] if pools[pool].machine_type else []


def _check_one_gpu(problems: _Problems, key: str, gpus: int) -> None:
    if gpus > 1:
        problems.add(
            key,
            gpus,
            "is not supported: with several GPUs in one pod dask-cuda names its workers <name>-0..N-1, which the "
            "operator's scale-down cannot map back to a Deployment (GOTCHAS.md). Use gpusPerWorker: 1 with more "
            "workers; colocation: preferred packs them onto the same nodes",
        )


def _check_gpu_fit(
    problems: _Problems,
    key: str,
    gpus: int,
    replicas: int,
    targets: list[GpuPoolSettings],
    colocation: str = "none",
) -> None:
    if not targets:
        return
    biggest = max(p.gpus_per_node for p in targets)
    if gpus > biggest:
        problems.add(
            key,
            gpus,
            f"GPUs per worker exceed the largest node ({biggest} GPUs) in pools {', '.join(p.name for p in targets)}",
        )
        return
    capacity = sum(gpu_pod_capacity(p.gpus_per_node, p.max_nodes, gpus) for p in targets)
    if replicas > capacity:
        problems.add(
            key.rsplit(".", 1)[0] + ".replicas" if key.endswith("gpusPerWorker") else key,
            replicas,
            f"workers x {gpus} GPUs do not fit in maxNodes of pools {', '.join(p.name for p in targets)} (room for {capacity})",
        )
    if colocation == "required" and replicas * gpus > biggest:
        problems.add(
            "dask.colocation",  # the one colocation key: it applies to the GPU groups
            "required",
            f"needs {replicas} workers x {gpus} GPUs = {replicas * gpus} GPUs on one node, but the largest node has {biggest}",
        )


def _check_scheduler_pool(problems: _Problems, location: str, dask: DaskSettings, existing: bool = False) -> None:
    machine_key = "existingCluster.schedulerPool.machineType" if existing else "dask.schedulerMachineType"
    machine = SCHEDULER_GPU_MACHINE_TYPES[dask.scheduler_machine_type]
    accelerator = machine.accelerator or ""
    if _ZONE.match(location):
        region = location.rsplit("-", 1)[0]
        zones = ACCELERATOR_ZONES.get(accelerator, {}).get(region)
        if zones is not None and location not in zones:
            problems.add(
                machine_key,
                dask.scheduler_machine_type,
                f"needs {accelerator}, which zone {location} does not offer (it is in {', '.join(zones)}); "
                f"pick the other type ({', '.join(SCHEDULER_GPU_MACHINE_TYPES)}) or set schedulerGpu: false",
            )
    room_cpu = machine.allocatable_cpu - NODE_OVERHEAD_CPU
    room_memory = machine.allocatable_memory_gb - NODE_OVERHEAD_MEMORY_GB
    if dask.scheduler_cpu > room_cpu or dask.scheduler_memory_gb > room_memory:
        problems.add(
            "dask.schedulerMemoryGb" if dask.scheduler_memory_gb > room_memory else "dask.schedulerCpu",
            dask.scheduler_memory_gb if dask.scheduler_memory_gb > room_memory else dask.scheduler_cpu,
            f"does not fit a {dask.scheduler_machine_type} scheduler node ({room_cpu:.1f} CPU, {room_memory:.1f} GiB "
            "after GKE's reservation and DaemonSets)",
        )
