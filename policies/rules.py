"""What this stack must never do, as pure functions over Pulumi resource inputs.

Each rule takes a resource's type and its input properties (camelCase, as Pulumi passes
them to a policy pack) and returns the violations it finds ([] when compliant). A rule
that reads a value still unknown during a preview is stopped by pulumi-policy itself, which
reports it as unknown rather than calling it compliant. `pack.py` wires these into a Pulumi
CrossGuard policy pack; the tests run them without Pulumi.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
SERVICE = "kubernetes:core/v1:Service"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
DASK_CLUSTER = "kubernetes:kubernetes.dask.org/v1:DaskCluster"
INTERNAL_LB = "networking.gke.io/load-balancer-type"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
DRIVER_DAEMONSET = ("kube-system", "nvidia-driver-installer")

Check = Callable[[str, Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Check


def _get(props: Mapping[str, Any], path: str) -> Any:
    value: Any = props
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


# --- rules ---------------------------------------------------------------------------------------
def no_public_scheduler(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type == SERVICE:
        service, annotations = _get(props, "spec") or {}, _get(props, "metadata.annotations") or {}
    elif resource_type == DASK_CLUSTER:
        service, annotations = _get(props, "spec.scheduler.service") or {}, _get(props, "metadata.annotations") or {}
    else:
        return []
    kind = service.get("type")
    if kind == "NodePort":
        return [f"a {resource_type.rsplit(':', 1)[-1]} of type NodePort opens the port on every node"]
    if kind != "LoadBalancer":
        return []
    problems = []
    if annotations.get(INTERNAL_LB) != "Internal":
        problems.append(f"a LoadBalancer without `{INTERNAL_LB}: Internal` is reachable from the internet")
    if not service.get("loadBalancerSourceRanges"):
        problems.append("a LoadBalancer without loadBalancerSourceRanges accepts every source address")
    return problems


def no_open_control_plane(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type != CLUSTER:
        return []
    blocks = _get(props, "masterAuthorizedNetworksConfig.cidrBlocks")
    if _get(props, "masterAuthorizedNetworksConfig") is None:
        return ["masterAuthorizedNetworksConfig is missing: the control plane accepts any address"]
    problems = []
    for block in blocks or []:
        cidr = block.get("cidrBlock") if isinstance(block, Mapping) else None
        if isinstance(cidr, str) and ipaddress.ip_network(cidr, strict=False).prefixlen == 0:
            problems.append(f"masterAuthorizedNetworksConfig allows {cidr}: the whole internet")
    if _get(props, "privateClusterConfig.enablePrivateNodes") is not True:
        problems.append("privateClusterConfig.enablePrivateNodes is not true: nodes get public IPs")
    return problems


def _node_configs(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if resource_type == NODE_POOL or (resource_type == CLUSTER and _get(props, "nodeConfig") is not None):
        yield "nodeConfig", _get(props, "nodeConfig") or {}


def no_default_compute_service_account(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    problems = []
    if resource_type == CLUSTER and _get(props, "nodeConfig") is None:
        # Even with removeDefaultNodePool, GKE first creates the default pool from nodeConfig:
        # without one it boots as the Compute Engine default service account.
        problems.append(
            "nodeConfig is unset: the default node pool (even one removeDefaultNodePool deletes) "
            "boots as the Compute Engine default service account"
        )
    for path, config in _node_configs(resource_type, props):
        account = config.get("serviceAccount")
        if account is None or account == "default":
            problems.append(f"{path}.serviceAccount is unset: nodes run as the Compute Engine default service account")
        elif isinstance(account, str) and account.endswith("-compute@developer.gserviceaccount.com"):
            problems.append(f"{path}.serviceAccount {account} is the Compute Engine default service account")
    return problems


def gke_metadata_server(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    problems = []
    if resource_type == CLUSTER and not _get(props, "workloadIdentityConfig.workloadPool"):
        problems.append("workloadIdentityConfig.workloadPool is unset: no Workload Identity")
    for path, config in _node_configs(resource_type, props):
        mode = _get(config, "workloadMetadataConfig.mode")
        if mode != "GKE_METADATA":
            problems.append(
                f"{path}.workloadMetadataConfig.mode is {mode!r}, not GKE_METADATA: pods can read node credentials"
            )
    return problems


def _images(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for key in ("containers", "initContainers"):
            for container in value.get(key) or []:
                if isinstance(container, Mapping) and isinstance(container.get("image"), str):
                    yield container["image"]
        for child in value.values():
            if isinstance(child, (Mapping, list)):
                yield from _images(child)
    elif isinstance(value, list):
        for child in value:
            yield from _images(child)


def pinned_images(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if not resource_type.startswith("kubernetes:"):
        return []
    problems = []
    for image in sorted(set(_images(props))):
        if "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        if ":" not in last:
            problems.append(f"image {image} has no tag")
        elif last.endswith(":latest"):
            problems.append(f"image {image} uses :latest")
    return problems


def _accelerators(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [a for a in _get(props, "nodeConfig.guestAccelerators") or [] if isinstance(a, Mapping)]


def gpu_pool_tainted(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type != NODE_POOL or not _accelerators(props):
        return []
    taints = _get(props, "nodeConfig.taints") or []
    if GPU_TAINT not in taints:
        return ["a GPU node pool without the taint nvidia.com/gpu=present:NO_SCHEDULE takes pods that need no GPU"]
    return []


def driver_matches_pools(resources: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Stack-wide: Google's installer DaemonSet and a GKE-managed driver must not both install."""
    daemonset = any(
        t == DAEMON_SET and (_get(p, "metadata.namespace"), _get(p, "metadata.name")) == DRIVER_DAEMONSET
        for t, p in resources
    )
    problems = []
    for resource_type, props in resources:
        if resource_type != NODE_POOL:
            continue
        for accelerator in _accelerators(props):
            version = _get(accelerator, "gpuDriverInstallationConfig.gpuDriverVersion")
            name = _get(props, "name") or "(unnamed pool)"
            if daemonset and version != "INSTALLATION_DISABLED":
                problems.append(
                    f"node pool {name}: GKE installs the driver ({version}) while the nvidia-driver-installer DaemonSet does too"
                )
            if not daemonset and version in (None, "INSTALLATION_DISABLED"):
                problems.append(f"node pool {name}: no driver at all (no DaemonSet, GKE driver {version})")
    return problems


RULES = [
    Rule(
        "no-public-dask-scheduler",
        "A Dask scheduler runs any code it is sent: never a public load balancer or NodePort.",
        no_public_scheduler,
    ),
    Rule(
        "no-open-control-plane",
        "The GKE control plane lists its authorized networks, never 0.0.0.0/0; nodes are private.",
        no_open_control_plane,
    ),
    Rule(
        "no-default-compute-service-account",
        "Nodes run as a dedicated least-privilege service account.",
        no_default_compute_service_account,
    ),
    Rule(
        "gke-metadata-server",
        "Workload Identity on, and the GKE metadata server on every node pool.",
        gke_metadata_server,
    ),
    Rule("pinned-images", "Every container image is pinned to a tag (not latest) or a digest.", pinned_images),
    Rule("gpu-pool-tainted", "GPU node pools carry the nvidia.com/gpu taint.", gpu_pool_tainted),
]
STACK_RULES = [
    (
        "driver-daemonset-xor-gke-driver",
        "Exactly one of the driver DaemonSet and a GKE-managed driver installs the NVIDIA driver.",
        driver_matches_pools,
    ),
]
