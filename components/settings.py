"""The stack's one settings object: parsed and validated before anything is declared.

`parse_settings` takes the raw config values (strings as Pulumi stores them, or
already-decoded values) and either returns a frozen `StackSettings` or raises
`SettingsError` listing every problem at once: the key, the value received and
what is allowed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dask_kubernetes.exceptions import ValidationError as DaskNameError
from dask_kubernetes.operator.validation import validate_cluster_name

from components import gpu_drivers
from components.catalog import (
    A100_MACHINE_TYPES,
    ACCELERATOR_ZONES,
    CPU_MACHINE_TYPES,
    DEFAULT_SCHEDULER_MACHINE_TYPE,
    GPU_MACHINE_TYPES,
    NODE_OVERHEAD_CPU,
    NODE_OVERHEAD_MEMORY_GB,
    SCHEDULER_GPU_MACHINE_TYPES,
    MachineType,
    gpu_pod_capacity,
)

# --- enums: the config word -> what GKE / Kubernetes / the operator calls it -------------
DRIVER_MODES: dict[str, str] = {
    # our config value -> GKE gpuDriverInstallationConfig.gpuDriverVersion
    "daemonset": "INSTALLATION_DISABLED",
    "gke-default": "DEFAULT",
    "gke-latest": "LATEST",
}
RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE", "EXTENDED")
COLOCATION_MODES = ("preferred", "required", "none")
SCHEDULER_SERVICES = ("ClusterIP", "InternalLoadBalancer")

# The current RAPIDS release on CUDA 12: the COS driver the stack installs is >= 535 (CUDA 12's
# floor); CUDA 13 needs >= 580 (GOTCHAS.md). Clients run the Dask this release pins
# (`rapids-dask-dependency` in requirements.txt; tests/test_versions.py).
DEFAULT_RAPIDS_IMAGE = "rapidsai/base:26.10-cuda12-py3.12"
SYSTEM_POOL_NAME = "system"
# The scheduler's own small GPU pool (dask.schedulerGpu), tainted so that only it lands there.
SCHEDULER_POOL_NAME = "scheduler"
# That pool's taint (components/gke_spec.py SCHEDULER_TAINT): (key, value, Kubernetes effect).
SCHEDULER_TAINT = ("gpu-dask/scheduler", "true", "NoSchedule")
TAINT_EFFECTS_K8S = ("NoSchedule", "PreferNoSchedule", "NoExecute")

_ZONE = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_GKE_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")  # clusters and node pools: <= 40
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_PROJECT_ID = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
# A Compute Engine disk image, as GKE's secondaryBootDisks.diskImage takes it.
_DISK_IMAGE = re.compile(r"^projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/global/images/[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def is_region(location: str) -> bool:
    """`us-central1` (a region: a regional cluster) rather than `us-central1-c` (a zone)."""
    return bool(_REGION.match(location))


class SettingsError(ValueError):
    """Bad stack config. `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack config:\n  - " + "\n  - ".join(problems))


# --- the settings object ---------------------------------------------------------------
@dataclass(frozen=True)
class GpuPoolSettings:
    """One A100 node pool. Accelerator type and count follow the machine type."""

    name: str
    machine_type: str
    min_nodes: int
    max_nodes: int
    spot: bool
    disk_size_gb: int
    zones: tuple[str, ...]
    """Omitted -> the cluster's location (a zonal cluster's zone, or GKE's choice in a region)."""
    secondary_boot_disk_image: str | None = None
    """Omitted -> no image cache disk: new nodes pull (or stream) the RAPIDS image. Set ->
    `projects/<p>/global/images/<name>`, a disk image holding the image, attached to every new
    node as a secondary boot disk in CONTAINER_IMAGE_CACHE mode (needs imageStreaming)."""
    scheduler_only: bool = False
    """True for the scheduler's pool: an extra taint keeps workers off it."""

    @property
    def machine(self) -> MachineType:
        return GPU_MACHINE_TYPES[self.machine_type]

    @property
    def accelerator_type(self) -> str:
        accelerator = self.machine.accelerator
        assert accelerator is not None
        return accelerator

    @property
    def gpus_per_node(self) -> int:
        return self.machine.gpus


@dataclass(frozen=True)
class WorkerGroupSettings:
    """A group of Dask workers: the DaskCluster's own (`dask.worker`) or an extra DaskWorkerGroup
    (`dask.workerGroups.<name>`, e.g. CPU workers next to the GPU ones). Both read the same keys."""

    name: str
    replicas: int
    gpus_per_worker: int
    """0 -> a CPU worker (`dask worker`) on the system pool (extra groups only)."""
    cpu: float
    memory_gb: float
    image: str
    pool: str | None
    """Omitted -> any pool that fits (GPU workers: any A100 pool; CPU workers: the system pool)."""


@dataclass(frozen=True)
class AutoscaleSettings:
    minimum: int
    maximum: int


@dataclass(frozen=True)
class DaskSettings:
    name: str
    namespace: str
    image: str
    """The scheduler's image, and every worker group's unless the group names its own."""
    worker: WorkerGroupSettings
    """The DaskCluster's own worker group (`spec.worker`): GPU workers."""
    colocation: str
    scheduler_gpu: bool
    """True (default) -> the scheduler runs on its own small GPU pool (dask-cudf needs it)."""
    scheduler_machine_type: str
    scheduler_spot: bool
    scheduler_service: str
    scheduler_cpu: float
    scheduler_memory_gb: float
    client_cidrs: tuple[str, ...]
    client_namespaces: tuple[str, ...]
    """Namespaces whose pods may reach the scheduler (NetworkPolicy); clientCidrs for addresses."""
    tls: bool
    """Mutual TLS between clients, scheduler and workers, with require-encryption on."""
    worker_groups: dict[str, WorkerGroupSettings]
    autoscale: AutoscaleSettings | None
    """Omitted -> Pulumi owns `worker.replicas`; set -> a DaskAutoscaler owns the replica count."""
    system_pool: str = SYSTEM_POOL_NAME
    """The on-demand CPU pool of the scheduler and CPU workers (`existingCluster.systemPool`)."""
    scheduler_pool: str = SCHEDULER_POOL_NAME
    """The GPU scheduler's pool (`cloud.google.com/gke-nodepool`): the one this stack creates, or
    the existing cluster's small-GPU pool `existingCluster.schedulerPool.name`."""
    scheduler_taints: tuple[tuple[str, str, str], ...] = (SCHEDULER_TAINT,)
    """(key, value, effect) of that pool's own taints, which the GPU scheduler tolerates (GKE's
    nvidia.com/gpu taint is tolerated anyway)."""

    @property
    def scheduler_address(self) -> str:
        # What the operator injects into workers as DASK_SCHEDULER_ADDRESS (tcp://); with
        # TLS the workers are given this tls:// address explicitly instead.
        return f"{self.protocol}://{self.name}-scheduler.{self.namespace}.svc.cluster.local:8786"

    @property
    def protocol(self) -> str:
        return "tls" if self.tls else "tcp"

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.name}-scheduler.{self.namespace}.svc.cluster.local:8787"

    @property
    def default_group_name(self) -> str:
        return f"{self.name}-default"


@dataclass(frozen=True)
class NetworkSettings:
    subnet_cidr: str
    pods_cidr: str
    services_cidr: str
    master_cidr: str
    peered_cidrs: tuple[str, ...] = ()
    """Networks peered with or routed into the VPC (VPC peering, VPN, Interconnect)."""


@dataclass(frozen=True)
class ExistingSchedulerPool:
    """A small-GPU (L4/T4) pool the existing cluster already has, for the GPU scheduler
    (`existingCluster.schedulerPool`): nothing is created, the scheduler is placed there."""

    name: str
    """Its GKE name: the scheduler's nodeSelector `cloud.google.com/gke-nodepool`."""
    machine_type: str
    """One of SCHEDULER_GPU_MACHINE_TYPES: the GPU type and room the plan and the local nodes use."""
    max_nodes: int = 1
    spot: bool = False
    taints: tuple[tuple[str, str, str], ...] = ()
    """The pool's own taints besides GKE's nvidia.com/gpu one, as `key=value:Effect`; tolerated."""


@dataclass(frozen=True)
class ExistingClusterSettings:
    """A cluster this stack does not own: no network, cluster or pools are declared."""

    context: str
    """The kubeconfig context of the cluster, looked up in the ambient kubeconfig (`KUBECONFIG`,
    else `~/.kube/config`) of whoever runs `pulumi`. Nothing machine-specific reaches the state:
    the provider gets this name and an empty `kubeconfig`."""
    system_pool: str
    """Omitted -> `system`: the CPU pool (GKE `cloud.google.com/gke-nodepool` label) of the operator and scheduler."""
    install_operator: bool = True
    """False -> the cluster already runs the Dask operator (its CRDs and ClusterRole are its owner's):
    the stack installs no Helm release and creates only namespaced objects and Dask resources."""
    network_policies_enforced: bool = False
    """True -> the stack's owner says the host cluster enforces NetworkPolicies (Dataplane V2 or
    Calico); nothing here can check it, so the plan warns while it is false and TLS is off."""
    scheduler_pool: ExistingSchedulerPool | None = None
    """Omitted -> no GPU pool for the scheduler: `dask.schedulerGpu` must be false (a CPU scheduler)."""


MONITORING_COLLECTIONS = ("gmp", "prometheus-operator", "none")


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds of the alert policies (components/dashboard_spec.py); each has a default."""

    no_gpu_worker_minutes: int = 15
    """Work queued (or waiting for a GPU worker) while no GPU worker is up, this long: stockout or quota."""
    spilled_bytes: int = 0
    """A worker holding more than this on disk (spilled) alerts; 0 -> any spill."""
    spill_minutes: int = 10
    paused_minutes: int = 5
    """A worker paused (memory above its pause fraction) this long."""
    scheduler_tick_seconds: float = 5.0
    """The scheduler's longest event-loop tick above this (or the scheduler down) is unhealthy."""
    scheduler_minutes: int = 5
    gpu_idle_minutes: int = 60
    """GPUs allocated to workers but under gpuIdlePercent busy (DCGM), this long: money."""
    gpu_idle_percent: float = 5.0
    restarts: int = 3
    """More worker removals than this within restartWindowMinutes: a worker restarting in a loop."""
    restart_window_minutes: int = 15


@dataclass(frozen=True)
class MonitoringSettings:
    """Metrics collection, the Cloud Monitoring dashboard and alerts (`monitoring`)."""

    collection: str
    """Omitted -> `gmp` when this stack creates GKE (Managed Prometheus on), `none` with existingCluster."""
    prometheus_namespace: str = "monitoring"
    """With collection `prometheus-operator`: the namespace of the Prometheus pods the NetworkPolicy admits."""
    dashboard: bool = True
    """Omitted -> a Cloud Monitoring dashboard and alert policies, for stacks that create GKE."""
    notification_channels: tuple[str, ...] = ()
    """Omitted -> alerts open incidents in Cloud Monitoring and notify nobody (no channel is created)."""
    alerts: AlertSettings = field(default_factory=AlertSettings)


@dataclass(frozen=True)
class StackSettings:
    project: str
    location: str
    cluster_name: str
    authorized_networks: tuple[str, ...]
    driver: str
    release_channel: str
    operator_version: str
    protect: bool
    system_machine_type: str
    system_min_nodes: int
    system_max_nodes: int
    network: NetworkSettings
    gpu_node_pools: dict[str, GpuPoolSettings]
    dask: DaskSettings
    labels: dict[str, str] = field(default_factory=dict)
    image_streaming: bool = True
    """GKE image streaming (gcfsConfig) on the A100 pools: containers start before the image is pulled."""
    image_prepuller: bool = False
    """A DaemonSet that pulls the worker image onto every GPU node as soon as it is Ready."""
    existing_cluster: ExistingClusterSettings | None = None
    """Omitted -> this stack creates the network, the GKE cluster and its pools."""
    monitoring: MonitoringSettings = field(default_factory=lambda: MonitoringSettings(collection="gmp"))
    operator_chart: str = ""
    """The operator chart's folder or .tgz (air-gapped); empty -> the published chart repository."""

    @property
    def system_pool(self) -> str:
        """The `cloud.google.com/gke-nodepool` of the on-demand CPU pool (operator, scheduler)."""
        return self.existing_cluster.system_pool if self.existing_cluster else SYSTEM_POOL_NAME

    @property
    def scheduler_pool(self) -> GpuPoolSettings | None:
        """The scheduler's one-node GPU pool; None with `dask.schedulerGpu: false`."""
        if not self.dask.scheduler_gpu or self.existing_cluster:
            return None
        return GpuPoolSettings(
            name=SCHEDULER_POOL_NAME,
            machine_type=self.dask.scheduler_machine_type,
            min_nodes=0,
            max_nodes=1,
            spot=self.dask.scheduler_spot,
            disk_size_gb=100,
            zones=self._scheduler_zones(),
            scheduler_only=True,
        )

    def _scheduler_zones(self) -> tuple[str, ...]:
        """On a regional cluster, the region's zones that offer the scheduler's GPU (a pool left to
        the cluster's zones may sit where there is no L4); a zonal cluster's pool is in its zone."""
        if not self.regional:
            return ()
        accelerator = SCHEDULER_GPU_MACHINE_TYPES[self.dask.scheduler_machine_type].accelerator or ""
        return ACCELERATOR_ZONES.get(accelerator, {}).get(self.region, ())

    @property
    def installs_operator(self) -> bool:
        """The stack installs the Dask operator chart (always on a cluster it creates)."""
        return self.existing_cluster is None or self.existing_cluster.install_operator

    @property
    def regional(self) -> bool:
        return is_region(self.location)

    @property
    def region(self) -> str:
        return self.location if self.regional else self.location.rsplit("-", 1)[0]

    @property
    def gke_driver_version(self) -> str:
        """The value every A100 pool sets for gpuDriverInstallationConfig.gpuDriverVersion."""
        return DRIVER_MODES[self.driver]

    @property
    def dcgm_metrics(self) -> bool:
        """GKE's managed DCGM GPU metrics: with Managed Prometheus and a GKE-installed driver only.
        With the driver DaemonSet (`driver: daemonset`) the stack declares none; the plan warns (GOTCHAS.md)."""
        return self.existing_cluster is None and self.monitoring.collection == "gmp" and not self.uses_driver_daemonset

    @property
    def uses_driver_daemonset(self) -> bool:
        return self.driver == "daemonset"

    @property
    def system_machine(self) -> MachineType:
        return CPU_MACHINE_TYPES[self.system_machine_type]


# --- parsing -----------------------------------------------------------------------------
class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, value: Any, allowed: str) -> None:
        self.items.append(f"{key}: {value!r} {allowed}")


def _decode(raw: Any) -> Any:
    """Pulumi hands config values over as strings; objects and arrays are JSON."""
    if isinstance(raw, str):
        stripped = raw.strip()
        if stripped[:1] in ("{", "[") or stripped in ("true", "false") or re.fullmatch(r"-?\d+(\.\d+)?", stripped):
            try:
                return json.loads(stripped)
            except json.JSONDecodeError:
                return raw
    return raw


class _Reader:
    """Typed access to one config object, recording problems under the full key path."""

    def __init__(
        self,
        problems: _Problems,
        prefix: str,
        data: Mapping[str, Any],
        known: set[str],
        renamed: Mapping[str, str] | None = None,
    ):
        self.problems, self.prefix, self.data = problems, prefix, data
        renamed = renamed or {}
        for key in sorted(set(data) - known):
            if key in renamed:
                problems.add(f"{prefix}{key}", data[key], f"is no longer a key: use {prefix}{renamed[key]}")
            else:
                problems.add(f"{prefix}{key}", data[key], f"is not a known key; known keys: {', '.join(sorted(known))}")

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> str:
        value = _decode(self.data.get(name))
        if value is None:
            if required:
                self.problems.add(self.key(name), None, "is required")
            return default or ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value:
            self.problems.add(self.key(name), value, "must be a non-empty string")
            return default or ""
        return value

    def integer(self, name: str, default: int = 0, *, minimum: int = 0) -> int:
        value = _decode(self.data.get(name))
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.problems.add(self.key(name), value, f"must be an integer >= {minimum}")
            return default
        return value

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        value = _decode(self.data.get(name))
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= minimum:
            self.problems.add(self.key(name), value, f"must be a number > {minimum}")
            return default
        return float(value)

    def boolean(self, name: str, default: bool = False) -> bool:
        value = _decode(self.data.get(name))
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problems.add(self.key(name), value, "must be true or false")
            return default
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        """Omitted -> `default` (for scalars, None: Pulumi.yaml's default is always present, and a
        missing one is reported as required). A bad or missing value reads as the first allowed
        one, so that parsing goes on to report every other problem."""
        fallback = default if default is not None else allowed[0]
        if self.data.get(name) is None:
            return fallback
        value = self.string(name, fallback)
        if value not in allowed:
            self.problems.add(self.key(name), value, f"is not allowed; one of {', '.join(allowed)}")
            return fallback
        return value

    def strings(self, name: str, *, required: bool = False) -> tuple[str, ...]:
        value = _decode(self.data.get(name))
        if value is None:
            if required:
                self.problems.add(self.key(name), None, "is required (a list of strings)")
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.add(self.key(name), value, "must be a list of strings")
            return ()
        return tuple(value)

    def mapping(self, name: str) -> dict[str, Any]:
        value = _decode(self.data.get(name))
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problems.add(self.key(name), value, "must be a map")
            return {}
        return value


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


POOL_KEYS = {"machineType", "minNodes", "maxNodes", "spot", "diskSizeGb", "zones", "secondaryBootDiskImage"}
# Namespaces other workloads live in: default-deny policies there would break them.
SHARED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "dask-operator", "gke-managed-system")
# The operator names the DaskCluster's own group "default"; `gpudask.client.connect` also calls it "gpu".
RESERVED_GROUP_NAMES = ("default", "gpu")
GROUP_KEYS = {"replicas", "gpusPerWorker", "cpu", "memoryGb", "image", "pool"}
# The default group's keys before it became `dask.worker` with the words of `dask.workerGroups`.
RENAMED_DASK_KEYS = {
    "workers": "worker.replicas",
    "gpusPerWorker": "worker.gpusPerWorker",
    "workerCpu": "worker.cpu",
    "workerMemoryGb": "worker.memoryGb",
    "pool": "worker.pool",
}
DASK_KEYS = {
    "name", "namespace", "image", "worker", "colocation", "schedulerGpu", "schedulerMachineType", "schedulerSpot", "schedulerService", "schedulerCpu", "schedulerMemoryGb", "clientCidrs",
    "clientNamespaces", "tls",
    "workerGroups", "autoscale",
}  # fmt: skip
SCALAR_KEYS = {
    "location", "clusterName", "authorizedNetworks", "driver", "releaseChannel", "operatorVersion", "operatorChart",
    "protect", "systemMachineType", "systemMinNodes", "systemMaxNodes", "subnetCidr", "podsCidr", "servicesCidr", "masterCidr",
    "peeredCidrs", "imageStreaming", "imagePrepuller",
}  # fmt: skip
TOP_KEYS = {
    "location", "clusterName", "authorizedNetworks", "driver", "releaseChannel", "operatorVersion", "operatorChart",
    "protect", "systemMachineType", "systemMinNodes", "systemMaxNodes", "subnetCidr", "podsCidr", "servicesCidr",
    "masterCidr", "peeredCidrs", "gpuNodePools", "dask", "labels", "imageStreaming", "imagePrepuller", "existingCluster",
    "monitoring",
}  # fmt: skip
MONITORING_KEYS = {"collection", "prometheusNamespace", "dashboard", "notificationChannels", "alerts"}
ALERT_KEYS = {
    "noGpuWorkerMinutes", "spilledBytes", "spillMinutes", "pausedMinutes", "schedulerTickSeconds", "schedulerMinutes",
    "gpuIdleMinutes", "gpuIdlePercent", "restarts", "restartWindowMinutes",
}  # fmt: skip
# Cloud Monitoring notification channel ids, as `gcloud beta monitoring channels list` prints them.
_CHANNEL = re.compile(r"^projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/notificationChannels/[0-9]+$")
EXISTING_KEYS = {"context", "systemPool", "installOperator", "networkPoliciesEnforced", "schedulerPool"}
EXISTING_SCHEDULER_POOL_KEYS = {"name", "machineType", "maxNodes", "spot", "taints"}
_TAINT = re.compile(r"^(?P<key>[^=:\s]+)=(?P<value>[^=:\s]*):(?P<effect>[A-Za-z]+)$")
# What the program gives an existing cluster's Kubernetes provider as `kubeconfig`: empty, so the
# provider loads the ambient kubeconfig and the state holds nothing of the machine that ran it.
EXISTING_CLUSTER_KUBECONFIG = ""
# Keys that only shape what this stack creates on GCP: with existingCluster, setting one is a mistake
# (scalar keys with Pulumi.yaml defaults cannot be told apart from their default, so only these two).
GKE_ONLY_KEYS = ("authorizedNetworks", "labels")


def _parse_pools(
    problems: _Problems, location: str, raw: dict[str, Any], system_pool: str = SYSTEM_POOL_NAME
) -> dict[str, GpuPoolSettings]:
    pools: dict[str, GpuPoolSettings] = {}
    if not raw:
        problems.add(
            "gpuNodePools", raw, "must define at least one A100 pool (e.g. a100: {machineType: a2-highgpu-1g})"
        )
    region = location if _REGION.match(location) else location.rsplit("-", 1)[0]
    for name, body in raw.items():
        prefix = f"gpuNodePools.{name}"
        if not _GKE_NAME.match(name) or name in (system_pool, SCHEDULER_POOL_NAME):
            problems.add(
                prefix,
                name,
                f"is not a valid pool name: lowercase letters, digits and '-', at most 40, not {system_pool!r} (the system pool) or {SCHEDULER_POOL_NAME!r}",
            )
        if not isinstance(body, dict):
            problems.add(prefix, body, "must be a map with machineType, minNodes, maxNodes, spot")
            continue
        r = _Reader(problems, f"{prefix}.", body, POOL_KEYS)
        machine_type = r.string("machineType", required=True)
        if machine_type and machine_type not in A100_MACHINE_TYPES:
            problems.add(
                r.key("machineType"),
                machine_type,
                f"is not an A100 machine type; one of {', '.join(A100_MACHINE_TYPES)}",
            )
            machine_type = ""
        min_nodes = r.integer("minNodes", 0)
        max_nodes = r.integer("maxNodes", 1)
        if max_nodes == 0:
            problems.add(r.key("maxNodes"), 0, "means this pool can never hold a node; use >= 1")
        if min_nodes > max_nodes:
            problems.add(r.key("minNodes"), min_nodes, f"is greater than maxNodes ({max_nodes})")
        zones = r.strings("zones")
        for i, zone in enumerate(zones):
            if not _ZONE.match(zone) or not zone.startswith(region + "-"):
                problems.add(f"{r.key('zones')}[{i}]", zone, f"is not a zone of the cluster's region {region}")
        if zones and _ZONE.match(location) and zones != (location,):
            problems.add(r.key("zones"), list(zones), f"must be omitted or [{location}] for a zonal cluster")
        pools[name] = GpuPoolSettings(
            name=name,
            machine_type=machine_type,
            min_nodes=min_nodes,
            max_nodes=max_nodes,
            spot=r.boolean("spot", False),
            disk_size_gb=r.integer("diskSizeGb", 200, minimum=100),
            zones=zones,
            secondary_boot_disk_image=_disk_image(r),
        )
    return pools


def _disk_image(r: _Reader) -> str | None:
    image = r.string("secondaryBootDiskImage") or None
    if image is not None and not _DISK_IMAGE.match(image):
        r.problems.add(
            r.key("secondaryBootDiskImage"),
            image,
            "is not a disk image reference; use projects/<project>/global/images/<name> "
            "(build it with gke-disk-image-builder: docs/image-cache.md)",
        )
        return None
    return image


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


def _parse_group(
    problems: _Problems,
    prefix: str,
    name: str,
    body: Mapping[str, Any],
    *,
    image: str,
    pools: dict[str, GpuPoolSettings],
    system_pool: str,
    gpu: bool,
) -> tuple[WorkerGroupSettings, list[GpuPoolSettings]]:
    """One worker group (`dask.worker` or `dask.workerGroups.<name>`) and the GPU pools it may go to.

    `gpu`: the DaskCluster's own group, GPU workers only (gpusPerWorker >= 1, default 1); an extra
    group defaults to CPU workers (gpusPerWorker 0) on the system pool."""
    g = _Reader(problems, f"{prefix}.", body, GROUP_KEYS)
    gpus = g.integer("gpusPerWorker", 1 if gpu else 0, minimum=1 if gpu else 0)
    _check_one_gpu(problems, g.key("gpusPerWorker"), gpus)
    pool = g.string("pool") or None
    targets: list[GpuPoolSettings] = []
    if gpus:
        targets = _target_pools(problems, g.key("pool"), pool, pools)
        cpu_default, memory_default = _worker_share(targets, gpus)
    else:
        if pool not in (None, system_pool):
            problems.add(g.key("pool"), pool, f"CPU workers (gpusPerWorker: 0) run on the '{system_pool}' pool")
        cpu_default, memory_default = 1.0, 4.0
    group_image = g.string("image", image)
    if group_image != image:
        _check_image(problems, g.key("image"), group_image)
    group = WorkerGroupSettings(
        name=name,
        replicas=g.integer("replicas", 1),
        gpus_per_worker=gpus,
        cpu=g.number("cpu", cpu_default),
        memory_gb=g.number("memoryGb", memory_default),
        image=group_image,
        pool=pool,
    )
    return group, targets


def _parse_dask(
    problems: _Problems, raw: dict[str, Any], pools: dict[str, GpuPoolSettings], system_pool: str = SYSTEM_POOL_NAME
) -> DaskSettings:
    r = _Reader(problems, "dask.", raw, DASK_KEYS, RENAMED_DASK_KEYS)
    name = r.string("name", "rapids")
    try:
        validate_cluster_name(name)
    except DaskNameError:
        problems.add(
            r.key("name"),
            name,
            "is not a valid DaskCluster name: DNS-1123 (lowercase, digits, '-'), at most 53 characters",
        )
    namespace = r.string("namespace", "dask")
    if not _DNS_LABEL.match(namespace):
        problems.add(r.key("namespace"), namespace, "is not a DNS-1123 label (lowercase, digits, '-', at most 63)")
    elif namespace in SHARED_NAMESPACES:
        problems.add(
            r.key("namespace"),
            namespace,
            "is shared; the Dask namespace gets default-deny NetworkPolicies and Pod Security labels, "
            f"so it must be dedicated (not {', '.join(SHARED_NAMESPACES)})",
        )
    image = r.string("image", DEFAULT_RAPIDS_IMAGE)
    _check_image(problems, r.key("image"), image)
    colocation = r.choice("colocation", COLOCATION_MODES, "preferred")
    raw_worker = r.mapping("worker")
    worker, targets = _parse_group(
        problems, "dask.worker", "default", raw_worker, image=image, pools=pools, system_pool=system_pool, gpu=True
    )
    service = r.string("schedulerService", "ClusterIP")
    if service == "LoadBalancer":
        problems.add(
            r.key("schedulerService"),
            service,
            "would expose the scheduler (remote code execution) publicly; use InternalLoadBalancer or ClusterIP",
        )
    elif service not in SCHEDULER_SERVICES:
        problems.add(r.key("schedulerService"), service, f"is not allowed; one of {', '.join(SCHEDULER_SERVICES)}")
    client_cidrs = r.strings("clientCidrs")
    _check_cidrs(problems, r.key("clientCidrs"), client_cidrs, allow_empty=True)
    if service == "InternalLoadBalancer" and not client_cidrs:
        problems.add(r.key("clientCidrs"), [], "must list the client ranges allowed through the internal load balancer")
    client_namespaces = r.strings("clientNamespaces")
    for i, client_namespace in enumerate(client_namespaces):
        if not _DNS_LABEL.match(client_namespace):
            problems.add(f"{r.key('clientNamespaces')}[{i}]", client_namespace, "is not a DNS-1123 label")
    tls = r.boolean("tls", False)

    autoscale = None
    raw_autoscale = r.mapping("autoscale")
    if raw_autoscale:
        a = _Reader(problems, "dask.autoscale.", raw_autoscale, {"minimum", "maximum"})
        autoscale = AutoscaleSettings(
            minimum=a.integer("minimum", 0), maximum=a.integer("maximum", max(worker.replicas, 1), minimum=1)
        )
        if autoscale.minimum > autoscale.maximum:
            problems.add(a.key("minimum"), autoscale.minimum, f"is greater than maximum ({autoscale.maximum})")
        if raw_worker.get("replicas") is not None:
            problems.add(
                "dask.worker.replicas",
                worker.replicas,
                "is set together with dask.autoscale: an autoscaled group starts at autoscale.minimum and the "
                "DaskAutoscaler owns the count; remove dask.worker.replicas (or remove autoscale)",
            )
    peak = max(worker.replicas, autoscale.maximum if autoscale else 0)
    _check_gpu_fit(problems, "dask.worker.gpusPerWorker", worker.gpus_per_worker, peak, targets, colocation)

    groups: dict[str, WorkerGroupSettings] = {}
    for group_name, body in r.mapping("workerGroups").items():
        prefix = f"dask.workerGroups.{group_name}"
        if not _DNS_LABEL.match(group_name) or len(f"{name}-{group_name}") > 53 or group_name in RESERVED_GROUP_NAMES:
            problems.add(
                prefix,
                group_name,
                "is not a valid worker group name: DNS-1123, not 'default' or 'gpu' (the DaskCluster's own group), "
                "and '<dask.name>-<group>' at most 53 characters",
            )
        if not isinstance(body, dict):
            problems.add(prefix, body, "must be a map with replicas, gpusPerWorker, ...")
            continue
        group, group_targets = _parse_group(
            problems, prefix, group_name, body, image=image, pools=pools, system_pool=system_pool, gpu=False
        )
        if group.gpus_per_worker:
            _check_gpu_fit(problems, f"{prefix}.gpusPerWorker", group.gpus_per_worker, group.replicas, group_targets)
        groups[group_name] = group

    scheduler_gpu = r.boolean("schedulerGpu", True)
    scheduler_machine_type = r.choice(
        "schedulerMachineType", tuple(SCHEDULER_GPU_MACHINE_TYPES), DEFAULT_SCHEDULER_MACHINE_TYPE
    )
    return DaskSettings(
        name=name,
        namespace=namespace,
        image=image,
        worker=worker,
        colocation=colocation,
        scheduler_gpu=scheduler_gpu,
        scheduler_machine_type=scheduler_machine_type,
        scheduler_spot=r.boolean("schedulerSpot", any(p.spot for p in pools.values())),
        scheduler_service=service if service in SCHEDULER_SERVICES else "ClusterIP",
        scheduler_cpu=r.number("schedulerCpu", 1.0),
        scheduler_memory_gb=r.number("schedulerMemoryGb", 4.0),
        client_cidrs=client_cidrs,
        client_namespaces=client_namespaces,
        tls=tls,
        worker_groups=groups,
        autoscale=autoscale,
        system_pool=system_pool,
    )


def _place_scheduler_on_existing_pool(
    problems: _Problems,
    dask: DaskSettings,
    existing: ExistingClusterSettings,
    raw_dask: dict[str, Any],
    pools: dict[str, GpuPoolSettings],
) -> DaskSettings:
    """With existingCluster the GPU scheduler goes to the small-GPU pool the cluster has, named by
    `existingCluster.schedulerPool`; the stack creates none."""
    pool = existing.scheduler_pool
    if pool is None:
        if dask.scheduler_gpu:
            problems.add(
                "dask.schedulerGpu",
                True,
                "needs a small-GPU pool, and with existingCluster the stack creates none: name the cluster's L4/T4 "
                "pool in existingCluster.schedulerPool (name, machineType, taints), or set false (a CPU scheduler, "
                "on which dask-cudf graphs fail)",
            )
        return dask
    if not dask.scheduler_gpu:
        problems.add(
            "dask.schedulerGpu",
            False,
            f"contradicts existingCluster.schedulerPool ({pool.name}): remove one of them",
        )
        return dask
    for key in ("schedulerMachineType", "schedulerSpot"):
        if key in raw_dask:
            problems.add(
                f"dask.{key}",
                raw_dask[key],
                "describes the pool this stack creates; with existingCluster say what the cluster's pool is in "
                "existingCluster.schedulerPool (machineType, spot)",
            )
    if pool.name in pools:
        problems.add(
            "existingCluster.schedulerPool.name",
            pool.name,
            "is one of gpuNodePools (an A100 pool); the scheduler needs its own small-GPU pool",
        )
    if pool.machine_type not in SCHEDULER_GPU_MACHINE_TYPES:
        return dask  # reported by the parser
    return replace(
        dask,
        scheduler_machine_type=pool.machine_type,
        scheduler_spot=pool.spot,
        scheduler_pool=pool.name,
        scheduler_taints=pool.taints,
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


def _parse_existing(problems: _Problems, raw: Any) -> ExistingClusterSettings | None:
    value = _decode(raw)
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        problems.add("existingCluster", value, "must be a map with context (required) and systemPool")
        return None
    if "kubeconfig" in value:
        # Whatever the program hands the provider as `kubeconfig` is stored in state: a path
        # there is this machine's, and another machine parses it as kubeconfig text.
        problems.add(
            "existingCluster.kubeconfig",
            value["kubeconfig"],
            "is no longer read: the provider would store this machine's path in the stack's state; "
            "set KUBECONFIG in the environment of `pulumi` and name the cluster with existingCluster.context",
        )
    e = _Reader(problems, "existingCluster.", {k: v for k, v in value.items() if k != "kubeconfig"}, EXISTING_KEYS)
    context = e.string("context", required=True)
    system_pool = e.string("systemPool", SYSTEM_POOL_NAME)
    if not _GKE_NAME.match(system_pool):
        problems.add(
            e.key("systemPool"), system_pool, "is not a GKE node pool name (lowercase, digits, '-', at most 40)"
        )
    return ExistingClusterSettings(
        context=context,
        system_pool=system_pool,
        install_operator=e.boolean("installOperator", True),
        network_policies_enforced=e.boolean("networkPoliciesEnforced", False),
        scheduler_pool=_parse_existing_scheduler_pool(problems, e.mapping("schedulerPool"), system_pool),
    )


def _parse_existing_scheduler_pool(
    problems: _Problems, raw: dict[str, Any], system_pool: str
) -> ExistingSchedulerPool | None:
    if not raw:
        return None
    p = _Reader(problems, "existingCluster.schedulerPool.", raw, EXISTING_SCHEDULER_POOL_KEYS)
    name = p.string("name", required=True)
    if name and (not _GKE_NAME.match(name) or name == system_pool):
        problems.add(
            p.key("name"),
            name,
            f"is not a GKE node pool name (lowercase, digits, '-', at most 40) other than {system_pool!r}",
        )
    machine_type = p.string("machineType", required=True)
    if machine_type and machine_type not in SCHEDULER_GPU_MACHINE_TYPES:
        problems.add(
            p.key("machineType"),
            machine_type,
            f"must say what the pool's nodes are: one of {', '.join(SCHEDULER_GPU_MACHINE_TYPES)} (one small GPU)",
        )
    taints = []
    for i, text in enumerate(p.strings("taints")):
        match = _TAINT.match(text)
        if not match or match["effect"] not in TAINT_EFFECTS_K8S:
            problems.add(
                f"{p.key('taints')}[{i}]",
                text,
                f"is not a taint: key=value:Effect with Effect one of {', '.join(TAINT_EFFECTS_K8S)}",
            )
            continue
        taints.append((match["key"], match["value"], match["effect"]))
    return ExistingSchedulerPool(
        name=name,
        machine_type=machine_type,
        max_nodes=p.integer("maxNodes", 1, minimum=1),
        spot=p.boolean("spot", False),
        taints=tuple(taints),
    )


def _parse_monitoring(problems: _Problems, raw: dict[str, Any], existing: bool) -> MonitoringSettings:
    m = _Reader(problems, "monitoring.", raw, MONITORING_KEYS)
    collection = m.choice("collection", MONITORING_COLLECTIONS, "none" if existing else "gmp")
    namespace = m.string("prometheusNamespace", "monitoring")
    if not _DNS_LABEL.match(namespace):
        problems.add(m.key("prometheusNamespace"), namespace, "is not a Kubernetes namespace name")
    dashboard = m.boolean("dashboard", not existing)
    if dashboard and existing:
        problems.add(
            m.key("dashboard"),
            True,
            "needs a GCP project this stack owns; with existingCluster no dashboard or alert is declared: set false",
        )
    channels = m.strings("notificationChannels")
    for i, channel in enumerate(channels):
        if not _CHANNEL.match(channel):
            problems.add(
                f"{m.key('notificationChannels')}[{i}]",
                channel,
                "is not a notification channel id (projects/<project>/notificationChannels/<number>)",
            )
    a = _Reader(problems, "monitoring.alerts.", m.mapping("alerts"), ALERT_KEYS)
    d = AlertSettings()
    alerts = AlertSettings(
        no_gpu_worker_minutes=a.integer("noGpuWorkerMinutes", d.no_gpu_worker_minutes, minimum=1),
        spilled_bytes=a.integer("spilledBytes", d.spilled_bytes),
        spill_minutes=a.integer("spillMinutes", d.spill_minutes, minimum=1),
        paused_minutes=a.integer("pausedMinutes", d.paused_minutes, minimum=1),
        scheduler_tick_seconds=a.number("schedulerTickSeconds", d.scheduler_tick_seconds),
        scheduler_minutes=a.integer("schedulerMinutes", d.scheduler_minutes, minimum=1),
        gpu_idle_minutes=a.integer("gpuIdleMinutes", d.gpu_idle_minutes, minimum=1),
        gpu_idle_percent=a.number("gpuIdlePercent", d.gpu_idle_percent),
        restarts=a.integer("restarts", d.restarts, minimum=1),
        restart_window_minutes=a.integer("restartWindowMinutes", d.restart_window_minutes, minimum=1),
    )
    if dashboard and collection != "gmp":
        problems.add(
            m.key("collection"),
            collection,
            "must be gmp while monitoring.dashboard is true (the dashboard and alerts read Managed Prometheus)",
        )
    return MonitoringSettings(collection, namespace, dashboard, channels, alerts)


def parse_settings(raw: Mapping[str, Any], project: str | None) -> StackSettings:
    """Validate the stack config; every problem is reported at once."""
    problems = _Problems()
    present = {k: v for k, v in raw.items() if v is not None}
    existing = _parse_existing(problems, present.get("existingCluster"))
    if existing is None and (not project or not _PROJECT_ID.match(project)):
        problems.add("gcp:project", project, "is required: your GCP project id (6-30 lowercase letters, digits, '-')")
    if existing is not None:
        for key in GKE_ONLY_KEYS:
            # Pulumi.yaml's default ([] or {}) reaches the program as if set: only a value says something.
            if _decode(present.get(key)):
                problems.add(
                    key,
                    _decode(present[key]),
                    "has no effect with existingCluster (this stack creates no GKE cluster); remove it",
                )
    # Scalar defaults live in Pulumi.yaml only; the Pulumi CLI (or gpudask's recorder) fills them in.
    required = SCALAR_KEYS - ({"authorizedNetworks"} if existing else set())
    for key in sorted(required - set(present)):
        problems.add(key, None, "is required (Pulumi.yaml declares the defaults; set it in the stack file)")
    r = _Reader(problems, "", present, TOP_KEYS)

    location = r.string("location")
    if location and not (_ZONE.match(location) or _REGION.match(location)):
        problems.add("location", location, "is neither a zone (us-central1-c) nor a region (us-central1)")
    cluster_name = r.string("clusterName")
    if not _GKE_NAME.match(cluster_name) or len(cluster_name) > 24:
        problems.add(
            "clusterName",
            cluster_name,
            "must be lowercase letters, digits and '-', start with a letter, at most 24 characters (the node service account is named after it)",
        )
    authorized = () if existing else r.strings("authorizedNetworks")
    if not existing:
        _check_cidrs(problems, "authorizedNetworks", authorized, allow_empty=False)
    driver = r.choice("driver", tuple(DRIVER_MODES))
    protect = r.boolean("protect")
    release_channel = r.choice("releaseChannel", RELEASE_CHANNELS)
    operator_version = r.string("operatorVersion")
    if not _VERSION.match(operator_version):
        problems.add("operatorVersion", operator_version, "must be an exact chart version like 2026.3.0 (no ranges)")
    # "" (Pulumi.yaml's default) is a value here: the published repository.
    operator_chart = r.string("operatorChart") if _decode(present.get("operatorChart")) != "" else ""
    if operator_chart.startswith(("~", "http://", "https://", "oci://")):
        problems.add(
            "operatorChart",
            operator_chart,
            "must be empty (the published repository) or a chart folder or .tgz relative to the project folder "
            "(no ~: the path is stored in the stack's state; no URL: the repository is fixed)",
        )
    system_machine_type = r.string("systemMachineType")
    if system_machine_type not in CPU_MACHINE_TYPES:
        problems.add(
            "systemMachineType",
            system_machine_type,
            f"is not a supported CPU machine type; one of {', '.join(CPU_MACHINE_TYPES)}",
        )
    system_min = r.integer("systemMinNodes", minimum=1)
    system_max = r.integer("systemMaxNodes", minimum=1)
    if system_min > system_max:
        problems.add("systemMinNodes", system_min, f"is greater than systemMaxNodes ({system_max})")
    network = NetworkSettings(
        subnet_cidr=r.string("subnetCidr"),
        pods_cidr=r.string("podsCidr"),
        services_cidr=r.string("servicesCidr"),
        master_cidr=r.string("masterCidr"),
        peered_cidrs=r.strings("peeredCidrs"),
    )
    _check_networks(problems, network)
    labels = {} if existing else {str(k): str(v) for k, v in r.mapping("labels").items()}
    for key, value in labels.items():
        if not _DNS_LABEL.match(key) or not re.fullmatch(r"[a-z0-9_-]{0,63}", value):
            problems.add(
                f"labels.{key}", value, "GCP labels: lowercase keys and values, digits, '-' and '_', at most 63"
            )

    system_pool = existing.system_pool if existing else SYSTEM_POOL_NAME
    pools = _parse_pools(problems, location or "", r.mapping("gpuNodePools"), system_pool)
    image_streaming = r.boolean("imageStreaming")
    image_prepuller = r.boolean("imagePrepuller")
    for pool in pools.values():
        if pool.secondary_boot_disk_image and not image_streaming:
            problems.add(
                "imageStreaming",
                False,
                f"must be true with gpuNodePools.{pool.name}.secondaryBootDiskImage: "
                "GKE reads the image cache disk through image streaming",
            )
    raw_dask = r.mapping("dask")
    dask = _parse_dask(problems, raw_dask, pools, system_pool)
    if existing:
        dask = _place_scheduler_on_existing_pool(problems, dask, existing, raw_dask, pools)
    if dask.scheduler_gpu:
        _check_scheduler_pool(problems, location or "", dask, existing is not None)
    _check_driver_fits_images(problems, driver, release_channel, dask)
    _check_clients_reach_the_vpc(problems, network, dask)
    monitoring = _parse_monitoring(problems, r.mapping("monitoring"), existing is not None)

    if problems.items:
        raise SettingsError(problems.items)
    return StackSettings(
        project=project or "",
        location=location,
        cluster_name=cluster_name,
        authorized_networks=authorized,
        driver=driver,
        release_channel=release_channel,
        operator_version=operator_version,
        protect=protect,
        system_machine_type=system_machine_type,
        system_min_nodes=system_min,
        system_max_nodes=system_max,
        network=network,
        gpu_node_pools=pools,
        dask=dask,
        labels=labels,
        image_streaming=image_streaming,
        image_prepuller=image_prepuller,
        existing_cluster=existing,
        monitoring=monitoring,
        operator_chart=operator_chart,
    )
