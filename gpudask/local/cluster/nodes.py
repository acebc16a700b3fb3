"""kwok nodes shaped like the stack's node pools, so the real scheduler places pods as on GKE.

The pools are gpudask/record/node_pools.py's (the model the plan's checks use too): every
`gcp:container/nodePool:NodePool` the program declares, or what an `existingCluster` stack's
settings say about the cluster it targets. Each node carries the labels GKE sets, the pool's
taints (GKE's GPU taint on accelerator pools included), capacity from the machine type and
allocatable after GKE's reservation; a pool gets `maxNodes` nodes (the pool fully scaled out:
there is no cluster autoscaler here) unless asked for `minNodes`.

kwok (pinned in upstream/versions.toml) keeps the nodes Ready with leases and moves pods
bound to them to Running; no container runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from components.dask_spec import GPU_RESOURCE
from gpudask.local import procs
from gpudask.local.cluster.controlplane import ControlPlane
from gpudask.record.node_pools import NodePool, node_pools, unknown_machine_types
from gpudask.record.recorder import Recording
from gpudask.record.resource_types import CLUSTER
from gpudask.record.view import recorded_settings
from gpudask.upstream import programs as upstream

KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
STAGES_FILE = Path(__file__).with_name("kwok-stages.yaml")
MAX_PODS_PER_NODE = 110  # GKE Standard's default


class NodesError(RuntimeError):
    """A pool cannot be shaped (unknown machine type) or kwok did not make the nodes Ready."""


def pools(rec: Recording) -> list[NodePool]:
    """The stack's node pools (gpudask/record/node_pools.py); every unknown machine type is
    reported at once."""
    problems = unknown_machine_types(rec)
    if problems:
        raise NodesError("cannot shape nodes:\n" + "\n".join(f"  - {p}" for p in problems))
    return node_pools(rec)


def _quantity_mi(gib: float) -> str:
    return f"{int(gib * 1024)}Mi"


def node_objects(
    stack_pools: list[NodePool], cluster_name: str, kubelet_version: str, count: Literal["max", "min"] = "max"
) -> list[dict[str, Any]]:
    """Node objects for every pool: labels GKE sets, taints, capacity and allocatable from the catalog."""
    nodes = []
    for pool in stack_pools:
        taints = [dict(t) for t in pool.taints]
        capacity = {
            "cpu": str(pool.machine.vcpu),
            "memory": f"{pool.machine.memory_gb}Gi",
            "pods": str(MAX_PODS_PER_NODE),
            "ephemeral-storage": f"{pool.disk_gb}Gi",
        }
        allocatable = {
            "cpu": f"{round(pool.machine.allocatable_cpu * 1000)}m",
            "memory": _quantity_mi(pool.machine.allocatable_memory_gb),
            "pods": str(MAX_PODS_PER_NODE),
            "ephemeral-storage": f"{int(pool.disk_gb * 0.9)}Gi",
        }
        if pool.gpus:
            capacity[GPU_RESOURCE] = allocatable[GPU_RESOURCE] = str(pool.gpus)
        for index in range(pool.max_nodes if count == "max" else pool.min_nodes):
            name = f"gke-{cluster_name}-{pool.name}-{index:02d}"[:63].rstrip("-")
            zone = pool.zones[index % len(pool.zones)]
            labels = {
                **pool.node_labels,
                "cloud.google.com/machine-family": pool.machine.name.split("-", 1)[0],
                "cloud.google.com/gke-os-distribution": "cos",
                "node.kubernetes.io/instance-type": pool.machine.name,
                "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": pool.region,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            }
            nodes.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "labels": labels,
                        "annotations": {KWOK_ANNOTATION[0]: KWOK_ANNOTATION[1]},
                    },
                    "spec": {"taints": taints} if taints else {},
                    "status": {
                        "capacity": capacity,
                        "allocatable": allocatable,
                        "nodeInfo": {
                            "architecture": "amd64",
                            "operatingSystem": "linux",
                            "osImage": "kwok node shaped like Container-Optimized OS (gpu-dask)",
                            "kubeletVersion": kubelet_version,
                            "kubeProxyVersion": kubelet_version,
                            "containerRuntimeVersion": "kwok://no-containers",
                            "kernelVersion": "",
                            "bootID": "",
                            "machineID": "",
                            "systemUUID": "",
                        },
                    },
                }
            )
    return nodes


def kwok_crd(plural: str) -> dict[str, Any]:
    """One of kwok's own CRDs (`kustomize/crd/bases/kwok.x-k8s.io_<plural>.yaml` of the pinned
    kwok module, from Go's module cache: `go mod download` fetches it when missing)."""
    kwok = upstream.load_programs()["kwok"]
    done = subprocess.run(
        [str(upstream.go_executable()), "mod", "download", "-json", f"{kwok.module}@{kwok.version}"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    if done.returncode != 0:
        raise NodesError(f"go mod download {kwok.module}@{kwok.version} failed: {(done.stderr or done.stdout).strip()}")
    folder = Path(json.loads(done.stdout)["Dir"]) / "kustomize" / "crd" / "bases"
    return yaml.safe_load((folder / f"kwok.x-k8s.io_{plural}.yaml").read_text())


def _stages(process_backed_namespaces: tuple[str, ...]) -> str:
    text = STAGES_FILE.read_text()
    if not process_backed_namespaces:
        return text
    # Pods in these namespaces are moved to Running by whoever runs their processes, not by kwok.
    # Only the Dask pods (labelled dask.org/cluster-name; other pods of those namespaces stay
    # kwok's), and their deletion too: the pod stays until its process has stopped.
    extra = "    - key: '.metadata.labels.\"dask.org/cluster-name\"'\n      operator: DoesNotExist\n"
    anchor = "    matchExpressions:\n"
    for stage in ("gpudask-pod-running", "gpudask-pod-gone"):
        marker = f"  name: {stage}\n"
        head, tail = text.split(marker, 1)
        first, rest = tail.split(anchor, 1)
        text = head + marker + first + anchor + extra + rest
    return text


@dataclass
class Nodes:
    """kwok running against a control plane, and the stack's nodes registered and Ready."""

    control_plane: ControlPlane
    objects: list[dict[str, Any]]
    process_backed_namespaces: tuple[str, ...] = ()
    timeout: float = 60.0
    process: Any = None
    ready_s: float = 0.0
    server_port: int = 0

    @property
    def names(self) -> list[str]:
        return [n["metadata"]["name"] for n in self.objects]

    def start(self) -> Nodes:
        cp = self.control_plane
        started = time.monotonic()
        folder = cp.dir / "kwok"
        folder.mkdir(exist_ok=True)
        (folder / "stages.yaml").write_text(_stages(self.process_backed_namespaces))
        kubeconfig = cp.client_kubeconfig("kwok")
        serving = cp.issue_serving("kwok-serving", "kwok")
        self.server_port = procs.free_port()
        argv = [
            str(upstream.binary("kwok")),
            f"--kubeconfig={kubeconfig}",
            f"--config={folder / 'stages.yaml'}",
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION[0]}={KWOK_ANNOTATION[1]}",
            "--node-lease-duration-seconds=40",
            f"--node-ip={procs.LOOPBACK}",
            f"--node-port={self.server_port}",
            f"--server-address={procs.LOOPBACK}:{self.server_port}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            "--cidr=10.16.0.0/14",
        ]
        kube = cp.kube()
        if self.process_backed_namespaces:
            # Whoever backs those pods with processes registers where kwok forwards their
            # ports (`PortForward` objects), so port-forward through the API server reaches them.
            crd = kwok_crd("portforwards")
            kube.apply(crd, "gpudask-nodes")
            established = procs.wait_for(
                lambda: any(
                    c["type"] == "Established" and c["status"] == "True"
                    for c in (kube.get(kube.path_of(crd)).get("status") or {}).get("conditions") or []
                ),
                30,
            )
            if not established:
                raise NodesError(f"kwok's CRD {crd['metadata']['name']} was not Established within 30 s")
            argv.append("--enable-crds=PortForward")
        self.process = cp.add_process("kwok", argv)
        for node in self.objects:
            kube.request("POST", "/api/v1/nodes", node, what=f"Node/{node['metadata']['name']}")
        deadline = time.monotonic() + self.timeout
        while True:
            ready = {
                n["metadata"]["name"]
                for n in kube.list("v1", "Node", labelSelector="type=kwok")
                if any(
                    c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions") or []
                )
            }
            if ready >= set(self.names):
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise NodesError(
                    f"nodes not Ready after {time.monotonic() - started:.0f} s "
                    f"({len(ready)}/{len(self.names)}); kwok log:\n{procs.log_tail(cp.log_path('kwok'))}"
                )
            time.sleep(0.2)
        self.ready_s = time.monotonic() - started
        return self


def _existing_cluster_name(rec: Recording) -> str:
    """The cluster's name from a GKE context (`gke_<project>_<location>_<cluster>`), for node names."""
    existing = recorded_settings(rec).existing_cluster
    context = (existing.context if existing else None) or ""
    parts = context.split("_")
    return parts[3] if len(parts) == 4 and parts[0] == "gke" else "existing"


@contextlib.contextmanager
def stack_nodes(
    cp: ControlPlane,
    rec: Recording,
    *,
    count: Literal["max", "min"] = "max",
    process_backed_namespaces: tuple[str, ...] = (),
) -> Iterator[Nodes]:
    """Start kwok and register the nodes of every pool of the recorded stack; kwok stops with the control plane."""
    clusters = rec.of_type(CLUSTER)
    cluster_name = str(clusters[0].inputs.get("name", "gke")) if clusters else _existing_cluster_name(rec)
    version = cp.version()["gitVersion"]
    objects = node_objects(pools(rec), cluster_name, version, count)
    nodes = Nodes(cp, objects, process_backed_namespaces).start()
    yield nodes
