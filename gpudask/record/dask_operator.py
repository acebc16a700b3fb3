"""What the Dask Kubernetes operator makes of our manifests, by its own code.

- `dask_clusters`: each DaskCluster among a set of manifests, with the DaskWorkerGroups that name it.
- `created_objects`: the scheduler Deployment and Service and the worker Deployments the operator
  would create for a DaskCluster, built by the operator's own builder functions
  (`dask_kubernetes.operator.controller`). It renders them; checking them is the caller's job
  (`recording_checks.operator_findings`, the rehearsal, the local control plane).
"""

from __future__ import annotations

import copy
from typing import Any


def dask_clusters(manifests: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each DaskCluster among these manifests with the DaskWorkerGroups that name it."""
    return [
        (
            cluster,
            [
                m
                for m in manifests
                if m["kind"] == "DaskWorkerGroup"
                and (m.get("spec") or {}).get("cluster") == cluster["metadata"]["name"]
            ],
        )
        for cluster in manifests
        if cluster["kind"] == "DaskCluster"
    ]


def created_objects(cluster: dict[str, Any], worker_groups: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The Deployments and Service the operator would create for a DaskCluster (and groups),
    built by the operator's own functions, one worker Deployment per replica."""
    from dask_kubernetes.operator.controller import controller

    name = cluster["metadata"]["name"]
    namespace = cluster["metadata"].get("namespace", "default")
    annotations = {
        k: v
        for k, v in (cluster["metadata"].get("annotations") or {}).items()
        if not k.startswith(("kopf.zalando.org", "kubectl.kubernetes.io"))
    }
    labels = cluster["metadata"].get("labels") or {}
    spec = cluster["spec"]
    # As `daskcluster_create_components` does: spec.scheduler.metadata adds to the scheduler's.
    scheduler_meta = spec["scheduler"].get("metadata") or {}
    scheduler_annotations = {**annotations, **(scheduler_meta.get("annotations") or {})}
    scheduler_labels = {**labels, **(scheduler_meta.get("labels") or {})}
    objects = [
        controller.build_scheduler_deployment_spec(
            name, copy.deepcopy(spec["scheduler"]["spec"]), scheduler_annotations, scheduler_labels
        ),
        controller.build_scheduler_service_spec(
            name, copy.deepcopy(spec["scheduler"]["service"]), scheduler_annotations, scheduler_labels
        ),
    ]
    groups = [(f"{name}-default", spec["worker"])]
    groups += [(g["metadata"]["name"], g["spec"]["worker"]) for g in worker_groups or []]
    for group_name, worker in groups:
        for index in range(max(int(worker.get("replicas", 0)), 1)):
            objects.append(
                controller.build_worker_deployment_spec(
                    group_name, namespace, name, f"{index:010d}", copy.deepcopy(worker["spec"]), annotations, labels
                )
            )
    for obj in objects:
        obj["metadata"]["namespace"] = namespace
    return objects
