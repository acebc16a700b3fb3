"""The plan's checks over a recorded program: schemas, the operator's view, GKE enums, scheduling.

Every check reads the recording (what the program really declared), not the settings,
so a bug anywhere between config and resource shows up here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.cloud.container_v1 import types as gke

from components import gpu_drivers
from components.catalog import (
    GPU_RESOURCE,
    gpu_pod_capacity,
)
from components.security_spec import is_collector_peer
from gpudask.record.dask_operator import created_objects, dask_clusters
from gpudask.record.node_pools import NodePool, node_pools
from gpudask.record.recorder import Recorded, Recording
from gpudask.record.resource_types import CLUSTER, NODE_POOL, RELEASE
from gpudask.record.view import kubernetes_manifests, recorded_settings
from gpudask.upstream import schemas as upstream_schemas

DASK_KINDS = ("DaskCluster", "DaskWorkerGroup", "DaskAutoscaler", "DaskJob")


ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Finding:
    resource: str
    path: str
    reason: str
    severity: str = ERROR
    """`error`: the stack would not work as declared, and the plan fails. `warning`: a choice the
    stack file makes on purpose, with a known cost: printed and counted, failing only with
    `gpudask plan --strict`."""

    def __str__(self) -> str:
        return f"{self.resource}: {self.path}: {self.reason}"


def _label(r: Recorded, manifest: dict[str, Any] | None = None) -> str:
    if manifest is not None:
        meta = manifest.get("metadata") or {}
        return f"{manifest.get('kind')}/{meta.get('namespace', '') + '/' if meta.get('namespace') else ''}{meta.get('name', r.name)}"
    return f"{r.type.rsplit(':', 1)[-1]} {r.name}"


def _split(finding: str) -> tuple[str, str]:
    path, _, reason = finding.partition(": ")
    return path, reason


# --- schema checks ---------------------------------------------------------------------------
def schema_findings(rec: Recording) -> list[Finding]:
    findings = []
    for r, manifest in kubernetes_manifests(rec):
        check = (
            upstream_schemas.crd_findings
            if manifest["kind"] in upstream_schemas.CRD_KINDS
            else upstream_schemas.kubernetes_findings
        )
        findings += [Finding(_label(r, manifest), *_split(f)) for f in check(manifest)]
    return findings


def operator_findings(rec: Recording) -> list[Finding]:
    """Feed the DaskCluster through the operator's own builders; validate what comes out."""
    findings = []
    for cluster, groups in dask_clusters([m for _, m in kubernetes_manifests(rec)]):
        name = cluster["metadata"]["name"]
        try:
            objects = created_objects(cluster, groups)
        except (KeyError, TypeError) as err:
            findings.append(Finding(f"DaskCluster/{name}", "spec", f"the operator could not build it: {err!r}"))
            continue
        for obj in objects:
            label = f"{obj['kind']}/{obj['metadata']['namespace']}/{obj['metadata']['name']} (operator-built)"
            findings += [Finding(label, *_split(f)) for f in upstream_schemas.kubernetes_findings(obj)]
            if obj["kind"] == "Deployment" and obj["metadata"]["labels"].get("dask.org/component") == "worker":
                env = {
                    e["name"]: e.get("value") for e in obj["spec"]["template"]["spec"]["containers"][0].get("env", [])
                }
                if rec.outputs.get("schedulerAddress") not in (None, env.get("DASK_SCHEDULER_ADDRESS")):
                    findings.append(
                        Finding(
                            label,
                            "spec.template.spec.containers[0].env.DASK_SCHEDULER_ADDRESS",
                            f"is {env.get('DASK_SCHEDULER_ADDRESS')!r} but the stack output schedulerAddress is {rec.outputs['schedulerAddress']!r}",
                        )
                    )
    return findings


def helm_findings(rec: Recording) -> list[Finding]:
    findings = []
    for r in rec.of_type(RELEASE):
        if r.inputs.get("chart") == "dask-kubernetes-operator":
            for f in upstream_schemas.helm_value_findings(r.inputs.get("values") or {}):
                path, reason = _split(f)
                findings.append(Finding(f"Release {r.inputs.get('name')}", f"values.{path}", reason))
    return findings


def _enum_names(enum: Any) -> set[str]:
    return {e.name for e in enum if not e.name.endswith("UNSPECIFIED")}


