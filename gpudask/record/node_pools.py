"""The stack's node pools, one model for everyone who needs GKE's nodes: the plan's scheduling
check, its cost and idle-node figures (gpudask/plan/), and the local control plane's kwok nodes
(gpudask/local/cluster/nodes.py).

A stack that creates GKE: every `gcp:container/nodePool:NodePool` the program declared (so a pool
added to the stack appears everywhere without a change), its machine from components/catalog.py.
A stack with `existingCluster` declares no pool: its pools are what its settings say about the
cluster (`existingCluster.systemPool` with `systemMachineType` / `systemMinNodes` /
`systemMaxNodes`, each `gpuNodePools` entry by its GKE name, and `existingCluster.schedulerPool`).

Each pool carries what GKE puts on its nodes: the labels (`node_labels`) and taints, including
the `nvidia.com/gpu` taint GKE adds to accelerator pools of a cluster that also has a CPU pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from components import catalog
from components.catalog import (
    GPU_RESOURCE,
    GPU_TAINT_EFFECT,
    GPU_TAINT_VALUE,
    TAINT_EFFECTS,
    MachineType,
    node_overhead,
)
from components.settings import StackSettings
from gpudask.record.recorder import Recording
from gpudask.record.resource_types import CLUSTER, NODE_POOL
from gpudask.record.view import recorded_settings

NODEPOOL_LABEL = "cloud.google.com/gke-nodepool"
GKE_GPU_TAINT = {"key": GPU_RESOURCE, "value": GPU_TAINT_VALUE, "effect": GPU_TAINT_EFFECT}
# GKE-managed driver modes as gpuDriverInstallationConfig.gpuDriverVersion spells them; the
# node label `cloud.google.com/gke-gpu-driver-version` is the lowercase word.
MANAGED_DRIVERS = ("DEFAULT", "LATEST")


def machine_types() -> dict[str, MachineType]:
    """Every machine type the catalog knows, whatever table it sits in."""
    found: dict[str, MachineType] = {}
    for value in vars(catalog).values():
        if isinstance(value, dict) and value and all(isinstance(v, MachineType) for v in value.values()):
            found.update(value)
    return found


@dataclass(frozen=True)
class NodePool:
    """One GKE node pool, and what each of its nodes looks like to the Kubernetes scheduler."""

    name: str
    machine: MachineType
    zones: tuple[str, ...]
    region: str
    min_nodes: int
    max_nodes: int
    spot: bool
    disk_gb: int
    disk_type: str = "pd-balanced"
    secondary_boot_disks: int = 0
    """Image cache disks attached to every node (nodeConfig.secondaryBootDisks)."""
    labels: dict[str, str] = field(default_factory=dict)
    """The pool's own node labels (nodeConfig.labels); `node_labels` adds those GKE sets."""
    taints: tuple[dict[str, str], ...] = ()
    """Every taint its nodes carry, in Kubernetes' words, GKE's GPU taint included."""
    accelerator: str | None = None
    gpus: int = 0
    driver_version: str | None = None
    """GKE-managed driver: DEFAULT / LATEST; None: installed by the stack's DaemonSet."""

    @property
    def node_labels(self) -> dict[str, str]:
        """The labels GKE puts on every node of the pool, the pool's own included."""
        labels = {NODEPOOL_LABEL: self.name, **self.labels}
        if self.accelerator:
            labels["cloud.google.com/gke-accelerator"] = self.accelerator
        if self.driver_version:
            labels["cloud.google.com/gke-gpu-driver-version"] = self.driver_version.lower()
        if self.spot:
            labels["cloud.google.com/gke-spot"] = "true"
        return labels

    @property
    def room_cpu(self) -> float:
        """Allocatable CPU of one node less the room GKE's DaemonSets take: what workloads get."""
        return self.machine.allocatable_cpu - node_overhead(self.gpus)[0]

    @property
    def room_memory_gb(self) -> float:
        return self.machine.allocatable_memory_gb - node_overhead(self.gpus)[1]


