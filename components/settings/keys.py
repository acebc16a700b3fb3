"""The config schema, declared once: every key of every config object with its type, default,
allowed values and meaning.

Everything else derives from this module:
- the parser (components/settings/parse.py) reads each object through a `_Reader` built on its
  section here: unknown keys, types, allowed values, minimums and defaults come from the `Key`;
  reading a key that is not declared, or as another type, is a programming error (KeyError/TypeError);
- `Pulumi.yaml`'s `config:` block (the top-level keys Pulumi's project schema can type, with their
  defaults) and README.md's config reference are written from it by `python -m gpudask docs`
  (gpudask/docs/config_reference.py); tests/test_docs.py fails when either file differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components.catalog import A100_MACHINE_TYPES, CPU_MACHINE_TYPES, DEFAULT_SCHEDULER_MACHINE_TYPE
from components.catalog import SCHEDULER_GPU_MACHINE_TYPES as _SCHEDULER_MACHINES

# --- enums: the config word -> what GKE / Kubernetes / the operator calls it -------------
DRIVER_MODES: dict[str, str] = {
    # our config value -> GKE gpuDriverInstallationConfig.gpuDriverVersion
    "daemonset": "INSTALLATION_DISABLED",
    "gke-default": "DEFAULT",
    "gke-latest": "LATEST",
}
RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE", "EXTENDED")
# controlPlaneAccess: the DNS endpoint only (new stacks), or the IP endpoint beside it (stacks created before).
CONTROL_PLANE_ACCESS = ("dns-only", "dns-and-ip")
COLOCATION_MODES = ("preferred", "required", "none")
SCHEDULER_SERVICES = ("ClusterIP", "InternalLoadBalancer")
MONITORING_COLLECTIONS = ("gmp", "prometheus-operator", "none")

# The current RAPIDS release on CUDA 12: the COS driver the stack installs is >= 535 (CUDA 12's
# floor); CUDA 13 needs >= 580 (GOTCHAS.md). Clients run the Dask this release pins
# (`rapids-dask-dependency` in requirements.txt; tests/test_versions.py).
DEFAULT_RAPIDS_IMAGE = "rapidsai/base:26.10-cuda12-py3.12"
SYSTEM_POOL_NAME = "system"
# Namespaces other workloads live in: default-deny policies there would break them.
SHARED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "dask-operator", "gke-managed-system")
# The operator names the DaskCluster's own group "default"; `gpudask.client.connect` also calls it "gpu".
RESERVED_GROUP_NAMES = ("default", "gpu")

TYPES = ("string", "integer", "number", "boolean", "strings", "map", "object")
"""`strings`: a list of strings; `map`: name -> value (or name -> object); `object`: keys of its own."""
# The types Pulumi's project schema (Pulumi.yaml `config:`) can declare, and how it spells them.
PULUMI_TYPES = {"string": "string", "integer": "integer", "boolean": "boolean", "strings": "array"}


@dataclass(frozen=True)
class Key:
    """One config key. `default` is what the parser applies when the key is omitted; a default that
    depends on other keys is computed by the parser and described by `default_doc` (README)."""

    name: str
    type: str
    description: str
    default: Any = None
    default_doc: str | None = None
    """README text for the default; `{value}` stands for `default` as the README writes values."""
    required: bool = False
    allowed: tuple[str, ...] = ()
    """The values accepted; empty: any value of the type (the parser may still check its form)."""
    minimum: float | None = None
    """integer: the least accepted (>=, default 0); number: values must exceed it (>, default 0)."""
    note: str = ""
    """A comment written above the key in Pulumi.yaml."""

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise TypeError(f"{self.name}: type {self.type!r} is not one of {TYPES}")
        if self.allowed and self.default is not None and self.default not in self.allowed:
            raise ValueError(f"{self.name}: default {self.default!r} is not among {self.allowed}")


Section = Mapping[str, Key]


def _section(*keys: Key) -> dict[str, Key]:
    return {k.name: k for k in keys}


# --- the top level: `gpu-dask:<key>` in the stack file ----------------------------------
# The scalar ones (PULUMI_TYPES) are declared in Pulumi.yaml with these defaults, so the Pulumi CLI
# (or gpudask's recorder) always hands them over: the parser reports a missing one as required.
TOP = _section(
    Key("location", "string", "Zone (us-central1-c, a zonal cluster) or region (us-central1, a regional cluster) of the GKE cluster.", "us-central1-c"),
    Key("clusterName", "string", "GKE cluster name; also prefixes the VPC and the node service account (at most 24 characters).", "gpu-dask"),
    Key(
        "authorizedNetworks", "strings",
        "CIDRs allowed to reach the GKE control plane's IP endpoint. Required (at least one) with controlPlaneAccess dns-and-ip; refused with dns-only (no IP endpoint) and with existingCluster; 0.0.0.0/0 is refused.",
        [],
        note="An empty default, not none: the CLI requires a key without a default of every stack, the\n"
        "existingCluster ones included; the program refuses [] for a stack that creates GKE.",
    ),
    Key(
        "controlPlaneAccess", "string",
        "How clients reach the GKE control plane: dns-only (the default for new stacks: only the DNS-based endpoint, authorised by IAM; IP endpoints off, authorizedNetworks unused, a Private Service Connect-based cluster) or dns-and-ip (the VPC-peering private cluster with the IP endpoint behind authorizedNetworks beside the DNS endpoint: what stacks created before 2026-12 have; they pin it). README: Control-plane access.",
        "dns-only", allowed=CONTROL_PLANE_ACCESS,
    ),
    Key(
        "driver", "string",
        "NVIDIA driver install: daemonset (Google's COS installer DaemonSet, pools set INSTALLATION_DISABLED), gke-default or gke-latest (GKE-managed, no DaemonSet).",
        "daemonset", allowed=tuple(DRIVER_MODES),
    ),
    Key("releaseChannel", "string", f"GKE release channel ({', '.join(RELEASE_CHANNELS)}).", "STABLE", allowed=RELEASE_CHANNELS),
    Key("operatorVersion", "string", "Exact version of the dask-kubernetes-operator Helm chart (= operator image tag).", "2026.3.0"),
    Key(
        "operatorChart", "string",
        "Where the operator chart comes from: empty (the default) for the published repository https://helm.dask.org at operatorVersion; or a chart folder or .tgz (relative to the project folder) for air-gapped deploys: `helm pull dask-kubernetes-operator --repo https://helm.dask.org --version <operatorVersion>`. Its version must be operatorVersion.",
        "",
    ),
    Key("protect", "boolean", "Pulumi protect on the cluster and node pools plus GKE deletionProtection on the cluster (node pools have no such field) (prod). false lets `pulumi destroy` work (dev).", False),
    Key(
        "systemMachineType", "string",
        "Machine type of the on-demand CPU pool that runs the operator, the scheduler and system pods. With existingCluster it describes that cluster's existingCluster.systemPool (nothing is created) for the plan's scheduling check and rehearse --cluster's nodes.",
        "e2-standard-4", allowed=tuple(CPU_MACHINE_TYPES),
    ),
    Key("systemMinNodes", "integer", "Minimum nodes of the system pool (whole cluster). With existingCluster, describes its systemPool.", 1, minimum=1),
    Key("systemMaxNodes", "integer", "Maximum nodes of the system pool (whole cluster). With existingCluster, describes its systemPool (rehearse --cluster makes this many nodes).", 3, minimum=1),
    Key("subnetCidr", "string", "Primary range of the cluster's subnet (nodes and internal load balancers).", "10.10.0.0/20"),
    Key("podsCidr", "string", "Secondary range for pod IPs.", "10.16.0.0/14"),
    Key("servicesCidr", "string", "Secondary range for Service IPs.", "10.12.0.0/20"),
    Key("masterCidr", "string", "The /28 the private GKE control plane uses.", "172.16.0.32/28"),
    Key(
        "peeredCidrs", "strings",
        "Ranges of networks peered with or routed into the cluster's VPC (VPC peering, VPN, Interconnect). Every dask.clientCidrs range must lie inside subnetCidr, podsCidr or one of these.",
        [],
    ),
    Key("imageStreaming", "boolean", "GKE image streaming on the A100 pools: containers start while the image streams in (needs the Container File System API).", True),
    Key("imagePrepuller", "boolean", "A DaemonSet that pulls the Dask worker image onto every GPU node as soon as it is Ready, while the driver installs.", False),
    Key("gpuNodePools", "map", "map of pool name -> pool (below); at least one", required=True),
    Key("dask", "object", "the DaskCluster (below)", default_doc="see below"),
    Key("labels", "map", "extra GCP labels on the cluster and nodes", {}),
    Key(
        "existingCluster", "object", "deploy onto a cluster you already have (below)",
        default_doc="omitted: this stack creates the network, cluster and pools",
    ),
    Key("monitoring", "object", "metrics collection, the Cloud Monitoring dashboard and alerts (below)", default_doc="see below"),
)  # fmt: skip

POOL = _section(
    Key(
        "machineType", "string",
        "an A100 machine type; accelerator type and count follow it",
        required=True, allowed=tuple(A100_MACHINE_TYPES),
    ),
    Key("minNodes", "integer", "autoscaler minimum (0: scales to zero)", 0),
    Key("maxNodes", "integer", "autoscaler maximum (at least 1: a pool of 0 can never hold a node)", 1),
    Key("spot", "boolean", "Spot VMs (about a third of the on-demand price, reclaimed with 30 s notice)", False),
    Key("diskSizeGb", "integer", "boot disk (pd-ssd) per node; the RAPIDS image is ~14 GB", 200, minimum=100),
    Key("zones", "strings", "zones of a regional cluster the pool's nodes go to", default_doc="the cluster's location"),
    Key(
        "secondaryBootDiskImage", "string",
        "`projects/<project>/global/images/<name>`: a disk image holding the RAPIDS image, attached to every new "
        "node as a `CONTAINER_IMAGE_CACHE` secondary boot disk; needs `imageStreaming`; changing it replaces the "
        "pool; how to build it: [docs/image-cache.md](docs/image-cache.md)",
        default_doc="no image cache",
    ),
)  # fmt: skip

DASK = _section(
    Key("name", "string", "DaskCluster name (DNS-1123, at most 53 characters)", "rapids"),
    Key(
        "namespace", "string",
        "dedicated namespace: it gets default-deny NetworkPolicies and Pod Security `restricted`, "
        f"so {', '.join(SHARED_NAMESPACES)} are refused",
        "dask",
    ),
    Key(
        "image", "string",
        "RAPIDS image of the scheduler and of every worker group that names none: a pinned tag or digest, never `:latest`",
        DEFAULT_RAPIDS_IMAGE,
    ),
    Key(
        "worker", "object",
        "the DaskCluster's own worker group (`spec.worker`, GPU workers), with the keys of a worker group (below)",
        default_doc="see below",
    ),
    Key("colocation", "string", f"GPU worker pod affinity: {' / '.join(COLOCATION_MODES)}", "preferred", allowed=COLOCATION_MODES),
    Key(
        "schedulerGpu", "boolean",
        "the scheduler gets one small GPU on its own one-node pool `scheduler` (tainted so workers stay off): "
        "dask-cudf graphs carry cuDF objects the scheduler deserializes, and GKE mounts the driver only into pods "
        "requesting a GPU; false: a CPU scheduler on the system pool, which `gpudask plan` reports",
        True,
    ),
    Key(
        "schedulerMachineType", "string",
        f"the scheduler pool's machine ({' / '.join(_SCHEDULER_MACHINES)}: one L4 or one T4); its zone must offer the GPU",
        DEFAULT_SCHEDULER_MACHINE_TYPE, allowed=tuple(_SCHEDULER_MACHINES),
    ),
    Key(
        "schedulerSpot", "boolean", "Spot VM for the scheduler pool (a reclaim loses the scheduler's state)",
        default_doc="spot when any GPU pool is spot",
    ),
    Key(
        "schedulerService", "string", f"{' / '.join(SCHEDULER_SERVICES)}; a public `LoadBalancer` is refused",
        "ClusterIP", allowed=SCHEDULER_SERVICES,
    ),
    Key("schedulerCpu", "number", "scheduler CPU request", 1.0),
    Key("schedulerMemoryGb", "number", "scheduler memory request and limit", 4.0),
    Key(
        "clientCidrs", "strings",
        "source ranges for the internal load balancer (required with it), allowed through the NetworkPolicy", [],
    ),
    Key("clientNamespaces", "strings", "namespaces whose pods may reach the scheduler", []),
    Key(
        "tls", "boolean",
        "mutual TLS with a private CA from pulumi-tls: `require-encryption` on, `schedulerAddress` becomes "
        "`tls://...`, the CA and client certificate are outputs",
        False,
    ),
    Key("workerGroups", "map", "map of group name -> extra DaskWorkerGroup (below)", {}),
    Key(
        "autoscale", "object",
        "`{minimum, maximum}`: a DaskAutoscaler for the default group; Pulumi then ignores its replicas",
        default_doc="none (Pulumi owns `worker.replicas`)",
    ),
)  # fmt: skip

# `dask.worker` (the DaskCluster's own group: GPU workers) and `dask.workerGroups.<group>` read the
# same keys with their own defaults and meanings.
WORKER = _section(
    Key("replicas", "integer", "GPU workers of the DaskCluster's own group; not with `autoscale`, whose group starts at its minimum", 1),
    Key("gpusPerWorker", "integer", "GPUs per worker pod: 1 (more breaks the operator's scale-down and is refused)", 1, minimum=1),
    Key(
        "cpu", "number", "CPU request per worker",
        default_doc="the worker's share of the smallest target node, after GKE's reservation and DaemonSet room",
    ),
    Key("memoryGb", "number", "memory request and limit per worker", default_doc="the worker's share, as `cpu`"),
    Key(
        "spillGb", "number",
        "local disk per worker (spill emptyDir, ephemeral-storage request and limit); Dask spills at most half (`max-spill`), P2P shuffle and logs use the rest",
        default_doc="twice `memoryGb`, at most the worker's share of its node's allocatable ephemeral storage",
    ),
    Key("image", "string", "the group's image", default_doc="`dask.image`"),
    Key("pool", "string", "the GPU pool the group's workers go to", default_doc="any A100 pool"),
)  # fmt: skip

GROUP = _section(
    Key("replicas", "integer", "workers in the group", 1),
    Key("gpusPerWorker", "integer", "GPUs per worker (0: CPU workers, `dask worker`, on the system pool)", 0),
    Key("cpu", "number", "CPU request per worker", 1.0, default_doc="{value} for CPU workers; a GPU worker's share of its node"),
    Key("memoryGb", "number", "memory request and limit per worker", 4.0, default_doc="{value} for CPU workers; a GPU worker's share"),
    Key(
        "spillGb", "number",
        "local disk per worker (spill emptyDir, ephemeral-storage request and limit); Dask spills at most half (`max-spill`)",
        default_doc="twice `memoryGb` (GPU workers: at most their share of the node's allocatable ephemeral storage)",
    ),
    Key("image", "string", "the group's image", default_doc="`dask.image`"),
    Key("pool", "string", "the pool its workers go to", default_doc="GPU workers: any A100 pool; CPU workers: the system pool"),
)  # fmt: skip

AUTOSCALE = _section(
    Key("minimum", "integer", "fewest workers", 0),
    Key("maximum", "integer", "most workers", default_doc="`dask.worker.replicas` (at least 1)", minimum=1),
)

EXISTING = _section(
    Key(
        "context", "string",
        "kubeconfig context of the cluster, looked up in the ambient kubeconfig (`KUBECONFIG`, else "
        "`~/.kube/config`); `kubeconfig` (a path) is refused: it would be stored in state",
        required=True,
    ),
    Key(
        "systemPool", "string",
        "GKE pool name of the on-demand CPU pool for the operator, the scheduler and CPU workers",
        SYSTEM_POOL_NAME, default_doc="`system`",
    ),
    Key(
        "installOperator", "boolean",
        "false: the cluster already runs the Dask operator; no Helm release, CRDs or ClusterRole are installed",
        True, default_doc="`true`",
    ),
    Key(
        "networkPoliciesEnforced", "boolean",
        "true once the cluster enforces NetworkPolicies (Dataplane V2, Calico); while false with TLS off the plan warns",
        False, default_doc="`false`",
    ),
    Key(
        "schedulerPool", "object",
        "the cluster's small-GPU pool for the GPU scheduler (`dask.schedulerGpu`; nothing is created) (below)",
        default_doc="none: `dask.schedulerGpu` must be `false` (a CPU scheduler; the plan warns)",
    ),
)  # fmt: skip

# `existingCluster.schedulerPool`: what the host's small-GPU pool is (the stack creates none).
EXISTING_SCHEDULER_POOL = _section(
    Key("name", "string", "its GKE name: the scheduler's nodeSelector (`cloud.google.com/gke-nodepool`)", required=True),
    Key(
        "machineType", "string",
        "its machine type: its GPU and room, for the plan and `rehearse --cluster`",
        required=True, allowed=tuple(_SCHEDULER_MACHINES),
    ),
    Key("maxNodes", "integer", "autoscaler maximum", 1, minimum=1),
    Key("spot", "boolean", "Spot VMs", False),
    Key(
        "taints", "strings",
        "its own taints as `key=value:Effect`, besides GKE's `nvidia.com/gpu`: the scheduler tolerates them", [],
    ),
)  # fmt: skip

MONITORING = _section(
    Key(
        "collection", "string",
        f"{' / '.join(MONITORING_COLLECTIONS)}: Managed Prometheus `PodMonitoring`s, Prometheus-operator "
        "`PodMonitor`s, or nothing; the scheduler (8787) and every worker group (8788) at `/metrics`, and a "
        "NetworkPolicy admitting only that collector to those ports",
        allowed=MONITORING_COLLECTIONS,
        default_doc="`gmp` when the stack creates GKE (Managed Prometheus on); `none` with `existingCluster`",
    ),
    Key("prometheusNamespace", "string", "with `prometheus-operator`: the namespace of the Prometheus pods admitted", "monitoring"),
    Key(
        "dashboard", "boolean",
        "a Cloud Monitoring dashboard and alert policies (PromQL on Managed Prometheus); needs `collection: gmp` "
        "and a stack that creates GKE",
        default_doc="`true`; `false` with `existingCluster`",
    ),
    Key(
        "notificationChannels", "strings",
        "notification channel ids (`projects/<p>/notificationChannels/<n>`) every alert notifies; none is created",
        [], default_doc="none: alerts open incidents, notify nobody",
    ),
    Key("alerts", "object", "alert thresholds (below)", default_doc="see below"),
)  # fmt: skip

ALERTS = _section(
    Key("noGpuWorkerMinutes", "integer", "work queued or waiting for a GPU while no GPU worker is up, this long (stockout, quota)", 15, minimum=1),
    Key("spilledBytes", "integer", "a worker holding more than this spilled to disk", 0),
    Key("spillMinutes", "integer", "... for this long", 10, minimum=1),
    Key("pausedMinutes", "integer", "a worker paused (memory above its pause fraction) this long", 5, minimum=1),
    Key("schedulerTickSeconds", "number", "the scheduler's longest event-loop tick above this, or the scheduler down", 5.0),
    Key("schedulerMinutes", "integer", "... for this long", 5, minimum=1),
    Key("gpuIdleMinutes", "integer", "GPUs held by workers but under `gpuIdlePercent` busy (DCGM), this long", 60, minimum=1),
    Key("gpuIdlePercent", "number", "GPU utilisation counted as idle", 5.0),
    Key("restarts", "integer", "more workers leaving than this within `restartWindowMinutes`: a restart loop", 3, minimum=1),
    Key("restartWindowMinutes", "integer", "the restart window", 15, minimum=1),
)  # fmt: skip

# Every object below the top level, by the path the README and the error messages name it with.
SECTIONS: dict[str, Section] = {
    "gpuNodePools.<name>": POOL,
    "dask": DASK,
    "dask.worker": WORKER,
    "dask.workerGroups.<group>": GROUP,
    "dask.autoscale": AUTOSCALE,
    "existingCluster": EXISTING,
    "existingCluster.schedulerPool": EXISTING_SCHEDULER_POOL,
    "monitoring": MONITORING,
    "monitoring.alerts": ALERTS,
}

# --- derived: the key sets the program and tools use ------------------------------------
TOP_KEYS = set(TOP)
SCALAR_KEYS = {k.name for k in TOP.values() if k.type in PULUMI_TYPES}
"""The top-level keys Pulumi.yaml declares (with their defaults)."""
POOL_KEYS = set(POOL)
GROUP_KEYS = set(GROUP)
DASK_KEYS = set(DASK)
EXISTING_KEYS = set(EXISTING)
EXISTING_SCHEDULER_POOL_KEYS = set(EXISTING_SCHEDULER_POOL)
MONITORING_KEYS = set(MONITORING)
ALERT_KEYS = set(ALERTS)

# The default group's keys before it became `dask.worker` with the words of `dask.workerGroups`.
RENAMED_DASK_KEYS = {
    "workers": "worker.replicas",
    "gpusPerWorker": "worker.gpusPerWorker",
    "workerCpu": "worker.cpu",
    "workerMemoryGb": "worker.memoryGb",
    "pool": "worker.pool",
}
# What the program gives an existing cluster's Kubernetes provider as `kubeconfig`: empty, so the
# provider loads the ambient kubeconfig and the state holds nothing of the machine that ran it.
EXISTING_CLUSTER_KUBECONFIG = ""
# Keys that only shape what this stack creates on GCP: with existingCluster, setting one is a mistake
# (scalar keys with Pulumi.yaml defaults cannot be told apart from their default, so only these two).
GKE_ONLY_KEYS = ("authorizedNetworks", "labels")
