"""What the control plane did with the stack: where each pod landed, what is Pending and why, what is left.

The expectations are the stack's intent, not a model of the scheduler: every pod of the stack's
namespaces runs; the operator runs on the system pool; the NVIDIA driver DaemonSet has a pod on
every GPU node whose driver GKE does not manage, and on no other node; controllers that could not
create pods (Pod Security, quotas) are reported with the server's message. Pods the Dask operator
creates (label `dask.org/cluster-name`) belong to the runtime (gpudask.local.cluster operator/kubelet).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from components.dask_spec import NODEPOOL_LABEL
from components.operator_spec import NAMESPACE as OPERATOR_NAMESPACE
from gpudask.local.cluster.kube import Kube
from gpudask.record.recorder import Recording
from gpudask.record.resource_types import RELEASE
from gpudask.record.view import kubernetes_manifests, recorded_settings

DASK_CLUSTER_LABEL = "dask.org/cluster-name"
DRIVER_DAEMONSET = "nvidia-driver-installer"
ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
MANAGED_DRIVER_LABEL = "cloud.google.com/gke-gpu-driver-version"


@dataclass
class PodPlace:
    namespace: str
    name: str
    node: str
    pool: str
    phase: str
    ready: bool
    why: str = ""  # the PodScheduled condition's message when it is not scheduled
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def line(self) -> str:
        where = f"{self.node} (pool {self.pool})" if self.node else "unscheduled"
        return f"{self.namespace}/{self.name}: {self.phase}{' Ready' if self.ready else ''} on {where}" + (
            f": {self.why}" if self.why else ""
        )


@dataclass
class Placement:
    pods: list[PodPlace] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def stack_namespaces(rec: Recording) -> list[str]:
    """Namespaces the stack puts objects in (its own, and kube-system for the driver), in declaration order."""
    found: list[str] = []
    for _, manifest in kubernetes_manifests(rec):
        meta = manifest.get("metadata") or {}
        ns = meta.get("name") if manifest["kind"] == "Namespace" else meta.get("namespace")
        if ns and ns not in found:
            found.append(str(ns))
    for release in rec.of_type(RELEASE):
        ns = release.inputs.get("namespace")
        if ns and ns not in found:
            found.append(str(ns))
    return found


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions") or [])


def _scheduled_message(pod: dict[str, Any]) -> str:
    for c in pod.get("status", {}).get("conditions") or []:
        if c["type"] == "PodScheduled" and c["status"] != "True":
            return c.get("message", c.get("reason", ""))
    return ""


def pods(kube: Kube, namespaces: list[str], nodes: dict[str, dict[str, Any]]) -> list[PodPlace]:
    found = []
    for ns in namespaces:
        for pod in kube.list("v1", "Pod", ns):
            node = pod["spec"].get("nodeName", "")
            labels = (nodes.get(node) or {}).get("metadata", {}).get("labels", {})
            found.append(
                PodPlace(
                    ns,
                    pod["metadata"]["name"],
                    node,
                    labels.get(NODEPOOL_LABEL, ""),
                    pod.get("status", {}).get("phase", ""),
                    _ready(pod),
                    _scheduled_message(pod),
                    dict(pod["metadata"].get("labels") or {}),
                )
            )
    return found


def controller_refusals(kube: Kube, namespaces: list[str]) -> list[str]:
    """`FailedCreate` events: a controller asked for a pod and the API server said no (its message)."""
    out = []
    for ns in namespaces:
        for event in kube.list("v1", "Event", ns):
            if event.get("reason") == "FailedCreate":
                obj = event.get("involvedObject") or {}
                out.append(f"{obj.get('kind')}/{ns}/{obj.get('name')}: {event.get('message')}")
    return sorted(set(out))


def _expectations(kube: Kube, rec: Recording, places: list[PodPlace], nodes: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    system_pool = recorded_settings(rec).system_pool  # `system`, or existingCluster.systemPool
    for place in places:
        if place.namespace == OPERATOR_NAMESPACE and place.node and place.pool != system_pool:
            problems.append(
                f"{place.namespace}/{place.name}: the operator landed on pool {place.pool}, not {system_pool}"
            )
    driver_declared = any(
        m["kind"] == "DaemonSet" and m["metadata"]["name"] == DRIVER_DAEMONSET for _, m in kubernetes_manifests(rec)
    )
    if driver_declared:
        gpu_nodes = {
            name
            for name, node in nodes.items()
            if ACCELERATOR_LABEL in node["metadata"]["labels"]
            and MANAGED_DRIVER_LABEL not in node["metadata"]["labels"]
        }
        with_driver = {p.node for p in places if p.name.startswith(f"{DRIVER_DAEMONSET}-") and p.node}
        for missing in sorted(gpu_nodes - with_driver):
            problems.append(f"DaemonSet/kube-system/{DRIVER_DAEMONSET}: no pod on GPU node {missing}")
        for extra in sorted(with_driver - gpu_nodes):
            problems.append(
                f"DaemonSet/kube-system/{DRIVER_DAEMONSET}: a pod on {extra}, which is not a GPU node it should serve"
            )
    return problems


def settle(kube: Kube, rec: Recording, timeout: float = 60.0) -> Placement:
    """Wait until every stack pod runs (or `timeout`), then report placement and every problem."""
    namespaces = stack_namespaces(rec)
    started = time.monotonic()
    while True:
        nodes = {n["metadata"]["name"]: n for n in kube.list("v1", "Node")}
        places = [p for p in pods(kube, namespaces, nodes) if DASK_CLUSTER_LABEL not in p.labels]
        waiting = [p for p in places if p.phase != "Running" or not p.ready]
        problems = _expectations(kube, rec, places, nodes) + controller_refusals(kube, namespaces)
        settled = not waiting and not problems and _daemonsets_rolled_out(kube, namespaces)
        if settled or time.monotonic() - started > timeout:
            break
        time.sleep(0.5)
    problems += [
        f"{p.namespace}/{p.name} should run but is {p.phase or 'unknown'}: {p.why or 'not Ready'}" for p in waiting
    ]
    return Placement(places, problems, time.monotonic() - started)


def _daemonsets_rolled_out(kube: Kube, namespaces: list[str]) -> bool:
    for ns in namespaces:
        for ds in kube.list("apps/v1", "DaemonSet", ns):
            status = ds.get("status") or {}
            if status.get("numberReady", 0) != status.get("desiredNumberScheduled", -1):
                return False
    return True


def leftovers(kube: Kube, rec: Recording) -> list[str]:
    """What is still there after a destroy: the stack's namespaces, objects in them, driver pods."""
    left = []
    namespaces = stack_namespaces(rec)
    existing = {n["metadata"]["name"] for n in kube.list("v1", "Namespace")}
    for ns in namespaces:
        if ns in existing and ns not in ("kube-system", "default"):
            left.append(
                f"Namespace/{ns} still exists ({kube.get(kube.path('v1', 'Namespace', ns))['status'].get('phase')})"
            )
        if ns not in existing:
            continue
        for api_version, kind in (
            ("v1", "Pod"),
            ("apps/v1", "Deployment"),
            ("apps/v1", "DaemonSet"),
            ("v1", "Service"),
        ):
            for obj in kube.list(api_version, kind, ns):
                name = obj["metadata"]["name"]
                if ns == "kube-system" and not name.startswith(DRIVER_DAEMONSET):
                    continue  # the control plane's own objects
                left.append(f"{kind}/{ns}/{name}")
    return left