def gke_enum_findings(rec: Recording) -> list[Finding]:
    """GKE enum values against the GKE API's own types (google-cloud-container)."""
    findings = []

    def check(r: Recorded, path: str, value: Any, allowed: set[str]) -> None:
        if value is not None and value not in allowed:
            findings.append(
                Finding(_label(r), path, f"{value!r} is not a GKE value; one of {', '.join(sorted(allowed))}")
            )

    for r in rec.of_type(CLUSTER):
        check(
            r,
            "releaseChannel.channel",
            (r.inputs.get("releaseChannel") or {}).get("channel"),
            _enum_names(gke.ReleaseChannel.Channel),
        )
        check(r, "datapathProvider", r.inputs.get("datapathProvider"), _enum_names(gke.DatapathProvider))
    for r in rec.of_type(NODE_POOL):
        config = r.inputs.get("nodeConfig") or {}
        check(
            r,
            "nodeConfig.workloadMetadataConfig.mode",
            (config.get("workloadMetadataConfig") or {}).get("mode"),
            _enum_names(gke.WorkloadMetadataConfig.Mode),
        )
        for i, taint in enumerate(config.get("taints") or []):
            check(r, f"nodeConfig.taints[{i}].effect", taint.get("effect"), _enum_names(gke.NodeTaint.Effect))
        for i, acc in enumerate(config.get("guestAccelerators") or []):
            version = (acc.get("gpuDriverInstallationConfig") or {}).get("gpuDriverVersion")
            check(
                r,
                f"nodeConfig.guestAccelerators[{i}].gpuDriverInstallationConfig.gpuDriverVersion",
                version,
                _enum_names(gke.GPUDriverInstallationConfig.GPUDriverVersion),
            )
        if config.get("imageType") and not str(config["imageType"]).startswith(("COS_CONTAINERD", "UBUNTU_CONTAINERD")):
            findings.append(
                Finding(
                    _label(r),
                    "nodeConfig.imageType",
                    f"{config['imageType']!r}: GPU nodes need a containerd image (COS_CONTAINERD)",
                )
            )
    return findings


# --- scheduling feasibility --------------------------------------------------------------------
# The pools and what their nodes look like to the Kubernetes scheduler: gpudask/record/node_pools.py
# (the local control plane's nodes are made from the same model).
def node_models(rec: Recording) -> list[NodePool]:
    """What GKE's nodes of each pool will look like to the Kubernetes scheduler."""
    return node_pools(rec)


@dataclass(frozen=True)
class PodModel:
    label: str
    spec: dict[str, Any]
    replicas: int
    daemon: bool = False


def _quantity_cpu(value: Any) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _quantity_gb(value: Any) -> float:
    text = str(value)
    units = {
        "Ki": 1 / 1024**2,
        "Mi": 1 / 1024,
        "Gi": 1.0,
        "Ti": 1024.0,
        "k": 1e3 / 1024**3,
        "M": 1e6 / 1024**3,
        "G": 1e9 / 1024**3,
    }
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text) / 1024**3


def pod_requests(spec: dict[str, Any]) -> tuple[float, float, int]:
    cpu = memory = 0.0
    gpus = 0
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        cpu += _quantity_cpu(req.get("cpu", 0))
        memory += _quantity_gb(req.get("memory", 0))
        gpus += int(str((res.get("limits") or {}).get(GPU_RESOURCE, req.get(GPU_RESOURCE, 0))))
    return cpu, memory, gpus


def _tolerates(spec: dict[str, Any], taint: dict[str, str]) -> bool:
    if taint["effect"] == "PreferNoSchedule":
        return True
    for t in spec.get("tolerations") or []:
        if t.get("effect") not in (None, "", taint["effect"]):
            continue
        if t.get("operator") == "Exists" and t.get("key") in (None, "", taint["key"]):
            return True
        if t.get("key") == taint["key"] and t.get("value", "") == taint["value"]:
            return True
    return False


