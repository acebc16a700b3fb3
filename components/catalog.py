"""Machine catalogs: what a node of each type offers.

Sources (see GOTCHAS.md): the Compute Engine A2 machine table and
GoogleCloudPlatform/cluster-toolkit gpu_definition.tf for the A100 types; GKE's
"node allocatable resources" formula for what Kubernetes can schedule on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

A100_40GB = "nvidia-tesla-a100"
A100_80GB = "nvidia-a100-80gb"
L4 = "nvidia-l4"
T4 = "nvidia-tesla-t4"


@dataclass(frozen=True)
class MachineType:
    name: str
    vcpu: int
    memory_gb: int
    accelerator: str | None = None
    gpus: int = 0

    @property
    def allocatable_cpu(self) -> float:
        """vCPUs Kubernetes can schedule after GKE's kubelet/system reservation."""
        return round(self.vcpu - _reserved_cpu(self.vcpu), 3)

    @property
    def allocatable_memory_gb(self) -> float:
        """GiB Kubernetes can schedule after GKE's reservation and eviction threshold."""
        return round(self.memory_gb - _reserved_memory_gb(self.memory_gb) - 0.1, 3)


def _reserved_cpu(vcpu: int) -> float:
    # 6% of the first core, 1% of the next, 0.5% of the next two, 0.25% above four.
    tiers = ((1, 0.06), (1, 0.01), (2, 0.005), (math.inf, 0.0025))
    return _tiered(vcpu, tiers)


