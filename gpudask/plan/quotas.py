"""The Compute Engine quotas a stack needs at full scale, from what it declares.

Metric names are Compute Engine's (`gcloud compute regions describe <region>` lists them):
GPUs per accelerator type and region (PREEMPTIBLE_* for spot), vCPUs per machine family,
boot disk GB, and the project-wide GPUS_ALL_REGIONS. Spot VMs use the PREEMPTIBLE_* quota
where the project has one and the regular quota otherwise (Compute Engine quotas docs).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from components.catalog import A100_MACHINE_TYPES, CPU_MACHINE_TYPES
from gpudask.record.node_pools import declared_node_pools
from gpudask.record.recorder import Recording

GPU_METRICS = {
    "nvidia-tesla-a100": "NVIDIA_A100_GPUS",
    "nvidia-a100-80gb": "NVIDIA_A100_80GB_GPUS",
    "nvidia-l4": "NVIDIA_L4_GPUS",
    "nvidia-tesla-t4": "NVIDIA_T4_GPUS",
}
# vCPU quota per machine family; E2 and N1 count against the region's plain CPUS.
CPU_METRICS = {"a2": "A2_CPUS", "g2": "G2_CPUS", "n2": "N2_CPUS", "e2": "CPUS", "n1": "CPUS"}
# pd-balanced and pd-ssd draw on the SSD quota; pd-standard on DISKS_TOTAL_GB.
DISK_METRICS = {"pd-ssd": "SSD_TOTAL_GB", "pd-balanced": "SSD_TOTAL_GB", "pd-standard": "DISKS_TOTAL_GB"}
_VCPUS = re.compile(r"-(\d+)(g)?$")


def _vcpus(machine_type: str) -> int:
    known = A100_MACHINE_TYPES.get(machine_type) or CPU_MACHINE_TYPES.get(machine_type)
    if known is not None:
        return known.vcpu
    match = _VCPUS.search(machine_type)  # e.g. g2-standard-8, n1-standard-4
    return int(match.group(1)) if match and not match.group(2) else 0


def needed(rec: Recording) -> list[dict[str, Any]]:
    """One row per (region, metric): the count every pool at its maximum needs, and which pools."""
    rows: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0.0, []])

    def add(region: str, metric: str, count: float, pool: str) -> None:
        row = rows[(region, metric)]
        row[0] += count
        if pool not in row[1]:
            row[1].append(pool)

    for p in declared_node_pools(rec):
        nodes = p.max_nodes
        machine = p.machine.name
        family = machine.split("-", 1)[0]
        cpu_metric = CPU_METRICS.get(family, f"{family.upper()}_CPUS")
        if p.spot:
            cpu_metric = f"PREEMPTIBLE_CPUS or {cpu_metric}"
        add(p.region, cpu_metric, _vcpus(machine) * nodes, p.name)
        if p.accelerator:
            gpus = p.gpus * nodes
            metric = GPU_METRICS.get(p.accelerator, f"{p.accelerator.upper()}_GPUS")
            add(p.region, f"PREEMPTIBLE_{metric}" if p.spot else metric, gpus, p.name)
            add("global", "GPUS_ALL_REGIONS", gpus, p.name)
        disk = DISK_METRICS.get(p.disk_type, "DISKS_TOTAL_GB")
        add(p.region, disk, p.disk_gb * nodes, p.name)
    return [
        {"region": region, "metric": metric, "count": count, "for": ", ".join(pools)}
        for (region, metric), (count, pools) in sorted(rows.items(), key=lambda kv: (kv[0][0] == "global", kv[0]))
    ]