def _zones_and_region(location: str, zones: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    region = location if location.count("-") == 1 else location.rsplit("-", 1)[0]
    zones = zones or (location,)
    if zones == (region,):  # a regional pool with no nodeLocations: GKE picks zones; take the first
        zones = (f"{region}-a",)
    return zones, region


def _with_gke_gpu_taint(pools: list[NodePool]) -> list[NodePool]:
    """GKE taints accelerator pools `nvidia.com/gpu=present:NoSchedule` when the cluster also has a
    CPU pool (so that only pods asking for a GPU land there)."""
    if not any(p.gpus == 0 for p in pools):
        return pools
    return [
        replace(p, taints=(*p.taints, GKE_GPU_TAINT))
        if p.gpus and not any(t["key"] == GPU_RESOURCE for t in p.taints)
        else p
        for p in pools
    ]


def existing_cluster_pools(settings: StackSettings) -> list[NodePool]:
    """The pools of a cluster the stack does not own, as its settings describe them: the system
    pool (on demand, no accelerator), each `gpuNodePools` entry under its GKE name, and the
    small-GPU pool `existingCluster.schedulerPool` names, with the taints it lists."""
    zones, region = _zones_and_region(settings.location, ())
    managed = settings.gke_driver_version
    driver = None if managed == "INSTALLATION_DISABLED" else managed
    found = [
        NodePool(
            name=settings.system_pool,
            machine=settings.system_machine,
            zones=zones,
            region=region,
            min_nodes=settings.system_min_nodes,
            max_nodes=settings.system_max_nodes,
            spot=False,
            disk_gb=100,
        )
    ]
    for gpu in settings.gpu_node_pools.values():
        gpu_zones, _ = _zones_and_region(settings.location, gpu.zones)
        found.append(
            NodePool(
                name=gpu.name,
                machine=gpu.machine,
                zones=gpu_zones,
                region=region,
                min_nodes=gpu.min_nodes,
                max_nodes=gpu.max_nodes,
                spot=gpu.spot,
                disk_gb=gpu.disk_size_gb,
                accelerator=gpu.accelerator_type,
                gpus=gpu.gpus_per_node,
                driver_version=driver,
            )
        )
    scheduler = settings.existing_cluster.scheduler_pool if settings.existing_cluster else None
    if scheduler is not None and scheduler.machine_type in catalog.SCHEDULER_GPU_MACHINE_TYPES:
        machine = catalog.SCHEDULER_GPU_MACHINE_TYPES[scheduler.machine_type]
        found.append(
            NodePool(
                name=scheduler.name,
                machine=machine,
                zones=zones,
                region=region,
                min_nodes=0,
                max_nodes=scheduler.max_nodes,
                spot=scheduler.spot,
                disk_gb=100,
                taints=tuple({"key": k, "value": v, "effect": e} for k, v, e in scheduler.taints),
                accelerator=machine.accelerator,
                gpus=machine.gpus,
                driver_version=driver,
            )
        )
    return _with_gke_gpu_taint(found)


def unknown_machine_types(rec: Recording) -> list[str]:
    """One line per declared node pool whose machine type components/catalog.py does not know."""
    known = machine_types()
    return [
        f"node pool {p.inputs.get('name') or p.name}: nodeConfig.machineType "
        f"{(p.inputs.get('nodeConfig') or {}).get('machineType')!r} is not in components/catalog.py; "
        f"known: {', '.join(sorted(known))}"
        for p in rec.of_type(NODE_POOL)
        if str((p.inputs.get("nodeConfig") or {}).get("machineType", "")) not in known
    ]


def _declared_pool(inputs: dict[str, Any], fallback_name: str, machine: MachineType, location: str) -> NodePool:
    config = inputs.get("nodeConfig") or {}
    zones, region = _zones_and_region(location, tuple(inputs.get("nodeLocations") or ()))
    autoscaling = inputs.get("autoscaling") or {}
    node_count = int(inputs.get("nodeCount") or inputs.get("initialNodeCount") or 1)
    accelerators = config.get("guestAccelerators") or []
    driver = None
    if accelerators:
        # No gpuDriverInstallationConfig: GKE installs its default driver.
        driver = (accelerators[0].get("gpuDriverInstallationConfig") or {}).get("gpuDriverVersion") or "DEFAULT"
    return NodePool(
        name=str(inputs.get("name") or fallback_name),
        machine=machine,
        zones=zones,
        region=region,
        min_nodes=int(autoscaling.get("totalMinNodeCount", autoscaling.get("minNodeCount", node_count))),
        max_nodes=int(autoscaling.get("totalMaxNodeCount", autoscaling.get("maxNodeCount", node_count))),
        spot=bool(config.get("spot") or config.get("preemptible")),
        disk_gb=int(config.get("diskSizeGb") or 100),
        disk_type=str(config.get("diskType") or "pd-balanced"),
        secondary_boot_disks=len(config.get("secondaryBootDisks") or []),
        labels={str(k): str(v) for k, v in (config.get("labels") or {}).items()},
        taints=tuple(
            {"key": t["key"], "value": t.get("value", ""), "effect": TAINT_EFFECTS.get(t["effect"], t["effect"])}
            for t in config.get("taints") or []
        ),
        accelerator=str(accelerators[0]["type"]) if accelerators else None,
        gpus=int(sum(a.get("count", 0) for a in accelerators)) if accelerators else 0,
        driver_version=str(driver) if driver in MANAGED_DRIVERS else None,
    )


def declared_node_pools(rec: Recording) -> list[NodePool]:
    """The node pools the program declared (none for an `existingCluster` stack): what the stack
    pays for and what counts against its quotas. A pool whose machine type the catalog lacks is
    left out: `unknown_machine_types` names it (the settings parser refuses such a type before
    the program declares a pool)."""
    known = machine_types()
    clusters = rec.of_type(CLUSTER)
    cluster_location = str(clusters[0].inputs.get("location", "")) if clusters else ""
    found = []
    for recorded in rec.of_type(NODE_POOL):
        machine = known.get(str((recorded.inputs.get("nodeConfig") or {}).get("machineType", "")))
        if machine is not None:
            location = str(recorded.inputs.get("location") or cluster_location)
            found.append(_declared_pool(recorded.inputs, recorded.name, machine, location))
    return _with_gke_gpu_taint(found)


def node_pools(rec: Recording) -> list[NodePool]:
    """The pools the stack's pods run on: those it declared or, for an `existingCluster` stack,
    those its settings describe."""
    if not rec.of_type(NODE_POOL) and rec.config.get("gpu-dask:existingCluster"):
        return existing_cluster_pools(recorded_settings(rec))
    return declared_node_pools(rec)
