"""Pure builders for the Dask custom resources: settings in, plain dicts out.

The DaskCluster body starts from dask-kubernetes' own `make_cluster_spec` (what
`KubeCluster` creates, and what `KubeCluster.from_name` expects to read back), then adds
what a GPU cluster on GKE needs: GPU limits, `--resources GPU=1` per GPU process, worker colocation,
scheduler placement, tolerations and resource requests.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

from dask_kubernetes.operator import make_cluster_spec

from components import scheduler_preload, worker_prestop
from components.catalog import GPU_RESOURCE, GPU_TAINT_EFFECT, GPU_TAINT_VALUE, MANAGED_BY_LABELS
from components.gpu_drivers import DRIVER_LIBRARY_PATH
from components.security_spec import harden_pod
from components.settings import SCHEDULER_TAINT, SYSTEM_POOL_NAME, DaskSettings, WorkerGroupSettings

API_VERSION = "kubernetes.dask.org/v1"
WORKER_HTTP_PORT = 8788
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Equal", "value": GPU_TAINT_VALUE, "effect": GPU_TAINT_EFFECT}
# The scheduler pool's own taint (components/gke_spec.py SCHEDULER_TAINT).
SCHEDULER_TOLERATION = {
    "key": SCHEDULER_TAINT[0],
    "operator": "Equal",
    "value": SCHEDULER_TAINT[1],
    "effect": SCHEDULER_TAINT[2],
}
NODEPOOL_LABEL = "cloud.google.com/gke-nodepool"
# Makes `pulumi up` wait until the operator has accepted the DaskCluster: its create handler
# (`daskcluster_create`) validates the name and writes `status.phase` (Created). Never a
# particular phase: the pinned operator's handlers race, and the cluster can stay Pending for
# good with its scheduler running (https://github.com/dask/dask-kubernetes/issues/968, GOTCHAS.md).
# The TLS certificates' digest, on the scheduler (and so on its pod and Service): see dask_cluster.py.
TLS_DIGEST_ANNOTATION = "gpu-dask/tls-certificates-sha256"
WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
WAIT_FOR_CONDITION = "jsonpath={.status.phase}"
# The cluster autoscaler never drains a node for a pod carrying this (GKE docs).
SAFE_TO_EVICT_ANNOTATION = "cluster-autoscaler.kubernetes.io/safe-to-evict"
# Where workers spill: an emptyDir with a size limit, so spill cannot fill the node's boot disk.
SPILL_VOLUME = "dask-spill"
SPILL_DIR = "/spill"

# How long the scheduler may fail its liveness probe (e.g. while a large graph blocks its
# event loop) before the kubelet restarts it.
SCHEDULER_LIVENESS_GRACE_S = 300

# Shipped as text with the pods (nothing to install in the image): the scheduler refuses
# count-only retirement, workers retire themselves by name before SIGTERM.
SCHEDULER_PRELOAD = Path(scheduler_preload.__file__).read_text()
WORKER_PRESTOP = Path(worker_prestop.__file__).read_text()
_PRESTOP_DEADLINE_LINE = f"DEADLINE_S = {worker_prestop.DEADLINE_S}\n"
assert _PRESTOP_DEADLINE_LINE in WORKER_PRESTOP
# After the hook's deadline: SIGTERM, and the worker's own close.
PRESTOP_TO_SIGTERM_S = 20

# What a retiring worker holds, and how long moving it takes. Estimates, not measurements of this
# stack: results in memory are serialized and sent to the other workers (RETIRE_MEMORY_GB_PER_S);
# spilled ones are read back from the boot disk first (pd-ssd reads ~0.48 MB/s per GB of disk:
# ~0.15 GB/s on a 300 GB disk). GKE's cluster autoscaler waits at most 10 minutes for a pod to
# terminate on scale-down, so the hook never asks for more (RETIRE_MAX_S).
RETIRE_BASE_S = 30
RETIRE_MEMORY_GB_PER_S = 0.5
RETIRE_DISK_GB_PER_S = 0.15
RETIRE_MIN_S = worker_prestop.DEADLINE_S
RETIRE_MAX_S = 600 - PRESTOP_TO_SIGTERM_S

# Of a worker's local disk (`spillGb`, its ephemeral-storage): 1 GiB for logs and the container's
# writable layer (outside the emptyDir), and Dask spills at most half of the rest (`max-spill`):
# P2P shuffle writes its shards to the same local directory, outside max-spill's count.
SPILL_LOG_ROOM_GB = 1.0
MAX_SPILL_SHARE = 0.5
MAX_SPILL_ENV = "DASK_DISTRIBUTED__WORKER__MEMORY__MAX_SPILL"

# Dask worker resources (not Kubernetes'): GPU workers advertise one `GPU` per process, CPU
# workers `CPU` = their threads. With a CPU group next to the GPU workers, the scheduler gives
# every unannotated task the GPU restriction (scheduler_preload.DEFAULT_RESOURCES_ENV), so CPU
# work is opt-in: `dask.annotate(resources={"CPU": 1})`.
DASK_GPU_RESOURCE = "GPU"
DASK_CPU_RESOURCE = "CPU"

# What Pulumi must treat as "replace the custom resource": the operator ignores edits
# to pod specs of a running cluster (https://github.com/dask/dask-kubernetes/issues/895), so an in-place update
# would report success and change nothing.
CLUSTER_REPLACE_ON_CHANGES = ["spec.scheduler", "spec.worker.spec"]
WORKER_GROUP_REPLACE_ON_CHANGES = ["spec.worker.spec"]


def _gib(value: float) -> str:
    return f"{int(value * 1024)}Mi"


def _cpu(value: float) -> str:
    return f"{round(value * 1000)}m"


def _drop_none(obj: Any) -> Any:
    # make_cluster_spec leaves `env: None` / `resources: None`; the API server would store nulls.
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


def worker_selector(cluster_name: str, group_name: str) -> dict[str, str]:
    """Labels the operator puts on this cluster's workers of one group (and only those)."""
    return {
        "dask.org/cluster-name": cluster_name,
        "dask.org/component": "worker",
        "dask.org/workergroup-name": group_name,
    }


