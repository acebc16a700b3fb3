"""The one owner of prices: the price list (prices.yaml, dated and sourced) and what one node of a
pool costs per hour.

Both users read it from here: `gpudask plan` prices the node pools the program declared
(gpudask/plan/report.py, from the recorded `nodeConfig`), and the dashboard's per-pool cost tile
multiplies node counts by the same per-node figures (components/dashboard_spec.py, from the node
configs the pure builders of components/gke_spec.py produce). components/ never imports gpudask/,
so the lower layer owns it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components import gke_spec
from components.settings import StackSettings

PRICES_FILE = Path(__file__).with_name("prices.yaml")


@functools.cache
def _load() -> dict[str, Any]:
    return yaml.safe_load(PRICES_FILE.read_text())


def load() -> dict[str, Any]:
    """The price list (a fresh copy: callers may not change the cached one)."""
    return yaml.safe_load(yaml.safe_dump(_load()))


@dataclass(frozen=True)
class NodePrice:
    """One node of a pool, per hour."""

    on_demand: float
    spot: float
    disk_hourly: float
    """Its boot disk."""
    secondary_disk_hourly: float = 0.0
    """Its secondary boot disks (image cache); 0 without one."""
    missing: tuple[str, ...] = ()
    """What the price list lacks (priced as 0)."""

    def machine_hourly(self, spot: bool) -> float:
        return self.spot if spot else self.on_demand

    def hourly(self, spot: bool) -> float:
        """Machine (with its GPUs) plus boot disk and any secondary boot disk."""
        return self.machine_hourly(spot) + self.disk_hourly + self.secondary_disk_hourly


def node_price(
    machine_type: str,
    accelerators: Sequence[tuple[str, int]],
    disk_type: str,
    disk_gb: int,
    secondary_disks: int = 0,
) -> NodePrice:
    """A2 prices are quoted per GPU, vCPUs and memory included; other GPU machines (G2, N1 with T4)
    are priced as machine plus GPUs, whichever of the two the list has."""
    prices = _load()
    missing: list[str] = []
    vm = prices["per_machine_hour"].get(machine_type)
    on_demand, spot = (vm["on_demand"], vm["spot"]) if vm else (0.0, 0.0)
    for accelerator, count in accelerators:
        gpu = prices["per_gpu_hour"].get(accelerator)
        if gpu is None:
            missing.append(accelerator)
            continue
        on_demand += gpu["on_demand"] * count
        spot += gpu["spot"] * count
    if vm is None and not accelerators:
        missing.append(machine_type)
    per_gb_month = prices["per_disk_gb_month"].get(disk_type)
    if per_gb_month is None:
        missing.append(disk_type)
    hours = float(prices["hours_per_month"])
    secondary = (
        secondary_disks
        * prices["secondary_boot_disk_gb"]
        * prices["per_disk_gb_month"][prices["secondary_boot_disk_type"]]
    )
    return NodePrice(
        on_demand=round(on_demand, 3),
        spot=round(spot, 3),
        disk_hourly=round((per_gb_month or 0.0) * disk_gb / hours, 4),
        secondary_disk_hourly=round(secondary / hours, 4),
        missing=tuple(missing),
    )


def node_config_price(config: Mapping[str, Any]) -> NodePrice:
    """A pool's `nodeConfig` as the program declares it: Pulumi's camelCase (a recording) or the
    snake_case of components/gke_spec.py's builders."""

    def get(camel: str, snake: str, default: Any = None) -> Any:
        return config.get(camel, config.get(snake, default))

    accelerators = [
        (str(a["type"]), int(a.get("count", 0))) for a in get("guestAccelerators", "guest_accelerators") or []
    ]
    return node_price(
        str(get("machineType", "machine_type", "")),
        accelerators,
        str(get("diskType", "disk_type", "pd-balanced")),
        int(get("diskSizeGb", "disk_size_gb", 100)),
        len(get("secondaryBootDisks", "secondary_boot_disks") or []),
    )


def pool_node_hourly(settings: StackSettings) -> dict[str, float]:
    """GKE pool name -> one node's hourly cost, for every pool a stack that creates GKE declares
    (the system pool, the A100 pools, the scheduler's), from the node configs the program sends."""
    configs: dict[str, tuple[Mapping[str, Any], bool]] = {
        settings.system_pool: (gke_spec.system_node_config(settings.system_machine_type, "", settings.labels), False),
    }
    pools = [*settings.gpu_node_pools.values(), *([settings.scheduler_pool] if settings.scheduler_pool else [])]
    for pool in pools:
        config = gke_spec.gpu_node_config(
            pool,
            "",
            driver_version=settings.gke_driver_version,
            image_streaming=settings.image_streaming,
            labels=settings.labels,
        )
        configs[pool.name] = (config, pool.spot)
    return {name: round(node_config_price(config).hourly(spot), 4) for name, (config, spot) in configs.items()}