def _reserved_memory_gb(memory_gb: int) -> float:
    # 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112, 2% above 128.
    tiers = ((4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (math.inf, 0.02))
    return _tiered(memory_gb, tiers)


def _tiered(amount: float, tiers: tuple[tuple[float, float], ...]) -> float:
    reserved, left = 0.0, float(amount)
    for size, share in tiers:
        step = min(left, size)
        reserved += step * share
        left -= step
        if left <= 0:
            break
    return reserved


def _a2(name: str, gpus: int, vcpu: int, memory_gb: int, accelerator: str) -> MachineType:
    return MachineType(name, vcpu, memory_gb, accelerator, gpus)


A100_MACHINE_TYPES: dict[str, MachineType] = {
    m.name: m
    for m in (
        _a2("a2-highgpu-1g", 1, 12, 85, A100_40GB),
        _a2("a2-highgpu-2g", 2, 24, 170, A100_40GB),
        _a2("a2-highgpu-4g", 4, 48, 340, A100_40GB),
        _a2("a2-highgpu-8g", 8, 96, 680, A100_40GB),
        _a2("a2-megagpu-16g", 16, 96, 1360, A100_40GB),
        _a2("a2-ultragpu-1g", 1, 12, 170, A100_80GB),
        _a2("a2-ultragpu-2g", 2, 24, 340, A100_80GB),
        _a2("a2-ultragpu-4g", 4, 48, 680, A100_80GB),
        _a2("a2-ultragpu-8g", 8, 96, 1360, A100_80GB),
    )
}

# One small GPU for the scheduler: dask-cudf graphs carry cuDF objects the scheduler must
# deserialize, and GKE mounts the driver only into pods that request a GPU. An A100 is waste.
# g2-standard-4 bundles one L4; n1-standard-4 takes one T4 as a guest accelerator.
SCHEDULER_GPU_MACHINE_TYPES: dict[str, MachineType] = {
    m.name: m
    for m in (
        MachineType("g2-standard-4", 4, 16, L4, 1),
        MachineType("n1-standard-4", 4, 15, T4, 1),
    )
}
DEFAULT_SCHEDULER_MACHINE_TYPE = "g2-standard-4"

# Every GPU machine type a node pool of this stack may use.
GPU_MACHINE_TYPES: dict[str, MachineType] = {**A100_MACHINE_TYPES, **SCHEDULER_GPU_MACHINE_TYPES}

# Zones offering each small accelerator, where we checked (Compute Engine "GPU regions and
# zones" table, 2026-11-22); other regions are not checked here.
ACCELERATOR_ZONES: dict[str, dict[str, tuple[str, ...]]] = {
    L4: {"us-central1": ("us-central1-a", "us-central1-b", "us-central1-c")},
    T4: {"us-central1": ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f")},
}

# CPU machine types offered for the system pool (operator, scheduler, system pods).
CPU_MACHINE_TYPES: dict[str, MachineType] = {
    m.name: m
    for m in (
        MachineType("e2-standard-2", 2, 8),
        MachineType("e2-standard-4", 4, 16),
        MachineType("e2-standard-8", 8, 32),
        MachineType("e2-standard-16", 16, 64),
        MachineType("n2-standard-2", 2, 8),
        MachineType("n2-standard-4", 4, 16),
        MachineType("n2-standard-8", 8, 32),
        MachineType("n2-standard-16", 16, 64),
    )
}

# Room left on every GPU node for GKE's own DaemonSets (kube-proxy, logging,
# metadata server, device plugin, the driver installer): what worker pods must not claim.
NODE_OVERHEAD_CPU = 1.0
NODE_OVERHEAD_MEMORY_GB = 3.0
# The same room on a CPU (system) node, which runs no GPU DaemonSets.
CPU_NODE_OVERHEAD_CPU = 0.5
CPU_NODE_OVERHEAD_MEMORY_GB = 1.5


# A GKE node's pod-allocatable ephemeral storage (GKE docs, "Plan GKE Standard node sizes", node
# allocatable resources): the boot disk's filesystem (~94% of the disk: a 100 GB disk shows
# capacity 98831908Ki) less the kubelet's 10% eviction threshold and a system reservation of
# min(50% of the disk, 6 GiB + 35% of it, 100 GiB). Checked against the docs' example: a 100 GB
# disk -> 47060071478 bytes (43.8 GiB) allocatable.
BOOT_DISK_FILESYSTEM_SHARE = 98831908 / (100 * 1024 * 1024)


def allocatable_ephemeral_storage_gb(boot_disk_gb: float) -> float:
    """GiB of ephemeral storage pods can request on a GKE node with this boot disk."""
    reserved = min(0.5 * boot_disk_gb, 6 + 0.35 * boot_disk_gb, 100)
    return boot_disk_gb * BOOT_DISK_FILESYSTEM_SHARE * 0.9 - reserved


def node_overhead(gpus: int) -> tuple[float, float]:
    """(CPU, GB) of a node's allocatable that DaemonSets take, by whether the node has GPUs."""
    return (
        (NODE_OVERHEAD_CPU, NODE_OVERHEAD_MEMORY_GB) if gpus else (CPU_NODE_OVERHEAD_CPU, CPU_NODE_OVERHEAD_MEMORY_GB)
    )


def gpu_pod_capacity(node_gpus: int, max_nodes: int, gpus_per_pod: int) -> int:
    """How many pods asking `gpus_per_pod` GPUs a pool holds at its maximum size (a pod's GPUs
    are all on one node)."""
    return (node_gpus // gpus_per_pod) * max_nodes


# --- names the stack, GKE and Kubernetes share (one spelling each) -----------------------------
GPU_RESOURCE = "nvidia.com/gpu"
# GKE's taint on GPU nodes, in the GKE API's words (node pool config) and Kubernetes' (tolerations).
GPU_TAINT_VALUE = "present"
GPU_TAINT_EFFECT_GKE, GPU_TAINT_EFFECT = "NO_SCHEDULE", "NoSchedule"
# Every taint effect of the GKE API (NodeTaint.Effect) -> the effect its nodes carry in Kubernetes.
TAINT_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}
# On every Kubernetes object the stack declares itself.
MANAGED_BY_LABELS = {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "gpu-dask"}