def colocation_affinity(cluster_name: str, group_name: str, mode: str) -> dict[str, Any] | None:
    """Pod affinity that packs one group's workers onto as few nodes as possible.

    The seed's selector (`dask.org/component in [worker]`) matches every Dask worker in the
    Kubernetes cluster, other DaskClusters included; this one selects only this group.
    """
    if mode == "none":
        return None
    term = {
        "labelSelector": {"matchLabels": worker_selector(cluster_name, group_name)},
        "topologyKey": "kubernetes.io/hostname",
    }
    if mode == "required":
        return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {
        "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]}
    }


def memory_bytes(memory_gb: float) -> int:
    """The exact byte count of a `memory_gb` container limit (`_gib` renders the same amount)."""
    return int(memory_gb * 1024) * 1024 * 1024


def spill_dir_gb(spill_gb: float) -> float:
    """The spill emptyDir's sizeLimit: the worker's local disk less the room for logs."""
    return spill_gb - SPILL_LOG_ROOM_GB


def max_spill_bytes(spill_gb: float) -> int:
    """`distributed.worker.memory.max-spill`: Dask stops spilling (and pauses) beyond it."""
    return int(memory_bytes(spill_dir_gb(spill_gb)) * MAX_SPILL_SHARE)


def retire_deadline_s(memory_gb: float, spill_gb: float) -> int:
    """How long the preStop hook waits for the worker's retirement: time to move what it can hold."""
    spilled_gb = max_spill_bytes(spill_gb) / 1024**3
    wanted = RETIRE_BASE_S + memory_gb / RETIRE_MEMORY_GB_PER_S + spilled_gb / RETIRE_DISK_GB_PER_S
    return int(min(RETIRE_MAX_S, max(RETIRE_MIN_S, math.ceil(wanted))))


def prestop_hook(memory_gb: float, spill_gb: float) -> str:
    """The preStop hook's text with its deadline sized to the worker."""
    deadline = retire_deadline_s(memory_gb, spill_gb)
    return WORKER_PRESTOP.replace(_PRESTOP_DEADLINE_LINE, f"DEADLINE_S = {deadline}\n")


def with_driver_libraries(container: dict[str, Any]) -> None:
    """Put the driver's libraries, which GKE mounts at /usr/local/nvidia, on the loader path.

    With a GKE-installed driver, RAPIDS images have failed to find the CUDA libraries
    without it (https://github.com/rapidsai/deployment/issues/698); with the DaemonSet the mount is the same.
    """
    env = [e for e in container.get("env") or [] if e.get("name") != "LD_LIBRARY_PATH"]
    container["env"] = [*env, {"name": "LD_LIBRARY_PATH", "value": DRIVER_LIBRARY_PATH}]