def _matches_expression(labels: dict[str, str], expr: dict[str, Any]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    return {
        "Exists": key in labels,
        "DoesNotExist": key not in labels,
        "In": labels.get(key) in values,
        "NotIn": labels.get(key) not in values,
    }.get(op, False)


def why_not(pod: PodModel, node: NodePool) -> str | None:
    """None when the pod can land on this pool's nodes, else the first reason it cannot."""
    spec = pod.spec
    labels = node.node_labels
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return f"nodeSelector {key}={value} (node has {labels.get(key)!r})"
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms and not any(all(_matches_expression(labels, e) for e in t.get("matchExpressions") or []) for t in terms):
        return "required node affinity does not match the pool's labels"
    for taint in node.taints:
        if not _tolerates(spec, taint):
            return f"no toleration for taint {taint['key']}={taint['value']}:{taint['effect']}"
    cpu, memory, gpus = pod_requests(spec)
    if gpus > node.gpus:
        return f"requests {gpus} GPUs, the node has {node.gpus}"
    if cpu > node.room_cpu + 1e-9:
        return f"requests {cpu:g} CPU, the node has {node.room_cpu:.2f} allocatable"
    if memory > node.room_memory_gb + 1e-9:
        return f"requests {memory:.1f} GiB, the node has {node.room_memory_gb:.1f} allocatable"
    return None


def workload_pods(rec: Recording) -> list[PodModel]:
    manifests = [m for _, m in kubernetes_manifests(rec)]
    pods: list[PodModel] = []
    for m in manifests:
        kind, name = m["kind"], m["metadata"]["name"]
        if kind in ("DaemonSet", "Deployment", "StatefulSet"):
            pods.append(
                PodModel(
                    f"{kind}/{name}",
                    m["spec"]["template"]["spec"],
                    int(m["spec"].get("replicas", 1)),
                    daemon=kind == "DaemonSet",
                )
            )
        elif kind in ("DaskCluster", "DaskWorkerGroup"):
            if kind == "DaskCluster":
                pods.append(PodModel(f"DaskCluster/{name} scheduler", m["spec"]["scheduler"]["spec"], 1))
            worker = m["spec"]["worker"]
            pods.append(PodModel(f"{kind}/{name} workers", worker["spec"], int(worker.get("replicas", 0))))
        elif kind == "DaskAutoscaler":
            cluster = next((p for p in pods if p.label == f"DaskCluster/{m['spec']['cluster']} workers"), None)
            if cluster is not None:
                pods.append(PodModel(f"DaskAutoscaler/{name} maximum", cluster.spec, int(m["spec"]["maximum"])))
    for r in rec.of_type(RELEASE):
        values = r.inputs.get("values") or {}
        spec = {
            "nodeSelector": values.get("nodeSelector") or {},
            "tolerations": values.get("tolerations") or [],
            "affinity": values.get("affinity") or {},
            "containers": [{"name": "operator", "resources": values.get("resources") or {}}],
        }
        pods.append(PodModel(f"Release/{r.inputs.get('name')} operator pod", spec, 1))
    return pods


def scheduling_findings(rec: Recording) -> list[Finding]:
    nodes = node_models(rec)
    gpu_nodes = [n for n in nodes if n.gpus]
    findings = []
    for pod in workload_pods(rec):
        reasons = {n.name: why_not(pod, n) for n in nodes}
        fits = [n for n in nodes if reasons[n.name] is None]
        if pod.daemon:
            # The driver DaemonSet must land on every GPU pool; elsewhere it is irrelevant.
            if "nvidia-driver-installer" in pod.label:
                findings += [
                    Finding(
                        pod.label,
                        "spec.template.spec.affinity",
                        f"never schedules on GPU pool {n.name}: {reasons[n.name]} (GKE manages that pool's driver; set gpuDriverVersion INSTALLATION_DISABLED)",
                    )
                    for n in gpu_nodes
                    if reasons[n.name] is not None
                ]
            # The image prepuller is pointless on a GPU pool it cannot reach.
            if "image-prepuller" in pod.label:
                findings += [
                    Finding(pod.label, "spec.template.spec", f"never schedules on GPU pool {n.name}: {reasons[n.name]}")
                    for n in gpu_nodes
                    if reasons[n.name] is not None
                ]
            continue
        if not fits:
            detail = "; ".join(f"{pool}: {reason}" for pool, reason in reasons.items())
            findings.append(Finding(pod.label, "spec", f"fits no node pool ({detail})"))
            continue
        _, _, gpus = pod_requests(pod.spec)
        if gpus and pod.replicas:
            capacity = sum(gpu_pod_capacity(n.gpus, n.max_nodes, gpus) for n in fits)
            if pod.replicas > capacity:
                findings.append(
                    Finding(
                        pod.label,
                        "replicas",
                        f"{pod.replicas} pods x {gpus} GPUs exceed maxNodes of pools {', '.join(n.name for n in fits)} (room for {capacity})",
                    )
                )
            required = ((pod.spec.get("affinity") or {}).get("podAffinity") or {}).get(
                "requiredDuringSchedulingIgnoredDuringExecution"
            )
            if required and pod.replicas * gpus > max(n.gpus for n in fits):
                findings.append(
                    Finding(
                        pod.label,
                        "spec.affinity.podAffinity",
                        f"required colocation of {pod.replicas} x {gpus} GPUs cannot fit one node ({max(n.gpus for n in fits)} GPUs)",
                    )
                )
    return findings


# --- what a real Dask cluster would break ------------------------------------------------
OPERATOR_NAMESPACE_LABEL = "kubernetes.io/metadata.name"
DASHBOARD_PORT = 8787


def _option(args: list[Any], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return str(args[i + 1])
        if str(arg).startswith(name + "="):
            return str(arg).split("=", 1)[1]
    return None


def _worker_pods(manifest: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    spec = manifest.get("spec") or {}
    if manifest["kind"] in ("DaskCluster", "DaskWorkerGroup") and "worker" in spec:
        return [("spec.worker.spec", spec["worker"].get("spec") or {})]
    return []


def unpinned_image_reason(image: str) -> str:
    """Why a tag alone is not enough for the Dask image (a plan warning)."""
    return (
        f"{image} is pinned by tag only: the registry can move the tag, and with imagePullPolicy "
        "IfNotPresent each node keeps whichever build it pulled first (workers of one cluster on "
        "different builds); pin `dask.image` as `<tag>@sha256:<digest>` (the digest from "
        f"`crane digest {image}` or `docker buildx imagetools inspect {image}`), the tag kept for people"
    )


def dask_findings(rec: Recording) -> list[Finding]:
    """Problems only a running cluster would show, visible in the manifests: a scheduler without
    a GPU, worker memory limits Dask does not know, 8787 reachable by clients, and an image whose
    Dask is not the one clients and the rehearsal run here."""
    from components.operator_spec import NAMESPACE as OPERATOR_NAMESPACE
    from gpudask.client import versions

    findings: list[Finding] = []
    unpinned: set[str] = set()
    manifests = kubernetes_manifests(rec)
    for r, m in manifests:
        label = _label(r, m)
        if m["kind"] == "DaskCluster":
            scheduler = ((m["spec"].get("scheduler") or {}).get("spec") or {}).get("containers") or [{}]
            limits = (scheduler[0].get("resources") or {}).get("limits") or {}
            if not limits.get(GPU_RESOURCE):
                findings.append(
                    Finding(
                        label,
                        "spec.scheduler.spec.containers[0].resources.limits",
                        "the scheduler has no GPU: dask-cudf graphs carry cuDF objects it must deserialize, and GKE "
                        "mounts the driver only into pods requesting one, so they fail (dask.schedulerGpu: true)",
                        # Only a stack file that says schedulerGpu: false gets here: its choice, said aloud.
                        WARNING,
                    )
                )
        for path, pod in _worker_pods(m):
            for i, container in enumerate(pod.get("containers") or []):
                args = list(container.get("args") or [])
                limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
                given = _option(args, "--memory-limit")
                expected = str(round(_quantity_gb(limit) * 1024**3)) if limit else None
                if given is None or given == "auto" or given != expected:
                    findings.append(
                        Finding(
                            label,
                            f"{path}.containers[{i}].args",
                            f"Dask memory limit {given or 'auto'} is not the container's {limit or '(none)'}: "
                            "`auto` takes memory x threads / the node's vCPUs; pass --memory-limit "
                            "with the container limit in bytes",
                        )
                    )
        for path, image in [
            ("spec.scheduler.spec.containers[0].image", (m.get("spec") or {}).get("scheduler", {}).get("spec", {})),
            *[(f"{p}.containers[0].image", pod) for p, pod in _worker_pods(m)],
        ]:
            name = ((image.get("containers") or [{}])[0] or {}).get("image", "") if isinstance(image, dict) else ""
            skew = versions.skew(name) if name else None
            if skew:
                findings.append(Finding(label, path, skew))
            if name and "@sha256:" not in name and name not in unpinned:
                unpinned.add(name)
                findings.append(Finding(label, path, unpinned_image_reason(name), WARNING))
        if m["kind"] == "NetworkPolicy":
            selector = ((m["spec"].get("podSelector") or {}).get("matchLabels")) or {}
            if selector.get("dask.org/component", "scheduler") != "scheduler":
                continue
            for j, rule in enumerate(m["spec"].get("ingress") or []):
                ports = {p.get("port") for p in rule.get("ports") or []}
                if ports and DASHBOARD_PORT not in ports:
                    continue
                for peer in rule.get("from") or [{}]:
                    namespace = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {}).get(
                        OPERATOR_NAMESPACE_LABEL
                    )
                    if "podSelector" in peer and "namespaceSelector" not in peer:
                        continue  # the Dask namespace's own pods
                    if is_collector_peer(peer):
                        continue  # the metrics collector: /metrics is on 8787 (components/monitoring_spec.py)
                    if namespace != OPERATOR_NAMESPACE:
                        findings.append(
                            Finding(
                                label,
                                f"spec.ingress[{j}]",
                                f"lets {peer or 'everyone'} reach the scheduler's 8787: the dashboard and the "
                                "unauthenticated HTTP API (POST /api/v1/retire_workers), plain HTTP even with "
                                "TLS; only the operator's namespace needs it, people use kubectl port-forward",
                            )
                        )
    return findings


# --- GKE prerequisites ------------------------------------------------------------------------
IAM_MEMBER = "gcp:projects/iAMMember:IAMMember"
PROJECT_SERVICE = "gcp:projects/service:Service"
STREAMING_ROLE = "roles/serviceusage.serviceUsageConsumer"
STREAMING_API = "containerfilesystem.googleapis.com"


def prerequisite_findings(rec: Recording) -> list[Finding]:
    """Image streaming needs the Container File System API and, for a custom node service
    account, serviceUsageConsumer (https://github.com/terraform-google-modules/terraform-google-kubernetes-engine/issues/2251, https://github.com/terraform-google-modules/terraform-google-kubernetes-engine/pull/2262)."""
    members = {
        (r.inputs.get("project"), r.inputs.get("member"))
        for r in rec.of_type(IAM_MEMBER)
        if r.inputs.get("role") == STREAMING_ROLE
    }
    apis = {(r.inputs.get("project"), r.inputs.get("service")) for r in rec.of_type(PROJECT_SERVICE)}
    findings = []
    for pool in rec.of_type(NODE_POOL):
        config = pool.inputs.get("nodeConfig") or {}
        if not (config.get("gcfsConfig") or {}).get("enabled"):
            continue
        project, account = pool.inputs.get("project"), config.get("serviceAccount")
        if (project, f"serviceAccount:{account}") not in members:
            findings.append(
                Finding(
                    _label(pool),
                    "nodeConfig.gcfsConfig.enabled",
                    f"image streaming, but the node service account {account!r} lacks {STREAMING_ROLE} in project {project!r}: pods on these nodes fail to start",
                )
            )
        if (project, STREAMING_API) not in apis:
            findings.append(
                Finding(
                    _label(pool),
                    "nodeConfig.gcfsConfig.enabled",
                    f"image streaming, but nothing enables {STREAMING_API} in project {project!r}",
                )
            )
    return findings


# --- the driver against the images ---------------------------------------------------------
_GKE_DRIVER_MODES = {"INSTALLATION_DISABLED": "daemonset", "DEFAULT": "gke-default", "LATEST": "gke-latest"}


def _gpu_containers(rec: Recording) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, path, container) of every Dask container that requests a GPU."""
    out = []
    for r, m in kubernetes_manifests(rec):
        label = _label(r, m)
        specs: list[tuple[str, dict[str, Any]]] = []
        if m["kind"] == "DaskCluster":
            specs = [
                ("spec.scheduler.spec", m["spec"]["scheduler"]["spec"]),
                ("spec.worker.spec", m["spec"]["worker"]["spec"]),
            ]
        elif m["kind"] == "DaskWorkerGroup":
            specs = [("spec.worker.spec", m["spec"]["worker"]["spec"])]
        for path, spec in specs:
            for i, container in enumerate(spec.get("containers") or []):
                limits = (container.get("resources") or {}).get("limits") or {}
                if int(str(limits.get(GPU_RESOURCE, 0))):
                    out.append((label, f"{path}.containers[{i}]", container))
    return out


def driver_findings(rec: Recording) -> list[Finding]:
    """Each GPU image against the driver its pools install (components/gpu_drivers.yaml), and
    the driver's libraries on every GPU container's loader path."""
    clusters = rec.of_type(CLUSTER)
    channel = ((clusters[0].inputs.get("releaseChannel") or {}).get("channel") if clusters else None) or "REGULAR"
    modes = set()
    for p in rec.of_type(NODE_POOL):
        for acc in (p.inputs.get("nodeConfig") or {}).get("guestAccelerators") or []:
            version = (acc.get("gpuDriverInstallationConfig") or {}).get("gpuDriverVersion") or "DEFAULT"
            modes.add(_GKE_DRIVER_MODES.get(version, "gke-default"))
    findings = []
    for label, path, container in _gpu_containers(rec):
        for mode in sorted(modes):
            reason = gpu_drivers.mismatch(str(container.get("image", "")), mode, channel)
            if reason:
                findings.append(Finding(label, f"{path}.image", f"{container.get('image')!r} {reason}"))
        env = {e.get("name"): str(e.get("value", "")) for e in container.get("env") or []}
        if "/usr/local/nvidia/lib64" not in env.get("LD_LIBRARY_PATH", "").split(":"):
            findings.append(
                Finding(
                    label,
                    f"{path}.env",
                    "LD_LIBRARY_PATH does not include /usr/local/nvidia/lib64, where GKE mounts the driver's "
                    "libraries: CUDA libraries are not found (rapidsai/deployment#698)",
                )
            )
    return findings


def monitoring_findings(rec: Recording) -> list[Finding]:
    """GPU metrics: a cluster with Managed Prometheus but no managed DCGM (the driver DaemonSet
    mode) leaves the dashboard's GPU tiles and the GPU-idle alert without data: said, not silent."""
    findings = []
    for cluster in rec.of_type(CLUSTER):
        config = cluster.inputs.get("monitoringConfig") or {}
        prometheus = (config.get("managedPrometheus") or {}).get("enabled")
        if prometheus and "DCGM" not in (config.get("enableComponents") or []):
            findings.append(
                Finding(
                    _label(cluster),
                    "monitoringConfig.enableComponents",
                    "no DCGM GPU metrics: GKE's managed DCGM is declared only where GKE installs the driver "
                    "(driver: gke-default or gke-latest), and this stack uses the driver DaemonSet; the "
                    "dashboard's GPU tiles and the GPU-idle alert stay empty (GOTCHAS.md)",
                    WARNING,
                )
            )
    return findings


def host_cluster_findings(rec: Recording) -> list[Finding]:
    """existingCluster: the stack's NetworkPolicies guard the scheduler only if the host cluster
    enforces them, which nothing here can see; with TLS off nothing else does."""
    settings = recorded_settings(rec)
    existing = settings.existing_cluster
    if existing is None or settings.dask.tls or existing.network_policies_enforced:
        return []
    return [
        Finding(
            "existingCluster",
            "networkPoliciesEnforced",
            "nothing shows that this cluster enforces NetworkPolicies and dask.tls is off: any pod of the cluster "
            "may reach the scheduler (which runs the code it is sent); set dask.tls: true, or "
            "existingCluster.networkPoliciesEnforced: true once the cluster enforces them (Dataplane V2, Calico)",
            WARNING,
        )
    ]


def all_findings(rec: Recording) -> list[Finding]:
    return [
        *host_cluster_findings(rec),
        *schema_findings(rec),
        *operator_findings(rec),
        *helm_findings(rec),
        *gke_enum_findings(rec),
        *scheduling_findings(rec),
        *dask_findings(rec),
        *driver_findings(rec),
        *prerequisite_findings(rec),
        *monitoring_findings(rec),
    ]
