"""kwok nodes shaped like the stack's node pools, so the real scheduler places pods as on GKE.

The pools come from the recorded program (every `gcp:container/nodePool:NodePool` it declares,
so a pool added to the stack appears here without a change), their machines from
`components/catalog.py`. A stack with `existingCluster` declares no pool: its nodes come from
what its settings say about the cluster it targets (`existingCluster.systemPool` with
`systemMachineType` / `systemMinNodes` / `systemMaxNodes`, and each `gpuNodePools` entry by
its GKE name), read from the recording's config through the one settings parser. Each node carries the labels GKE sets, the pool's taints (the GPU
taint on accelerator pools), capacity from the machine type and allocatable after GKE's
reservation; a pool gets `maxNodes` nodes (the pool fully scaled out: there is no cluster
autoscaler here) unless asked for `minNodes`.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from components import catalog
from components.catalog import MachineType
from components.dask_spec import GPU_RESOURCE, NODEPOOL_LABEL
from components.settings import StackSettings
from gpudask.local import procs
from gpudask.local.cluster.controlplane import ControlPlane
from gpudask.record.recorder import Recording
from gpudask.record.resource_types import CLUSTER, NODE_POOL
from gpudask.record.view import recorded_settings
from gpudask.upstream import programs as upstream

KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
STAGES_FILE = Path(__file__).with_name("kwok-stages.yaml")
MAX_PODS_PER_NODE = 110  # GKE Standard's default


class NodesError(RuntimeError):
    """A pool cannot be shaped (unknown machine type) or kwok did not make the nodes Ready."""


def machine_types() -> dict[str, MachineType]:
    """Every machine type the catalog knows, whatever table it sits in."""
    found: dict[str, MachineType] = {}
    for value in vars(catalog).values():
        if isinstance(value, dict) and value and all(isinstance(v, MachineType) for v in value.values()):
            found.update(value)
    return found


@dataclass(frozen=True)
class Pool:
    """One node pool as the program declared it."""

    name: str
    machine: MachineType
    zones: tuple[str, ...]
    region: str
    min_nodes: int
    max_nodes: int
    spot: bool
    disk_gb: int
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()
    accelerator: str | None = None
    gpus: int = 0
    driver_version: str | None = None  # GKE-managed driver: DEFAULT / LATEST; None: installed by us


def _zones_and_region(location: str, zones: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    region = location if location.count("-") == 1 else location.rsplit("-", 1)[0]
    zones = zones or (location,)
    if zones == (region,):  # a regional pool with no nodeLocations: GKE picks zones; take the first
        zones = (f"{region}-a",)
    return zones, region


def existing_cluster_pools(settings: StackSettings) -> list[Pool]:
    """The pools of a cluster the stack does not own, as its settings describe them: the system
    pool (on demand, no accelerator) and each `gpuNodePools` entry under its GKE name."""
    zones, region = _zones_and_region(settings.location, ())
    found = [
        Pool(
            name=settings.system_pool,
            machine=settings.system_machine,
            zones=zones,
            region=region,
            min_nodes=settings.system_min_nodes,
            max_nodes=settings.system_max_nodes,
            spot=False,
            disk_gb=100,
        )
    ]
    managed = settings.gke_driver_version
    for gpu in settings.gpu_node_pools.values():
        gpu_zones, _ = _zones_and_region(settings.location, gpu.zones)
        found.append(
            Pool(
                name=gpu.name,
                machine=gpu.machine,
                zones=gpu_zones,
                region=region,
                min_nodes=gpu.min_nodes,
                max_nodes=gpu.max_nodes,
                spot=gpu.spot,
                disk_gb=gpu.disk_size_gb,
                accelerator=gpu.accelerator_type,
                gpus=gpu.gpus_per_node,
                driver_version=None if managed == "INSTALLATION_DISABLED" else managed,
            )
        )
    scheduler = settings.existing_cluster.scheduler_pool if settings.existing_cluster else None
    if scheduler is not None:
        # The cluster's small-GPU pool named by existingCluster.schedulerPool, with the taints it lists
        # (GKE's nvidia.com/gpu taint is added with the others' in node_objects).
        machine = catalog.SCHEDULER_GPU_MACHINE_TYPES[scheduler.machine_type]
        found.append(
            Pool(
                name=scheduler.name,
                machine=machine,
                zones=zones,
                region=region,
                min_nodes=0,
                max_nodes=scheduler.max_nodes,
                spot=scheduler.spot,
                disk_gb=100,
                taints=tuple({"key": k, "value": v, "effect": e} for k, v, e in scheduler.taints),
                accelerator=machine.accelerator,
                gpus=machine.gpus,
                driver_version=None if managed == "INSTALLATION_DISABLED" else managed,
            )
        )
    return found


def pools(rec: Recording) -> list[Pool]:
    """The stack's node pools, read from its recording (or, for an `existingCluster` stack, from
    its settings); every unknown machine type is reported at once."""
    if not rec.of_type(NODE_POOL) and rec.config.get("gpu-dask:existingCluster"):
        return existing_cluster_pools(recorded_settings(rec))
    known = machine_types()
    problems: list[str] = []
    found: list[Pool] = []
    clusters = rec.of_type(CLUSTER)
    cluster_location = str(clusters[0].inputs.get("location", "")) if clusters else ""
    for recorded in rec.of_type(NODE_POOL):
        inputs = recorded.inputs
        name = str(inputs.get("name") or recorded.name)
        config = inputs.get("nodeConfig") or {}
        machine = known.get(str(config.get("machineType", "")))
        if machine is None:
            problems.append(
                f"node pool {name}: nodeConfig.machineType {config.get('machineType')!r} is not in components/catalog.py; "
                f"known: {', '.join(sorted(known))}"
            )
            continue
        location = str(inputs.get("location") or cluster_location)
        zones, region = _zones_and_region(location, tuple(inputs.get("nodeLocations") or ()))
        autoscaling = inputs.get("autoscaling") or {}
        node_count = int(inputs.get("nodeCount") or inputs.get("initialNodeCount") or 1)
        accelerators = config.get("guestAccelerators") or []
        driver = (
            ((accelerators[0].get("gpuDriverInstallationConfig") or {}).get("gpuDriverVersion"))
            if accelerators
            else None
        )
        found.append(
            Pool(
                name=name,
                machine=machine,
                zones=zones,
                region=region,
                min_nodes=int(autoscaling.get("totalMinNodeCount", autoscaling.get("minNodeCount", node_count))),
                max_nodes=int(autoscaling.get("totalMaxNodeCount", autoscaling.get("maxNodeCount", node_count))),
                spot=bool(config.get("spot") or config.get("preemptible")),
                disk_gb=int(config.get("diskSizeGb") or 100),
                labels={str(k): str(v) for k, v in (config.get("labels") or {}).items()},
                taints=tuple(
                    {
                        "key": t["key"],
                        "value": t.get("value", ""),
                        "effect": catalog.TAINT_EFFECTS.get(t["effect"], t["effect"]),
                    }
                    for t in config.get("taints") or []
                ),
                accelerator=str(accelerators[0]["type"]) if accelerators else None,
                gpus=int(sum(a.get("count", 0) for a in accelerators)) if accelerators else 0,
                driver_version=None if driver in (None, "INSTALLATION_DISABLED") else str(driver),
            )
        )
    if problems:
        raise NodesError("cannot shape nodes:\n" + "\n".join(f"  - {p}" for p in problems))
    return found


def _quantity_mi(gib: float) -> str:
    return f"{int(gib * 1024)}Mi"


def node_objects(
    stack_pools: list[Pool], cluster_name: str, kubelet_version: str, count: Literal["max", "min"] = "max"
) -> list[dict[str, Any]]:
    """Node objects for every pool: labels GKE sets, taints, capacity and allocatable from the catalog."""
    any_cpu_pool = any(p.gpus == 0 for p in stack_pools)
    nodes = []
    for pool in stack_pools:
        taints = [dict(t) for t in pool.taints]
        if pool.gpus and any_cpu_pool and not any(t["key"] == GPU_RESOURCE for t in taints):
            taints.append({"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"})  # GKE adds it
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
                **pool.labels,
                NODEPOOL_LABEL: pool.name,
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
            if pool.accelerator:
                labels["cloud.google.com/gke-accelerator"] = pool.accelerator
            if pool.driver_version:
                labels["cloud.google.com/gke-gpu-driver-version"] = pool.driver_version.lower()
            if pool.spot:
                labels["cloud.google.com/gke-spot"] = "true"
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