def _resources(cpu: float, memory_gb: float, gpus: int, spill_gb: float = 0.0) -> dict[str, Any]:
    # Memory limit = request: the nanny's memory limit is set to the same bytes, and the pod
    # is never OOM-killed for using what it asked for. Ephemeral storage covers the spill
    # emptyDir, so the kubelet places workers where their spill fits.
    requests = {"cpu": _cpu(cpu), "memory": _gib(memory_gb)}
    limits: dict[str, str] = {"memory": _gib(memory_gb)}
    if spill_gb:
        requests["ephemeral-storage"] = limits["ephemeral-storage"] = _gib(spill_gb)
    if gpus:
        limits[GPU_RESOURCE] = str(gpus)
    return {"requests": requests, "limits": limits}


def worker_args(gpus: int, cpu: float, memory_gb: float) -> list[str]:
    """Container args of a worker; `$(DASK_WORKER_NAME)` is expanded by Kubernetes.

    One GPU per worker pod (settings refuse more): `dask-cuda-worker` then starts one worker
    process named exactly `$(DASK_WORKER_NAME)`, which is how the operator maps a retired
    worker back to its Deployment. `--memory-limit` is the container's limit in bytes:
    left to `auto`, Dask takes memory x nthreads / the node's vCPUs (no CPU limit is set),
    a fraction of the container.
    """
    if gpus:
        command, nthreads = ["dask-cuda-worker"], 1
        resources = ["--resources", f"{DASK_GPU_RESOURCE}=1"]
    else:
        command, nthreads = ["dask", "worker"], max(int(cpu), 1)
        resources = ["--resources", f"{DASK_CPU_RESOURCE}={nthreads}"]
    return [
        *command,
        "--name",
        "$(DASK_WORKER_NAME)",
        "--nthreads",
        str(nthreads),
        "--memory-limit",
        str(memory_bytes(memory_gb)),
        "--local-directory",
        SPILL_DIR,
        *resources,
        "--dashboard",
        "--dashboard-address",
        str(WORKER_HTTP_PORT),
    ]


def worker_pod_spec(
    cluster_name: str,
    group_name: str,
    image: str,
    gpus: int,
    cpu: float,
    memory_gb: float,
    pool: str | None,
    colocation: str,
    spill_gb: float = 0.0,
) -> dict[str, Any]:
    """`spill_gb`: the worker's local disk (0: twice its memory, WorkerGroupSettings.spill_disk_gb)."""
    spill_gb = spill_gb or 2 * memory_gb
    base = make_cluster_spec(name=cluster_name, image=image, n_workers=1)["spec"]["worker"]["spec"]
    spec = _drop_none(copy.deepcopy(base))
    container = spec["containers"][0]
    container["args"] = worker_args(gpus, cpu, memory_gb)
    container["imagePullPolicy"] = "IfNotPresent"
    container["volumeMounts"] = [{"name": SPILL_VOLUME, "mountPath": SPILL_DIR}]
    container["lifecycle"] = {"preStop": {"exec": {"command": ["python", "-c", prestop_hook(memory_gb, spill_gb)]}}}
    spec["terminationGracePeriodSeconds"] = retire_deadline_s(memory_gb, spill_gb) + PRESTOP_TO_SIGTERM_S
    spec["volumes"] = [{"name": SPILL_VOLUME, "emptyDir": {"sizeLimit": _gib(spill_dir_gb(spill_gb))}}]
    container["env"] = [
        *(container.get("env") or []),
        {"name": MAX_SPILL_ENV, "value": str(max_spill_bytes(spill_gb))},
    ]
    # The worker's own HTTP server (--dashboard-address 8788, the `http-dashboard` port of
    # make_cluster_spec). Generous: a task holding the GIL can stall /health for a while, and
    # a restart loses the worker's data.
    health = {"httpGet": {"port": "http-dashboard", "path": "/health"}, "timeoutSeconds": 10}
    container["readinessProbe"] = {**health, "initialDelaySeconds": 10, "periodSeconds": 10}
    container["livenessProbe"] = {**health, "initialDelaySeconds": 60, "periodSeconds": 30, "failureThreshold": 6}
    container["resources"] = _resources(cpu, memory_gb, gpus, spill_gb)
    if gpus:
        with_driver_libraries(container)
    node_pool = pool if gpus else (pool or SYSTEM_POOL_NAME)
    if node_pool:
        spec["nodeSelector"] = {NODEPOOL_LABEL: node_pool}
    if gpus:
        # GKE adds this toleration to pods requesting GPUs; stating it keeps the spec honest
        # when read on its own (and under any admission setup).
        spec["tolerations"] = [dict(GPU_TOLERATION)]
        affinity = colocation_affinity(cluster_name, group_name, colocation)
        if affinity:
            spec["affinity"] = affinity
    return spec


