"""The settings object: frozen dataclasses, the config words they take, and the formats of names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from components.catalog import (
    ACCELERATOR_ZONES,
    CPU_MACHINE_TYPES,
    GPU_MACHINE_TYPES,
    SCHEDULER_GPU_MACHINE_TYPES,
    MachineType,
)
from components.settings.keys import ALERTS, DRIVER_MODES, MONITORING, SYSTEM_POOL_NAME

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
# Cloud Monitoring notification channel ids, as `gcloud beta monitoring channels list` prints them.
_CHANNEL = re.compile(r"^projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/notificationChannels/[0-9]+$")


def is_region(location: str) -> bool:
    """`us-central1` (a region: a regional cluster) rather than `us-central1-c` (a zone)."""
    return bool(_REGION.match(location))


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
    spill_gb: float = 0.0
    """Local disk per worker for spill (half, `max-spill`), P2P shuffle and logs; 0 -> 2 x memory_gb."""

    @property
    def spill_disk_gb(self) -> float:
        return self.spill_gb or 2 * self.memory_gb


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


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds of the alert policies (components/dashboard_spec.py); defaults: keys.ALERTS."""

    no_gpu_worker_minutes: int = ALERTS["noGpuWorkerMinutes"].default
    """Work queued (or waiting for a GPU worker) while no GPU worker is up, this long: stockout or quota."""
    spilled_bytes: int = ALERTS["spilledBytes"].default
    """A worker holding more than this on disk (spilled) alerts; 0 -> any spill."""
    spill_minutes: int = ALERTS["spillMinutes"].default
    paused_minutes: int = ALERTS["pausedMinutes"].default
    """A worker paused (memory above its pause fraction) this long."""
    scheduler_tick_seconds: float = ALERTS["schedulerTickSeconds"].default
    """The scheduler's longest event-loop tick above this (or the scheduler down) is unhealthy."""
    scheduler_minutes: int = ALERTS["schedulerMinutes"].default
    gpu_idle_minutes: int = ALERTS["gpuIdleMinutes"].default
    """GPUs allocated to workers but under gpuIdlePercent busy (DCGM), this long: money."""
    gpu_idle_percent: float = ALERTS["gpuIdlePercent"].default
    restarts: int = ALERTS["restarts"].default
    """More worker removals than this within restartWindowMinutes: a worker restarting in a loop."""
    restart_window_minutes: int = ALERTS["restartWindowMinutes"].default


@dataclass(frozen=True)
class MonitoringSettings:
    """Metrics collection, the Cloud Monitoring dashboard and alerts (`monitoring`)."""

    collection: str
    """Omitted -> `gmp` when this stack creates GKE (Managed Prometheus on), `none` with existingCluster."""
    prometheus_namespace: str = MONITORING["prometheusNamespace"].default
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
    control_plane_access: str = "dns-and-ip"
    """`dns-only` (Pulumi.yaml's default): only the DNS-based control-plane endpoint, IP endpoints off;
    `dns-and-ip`: the IP endpoint too, behind authorizedNetworks (what stacks created before had)."""

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
