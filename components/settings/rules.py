"""Cross-field rules: CIDRs and networks, client reachability, image pins, the driver against the images."""

from __future__ import annotations

import ipaddress
from typing import Any

from components import gpu_drivers
from components.settings.keys import DEFAULT_RAPIDS_IMAGE
from components.settings.model import DaskSettings, NetworkSettings
from components.settings.reader import _Problems


def _check_cidrs(problems: _Problems, key: str, cidrs: tuple[str, ...], *, allow_empty: bool) -> None:
    if not cidrs and not allow_empty:
        problems.add(key, [], "must list at least one CIDR (e.g. your office or VPN range)")
    for i, cidr in enumerate(cidrs):
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            problems.add(f"{key}[{i}]", cidr, "is not a valid CIDR (like 203.0.113.0/24)")
            continue
        if network.prefixlen == 0:
            problems.add(f"{key}[{i}]", cidr, "opens the range to the whole internet; list specific ranges")


def image_pin_problem(image: str) -> str | None:
    """Why this image reference is not pinned (None when it is: a tag other than latest, or a
    digest). The policy pack keeps its own copy (its own venv); tests/test_policies.py checks
    that the two agree."""
    if not image or "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"has no tag; pin a version (e.g. {DEFAULT_RAPIDS_IMAGE})"
    if last.endswith(":latest"):
        return "uses :latest; pin a version so every node runs the same image"
    return None


def _check_image(problems: _Problems, key: str, image: str) -> None:
    problem = image_pin_problem(image)
    if problem:
        problems.add(key, image, problem)


def _check_networks(problems: _Problems, network: NetworkSettings) -> None:
    parsed: dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network] = {}
    for key, cidr in (
        ("subnetCidr", network.subnet_cidr),
        ("podsCidr", network.pods_cidr),
        ("servicesCidr", network.services_cidr),
        ("masterCidr", network.master_cidr),
    ):
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            problems.add(key, cidr, "is not a valid CIDR (like 10.10.0.0/20)")
            continue
        if not net.is_private:
            problems.add(key, cidr, "must be a private (RFC 1918) range")
        if key == "masterCidr" and net.prefixlen != 28:
            problems.add(key, cidr, "must be a /28 (GKE's control-plane range size)")
        for other_key, other in parsed.items():
            if net.overlaps(other):
                problems.add(key, cidr, f"overlaps {other_key} ({other})")
        parsed[key] = net
    for i, cidr in enumerate(network.peered_cidrs):
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            problems.add(f"peeredCidrs[{i}]", cidr, "is not a valid CIDR (like 10.20.0.0/16)")
            continue
        for other_key, other in parsed.items():
            if net.overlaps(other):  # peering and routes refuse overlapping ranges
                problems.add(f"peeredCidrs[{i}]", cidr, f"overlaps {other_key} ({other})")


def _check_clients_reach_the_vpc(problems: _Problems, network: NetworkSettings, dask: DaskSettings) -> None:
    """Clients of the scheduler's internal load balancer are inside the VPC or a network peered
    with or routed into it; any other range can never connect, whatever the firewall says."""
    reachable: dict[str, Any] = {"subnetCidr": network.subnet_cidr, "podsCidr": network.pods_cidr}
    reachable |= {f"peeredCidrs[{i}]": c for i, c in enumerate(network.peered_cidrs)}
    nets = {}
    for key, cidr in reachable.items():
        try:
            nets[key] = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            continue  # reported by _check_networks
    for i, cidr in enumerate(dask.client_cidrs):
        try:
            client = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            continue  # reported by _check_cidrs
        if not any(client.version == n.version and client.subnet_of(n) for n in nets.values()):
            problems.add(
                f"dask.clientCidrs[{i}]",
                cidr,
                "is outside the cluster's VPC (subnetCidr, podsCidr) and outside every peeredCidrs range "
                f"({', '.join(f'{k} {v}' for k, v in reachable.items())}): no client there can reach the "
                "scheduler; list the network it lives in under peeredCidrs (VPC peering, VPN, Interconnect)",
            )


def _check_driver_fits_images(problems: _Problems, driver: str, channel: str, dask: DaskSettings) -> None:
    """Every image that runs on a GPU must fit the driver the stack's mode installs."""
    images = {"dask.image": dask.image} if dask.scheduler_gpu or dask.worker.image == dask.image else {}
    if dask.worker.image != dask.image:
        images["dask.worker.image"] = dask.worker.image  # the default group's workers always hold a GPU
    for name, group in dask.worker_groups.items():
        if group.gpus_per_worker:
            images[f"dask.workerGroups.{name}.image"] = group.image
    for key, image in images.items():
        reason = gpu_drivers.mismatch(image, driver, channel)
        if reason:
            problems.add(key, image, reason)