def default_task_resources(dask: DaskSettings) -> dict[str, int]:
    """Resources the scheduler gives every task that names none: `GPU` when a CPU worker group
    shares the scheduler (unannotated dask-cudf work cannot run there), else none."""
    if any(group.gpus_per_worker == 0 for group in dask.worker_groups.values()):
        return {DASK_GPU_RESOURCE: 1}
    return {}


def scheduler_spec(dask: DaskSettings) -> dict[str, Any]:
    # The operator's Service is always ClusterIP: it is deleted and recreated with every
    # DaskCluster replacement. Clients outside the cluster use the stack's own internal load
    # balancer on a reserved address (components/scheduler_endpoint_spec.py).
    base = make_cluster_spec(name=dask.name, image=dask.image, scheduler_service_type="ClusterIP")
    spec = _drop_none(copy.deepcopy(base["spec"]["scheduler"]))
    container = spec["spec"]["containers"][0]
    # `dask scheduler`, not make_cluster_spec's `dask-scheduler`: distributed 2026.x ships
    # only the `dask` entry point (GOTCHAS.md).
    container["args"] = ["dask", "scheduler", "--host", "0.0.0.0", "--preload", SCHEDULER_PRELOAD]
    defaults = default_task_resources(dask)
    if defaults:
        container["env"] = [
            *(container.get("env") or []),
            {"name": scheduler_preload.DEFAULT_RESOURCES_ENV, "value": json.dumps(defaults)},
        ]
    container["imagePullPolicy"] = "IfNotPresent"
    # Building or deserializing a large graph blocks the scheduler's event loop for a while:
    # make_cluster_spec's liveness probe (1 s timeout, 3 failures 20 s apart) would have the
    # kubelet kill it, and every result and task with it. Liveness now gives a busy scheduler
    # SCHEDULER_LIVENESS_GRACE_S before a restart; readiness only gates the Service.
    health = {"httpGet": {"port": "http-dashboard", "path": "/health"}}
    # Readiness gates the Service: with a 5 s timeout a busy scheduler left it, and new clients
    # and workers were refused while it was merely busy. Upstream's make_cluster_spec waits 300 s.
    container["readinessProbe"] = {
        **health,
        "initialDelaySeconds": 5,
        "periodSeconds": 10,
        "timeoutSeconds": SCHEDULER_LIVENESS_GRACE_S,
    }
    container["livenessProbe"] = {
        **health,
        "initialDelaySeconds": 60,
        "periodSeconds": 30,
        "timeoutSeconds": 30,
        "failureThreshold": SCHEDULER_LIVENESS_GRACE_S // 30,
    }
    # Voluntary evictions (cluster-autoscaler scale-down) skip the scheduler's node; drains
    # (node upgrades) wait on the scheduler PodDisruptionBudget (security_spec).
    metadata = spec.setdefault("metadata", {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), SAFE_TO_EVICT_ANNOTATION: "false"}
    gpus = 1 if dask.scheduler_gpu else 0
    container["resources"] = _resources(dask.scheduler_cpu, dask.scheduler_memory_gb, gpus)
    if gpus:
        with_driver_libraries(container)
        # Its own small GPU pool (L4/T4): cuDF objects in client graphs deserialize there.
        # (or, with existingCluster, the cluster's own small-GPU pool and whatever taints it has).
        spec["spec"]["tolerations"] = [dict(GPU_TOLERATION), *map(_toleration, dask.scheduler_taints)]
        spec["spec"]["nodeSelector"] = {NODEPOOL_LABEL: dask.scheduler_pool}
    else:
        # On-demand CPU pool: the scheduler holds the cluster's state; a spot reclaim loses it.
        spec["spec"]["nodeSelector"] = {NODEPOOL_LABEL: dask.system_pool}
    spec["spec"] = harden_pod(spec["spec"], dask, "scheduler")
    return spec


