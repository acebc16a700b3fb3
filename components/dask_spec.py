"""Pure builders for the Dask custom resources: settings in, plain dicts out.

The DaskCluster body starts from dask-kubernetes' own `make_cluster_spec` (what
`KubeCluster` creates, and what `KubeCluster.from_name` expects to read back), then adds
what a GPU cluster on GKE needs: GPU limits, `--resources GPU=1` per GPU process, worker colocation,
scheduler placement, tolerations and resource requests.
"""

from __future__ import annotations

import copy
from typing import Any

from dask_kubernetes.operator import make_cluster_spec

from components.gpu_drivers import DRIVER_LIBRARY_PATH
from components.security_spec import harden_pod
from components.settings import SYSTEM_POOL_NAME, DaskSettings, WorkerGroupSettings

API_VERSION = "kubernetes.dask.org/v1"
WORKER_HTTP_PORT = 8788
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Equal", "value": "present", "effect": "NoSchedule"}
NODEPOOL_LABEL = "cloud.google.com/gke-nodepool"
INTERNAL_LB_ANNOTATION = "networking.gke.io/load-balancer-type"
# The TLS certificates' digest, on the scheduler (and so on its pod and Service): see dask_cluster.py.
TLS_DIGEST_ANNOTATION = "gpu-dask/tls-certificates-sha256"
# Makes `pulumi up` wait until the operator has created the scheduler Service.
WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"

# What Pulumi must treat as "replace the custom resource": the operator ignores edits
# to pod specs of a running cluster (dask/dask-kubernetes#895), so an in-place update
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


def with_driver_libraries(container: dict[str, Any]) -> None:
    """Put the driver's libraries, which GKE mounts at /usr/local/nvidia, on the loader path.

    With a GKE-installed driver, RAPIDS images have failed to find the CUDA libraries
    without it (rapidsai/deployment#698); with the DaemonSet the mount is the same.
    """
    env = [e for e in container.get("env") or [] if e.get("name") != "LD_LIBRARY_PATH"]
    container["env"] = [*env, {"name": "LD_LIBRARY_PATH", "value": DRIVER_LIBRARY_PATH}]


def _resources(cpu: float, memory_gb: float, gpus: int) -> dict[str, Any]:
    # Memory limit = request: the nanny's memory limit follows the container's, and the
    # pod is never OOM-killed for using what it asked for.
    requests = {"cpu": _cpu(cpu), "memory": _gib(memory_gb)}
    limits: dict[str, str] = {"memory": _gib(memory_gb)}
    if gpus:
        limits[GPU_RESOURCE] = str(gpus)
    return {"requests": requests, "limits": limits}


def worker_args(gpus: int, cpu: float) -> list[str]:
    """Container args of a worker; `$(DASK_WORKER_NAME)` is expanded by Kubernetes.

    `dask-cuda-worker` starts one worker process per visible GPU and gives each the same
    `--resources`, so a GPU worker advertises `GPU=1` per process (a 2-GPU pod is two
    workers of one GPU each), never `GPU=<GPUs in the pod>`.
    """
    if gpus:
        command, nthreads, resources = ["dask-cuda-worker"], 1, ["--resources", "GPU=1"]
    else:
        command, nthreads, resources = ["dask", "worker"], max(int(cpu), 1), []
    return [
        *command,
        "--name",
        "$(DASK_WORKER_NAME)",
        "--nthreads",
        str(nthreads),
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
) -> dict[str, Any]:
    base = make_cluster_spec(name=cluster_name, image=image, n_workers=1)["spec"]["worker"]["spec"]
    spec = _drop_none(copy.deepcopy(base))
    container = spec["containers"][0]
    container["args"] = worker_args(gpus, cpu)
    container["imagePullPolicy"] = "IfNotPresent"
    # The worker's own HTTP server (--dashboard-address 8788, the `http-dashboard` port of
    # make_cluster_spec). Generous: a task holding the GIL can stall /health for a while, and
    # a restart loses the worker's data.
    health = {"httpGet": {"port": "http-dashboard", "path": "/health"}, "timeoutSeconds": 10}
    container["readinessProbe"] = {**health, "initialDelaySeconds": 10, "periodSeconds": 10}
    container["livenessProbe"] = {**health, "initialDelaySeconds": 60, "periodSeconds": 30, "failureThreshold": 6}
    container["resources"] = _resources(cpu, memory_gb, gpus)
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


def scheduler_spec(dask: DaskSettings) -> dict[str, Any]:
    service_type = "LoadBalancer" if dask.scheduler_service == "InternalLoadBalancer" else "ClusterIP"
    base = make_cluster_spec(name=dask.name, image=dask.image, scheduler_service_type=service_type)
    spec = _drop_none(copy.deepcopy(base["spec"]["scheduler"]))
    container = spec["spec"]["containers"][0]
    # `dask scheduler`, not make_cluster_spec's `dask-scheduler`: distributed 2026.x ships
    # only the `dask` entry point (GOTCHAS.md).
    container["args"] = ["dask", "scheduler", "--host", "0.0.0.0"]
    container["imagePullPolicy"] = "IfNotPresent"
    container["readinessProbe"] = {
        "httpGet": {"port": "http-dashboard", "path": "/health"},
        "initialDelaySeconds": 5,
        "periodSeconds": 10,
        "timeoutSeconds": 5,
    }
    gpus = 1 if dask.scheduler_gpu else 0
    container["resources"] = _resources(dask.scheduler_cpu, dask.scheduler_memory_gb, gpus)
    if gpus:
        with_driver_libraries(container)
        spec["spec"]["tolerations"] = [dict(GPU_TOLERATION)]
        if dask.pool:
            spec["spec"]["nodeSelector"] = {NODEPOOL_LABEL: dask.pool}
    else:
        # On-demand CPU pool: the scheduler holds the cluster's state; a spot reclaim loses it.
        spec["spec"]["nodeSelector"] = {NODEPOOL_LABEL: dask.system_pool}
    if service_type == "LoadBalancer":
        spec["service"]["loadBalancerSourceRanges"] = list(dask.client_cidrs)
    spec["spec"] = harden_pod(spec["spec"], dask, "scheduler")
    return spec


def cluster_annotations(dask: DaskSettings) -> dict[str, str]:
    # The operator copies the DaskCluster's annotations onto the scheduler Service: that is
    # how the internal load balancer annotation reaches it.
    annotations = {WAIT_FOR_ANNOTATION: "jsonpath={.status.phase}=Running"}
    if dask.scheduler_service == "InternalLoadBalancer":
        annotations[INTERNAL_LB_ANNOTATION] = "Internal"
    return annotations


def initial_replicas(dask: DaskSettings) -> int:
    """`workers`, kept inside the autoscaler's bounds (it owns the count from then on)."""
    if dask.autoscale is None:
        return dask.workers
    return min(max(dask.workers, dask.autoscale.minimum), dask.autoscale.maximum)


def dask_cluster(dask: DaskSettings) -> dict[str, Any]:
    """The DaskCluster custom resource, as `kubectl apply -f` would take it."""
    return {
        "apiVersion": API_VERSION,
        "kind": "DaskCluster",
        "metadata": {
            "name": dask.name,
            "namespace": dask.namespace,
            "labels": {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "gpu-dask"},
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
                        dask.image,
                        dask.gpus_per_worker,
                        dask.worker_cpu,
                        dask.worker_memory_gb,
                        dask.pool,
                        dask.colocation,
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
            "labels": {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "gpu-dask"},
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
            "gpusPerWorker": dask.gpus_per_worker,
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
