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
from gpudask.plan import checks as recording_checks
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


def _region(location: str) -> str:
    return location if re.fullmatch(r"[a-z]+-[a-z]+\d+", location) else location.rsplit("-", 1)[0]


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

    for p in rec.of_type(recording_checks.NODE_POOL):
        config = p.inputs.get("nodeConfig") or {}
        pool = str(p.inputs.get("name", p.name))
        nodes = int((p.inputs.get("autoscaling") or {}).get("totalMaxNodeCount", p.inputs.get("nodeCount", 1)))
        region = _region(str(p.inputs.get("location", "")))
        spot = bool(config.get("spot"))
        machine = str(config.get("machineType", ""))
        family = machine.split("-", 1)[0]
        cpu_metric = CPU_METRICS.get(family, f"{family.upper()}_CPUS")
        if spot:
            cpu_metric = f"PREEMPTIBLE_CPUS or {cpu_metric}"
        add(region, cpu_metric, _vcpus(machine) * nodes, pool)
        for acc in config.get("guestAccelerators") or []:
            gpus = int(acc.get("count", 0)) * nodes
            metric = GPU_METRICS.get(str(acc.get("type")), f"{str(acc.get('type')).upper()}_GPUS")
            add(region, f"PREEMPTIBLE_{metric}" if spot else metric, gpus, pool)
            add("global", "GPUS_ALL_REGIONS", gpus, pool)
        disk = DISK_METRICS.get(str(config.get("diskType", "pd-balanced")), "DISKS_TOTAL_GB")
        add(region, disk, int(config.get("diskSizeGb", 100)) * nodes, pool)
    return [
        {"region": region, "metric": metric, "count": count, "for": ", ".join(pools)}
        for (region, metric), (count, pools) in sorted(rows.items(), key=lambda kv: (kv[0][0] == "global", kv[0]))
    ]