def _toleration(taint: tuple[str, str, str]) -> dict[str, str]:
    key, value, effect = taint
    return {"key": key, "operator": "Equal", "value": value, "effect": effect}


def cluster_annotations(dask: DaskSettings) -> dict[str, str]:
    # The operator copies these onto the scheduler Deployment and Service.
    return {WAIT_FOR_ANNOTATION: WAIT_FOR_CONDITION}


def initial_replicas(dask: DaskSettings) -> int:
    """`dask.worker.replicas`; an autoscaled group starts at its minimum (the autoscaler owns the count).

    Starting above the minimum would create a worker the autoscaler soon wants gone; if that
    worker has not connected yet, the operator cannot retire it by name (https://github.com/dask/dask-kubernetes/issues/817).
    """
    if dask.autoscale is None:
        return dask.worker.replicas
    return dask.autoscale.minimum


def dask_cluster(dask: DaskSettings) -> dict[str, Any]:
    """The DaskCluster custom resource, as `kubectl apply -f` would take it."""
    return {
        "apiVersion": API_VERSION,
        "kind": "DaskCluster",
        "metadata": {
            "name": dask.name,
            "namespace": dask.namespace,
            "labels": dict(MANAGED_BY_LABELS),
            "annotations": cluster_annotations(dask),
        },
        "spec": {
            # > 0 would let the operator delete this Pulumi-owned cluster when idle.
            "idleTimeout": 0,
            "worker": {
                "replicas": initial_replicas(dask),
                "spec": harden_pod(
                    worker_pod_spec(
                        dask.name,
                        dask.default_group_name,
                        dask.worker.image,
                        dask.worker.gpus_per_worker,
                        dask.worker.cpu,
                        dask.worker.memory_gb,
                        dask.worker.pool,
                        dask.colocation,
                        dask.worker.spill_disk_gb,
                    ),
                    dask,
                    "worker",
                ),
            },
            "scheduler": scheduler_spec(dask),
        },
    }


def worker_group_name(dask: DaskSettings, group: WorkerGroupSettings) -> str:
    return f"{dask.name}-{group.name}"


def dask_worker_group(dask: DaskSettings, group: WorkerGroupSettings) -> dict[str, Any]:
    name = worker_group_name(dask, group)
    return {
        "apiVersion": API_VERSION,
        "kind": "DaskWorkerGroup",
        "metadata": {
            "name": name,
            "namespace": dask.namespace,
            "labels": dict(MANAGED_BY_LABELS),
        },
        "spec": {
            "cluster": dask.name,
            "worker": {
                "replicas": group.replicas,
                "spec": harden_pod(
                    worker_pod_spec(
                        dask.name,
                        name,
                        group.image,
                        group.gpus_per_worker,
                        group.cpu,
                        group.memory_gb,
                        group.pool if group.gpus_per_worker else dask.system_pool,
                        dask.colocation if group.gpus_per_worker else "none",
                        group.spill_disk_gb,
                    ),
                    dask,
                    "worker",
                ),
            },
        },
    }


def dask_autoscaler(dask: DaskSettings) -> dict[str, Any] | None:
    """Autoscaler for the default (GPU) group; the operator's autoscaler scales only that group."""
    if dask.autoscale is None:
        return None
    return {
        "apiVersion": API_VERSION,
        "kind": "DaskAutoscaler",
        "metadata": {"name": dask.name, "namespace": dask.namespace},
        "spec": {"cluster": dask.name, "minimum": dask.autoscale.minimum, "maximum": dask.autoscale.maximum},
    }


def worker_group_summary(dask: DaskSettings) -> dict[str, dict[str, Any]]:
    """What clients need to scale groups by name: the `daskWorkerGroups` stack output."""
    summary = {
        "default": {
            "name": dask.default_group_name,
            "gpusPerWorker": dask.worker.gpus_per_worker,
            "replicas": initial_replicas(dask),
            "autoscaled": dask.autoscale is not None,
        }
    }
    for key, group in dask.worker_groups.items():
        summary[key] = {
            "name": worker_group_name(dask, group),
            "gpusPerWorker": group.gpus_per_worker,
            "replicas": group.replicas,
            "autoscaled": False,
        }
    return summary
