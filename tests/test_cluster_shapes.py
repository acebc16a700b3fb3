"""The cluster rehearsal's pure parts: node shapes from the recorded pools, manifests as the API takes them."""

from __future__ import annotations

import pytest

from components.catalog import A100_MACHINE_TYPES, CPU_MACHINE_TYPES
from gpudask.local.cluster.nodes import NodesError, node_objects, pools
from gpudask.record.recorder import run_program
from gpudask.record.view import kubernetes_manifests, whole_numbers
from tests.conftest import recording


@pytest.fixture(scope="module")
def dev():
    return recording("dev")


@pytest.fixture(scope="module")
def prod():
    return recording("prod")


def _by_pool(objects: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for node in objects:
        out.setdefault(node["metadata"]["labels"]["cloud.google.com/gke-nodepool"], []).append(node)
    return out


def test_nodes_follow_the_recorded_pools(prod) -> None:
    objects = _by_pool(node_objects(pools(prod), "gpu-dask-prod", "v1.34.4"))
    assert sorted(objects) == ["a100", "scheduler", "system"]
    assert len(objects["a100"]) == 4 and len(objects["system"]) == 3  # each pool at maxNodes
    gpu = objects["a100"][0]
    machine = A100_MACHINE_TYPES["a2-highgpu-2g"]
    labels = gpu["metadata"]["labels"]
    assert {k: labels[k] for k in labels if k.startswith(("cloud.google.com/", "node.kubernetes.io", "topology"))} == {
        "cloud.google.com/gke-nodepool": "a100",
        "cloud.google.com/gke-accelerator": "nvidia-tesla-a100",
        "cloud.google.com/machine-family": "a2",
        "cloud.google.com/gke-os-distribution": "cos",
        "node.kubernetes.io/instance-type": "a2-highgpu-2g",
        "topology.kubernetes.io/zone": "us-central1-c",
        "topology.kubernetes.io/region": "us-central1",
    }
    assert labels["kubernetes.io/hostname"] == gpu["metadata"]["name"]
    assert gpu["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert gpu["status"]["capacity"]["nvidia.com/gpu"] == "2"
    assert gpu["status"]["allocatable"]["cpu"] == f"{round(machine.allocatable_cpu * 1000)}m"
    assert gpu["status"]["allocatable"]["memory"] == f"{int(machine.allocatable_memory_gb * 1024)}Mi"
    system = objects["system"][0]
    assert "taints" not in system["spec"] and "nvidia.com/gpu" not in system["status"]["capacity"]
    assert system["status"]["capacity"]["cpu"] == str(CPU_MACHINE_TYPES["e2-standard-8"].vcpu)


def test_spot_pools_carry_the_spot_label_and_min_count(dev) -> None:
    objects = _by_pool(node_objects(pools(dev), "gpu-dask-dev", "v1.34.4", count="min"))
    assert "a100" not in objects  # minNodes 0: the pool at rest has no node
    full = _by_pool(node_objects(pools(dev), "gpu-dask-dev", "v1.34.4"))
    assert all(n["metadata"]["labels"]["cloud.google.com/gke-spot"] == "true" for n in full["a100"])
    assert "cloud.google.com/gke-spot" not in full["system"][0]["metadata"]["labels"]


def test_an_existing_cluster_stack_gets_nodes_from_what_its_settings_say() -> None:
    # It declares no node pool: the system pool is existingCluster.systemPool with the system*
    # keys, each gpuNodePools entry keeps its GKE name, machine, maxNodes and spot.
    rec = run_program("existing", overrides={"gpu-dask:systemMachineType": "e2-standard-8"})
    assert not rec.of_type("gcp:container/nodePool:NodePool")
    objects = _by_pool(node_objects(pools(rec), "team-cluster", "v1.34.4"))
    assert sorted(objects) == ["a100", "default-pool", "l4-pool"]
    assert len(objects["default-pool"]) == 3 and len(objects["a100"]) == 2  # systemMaxNodes, maxNodes
    # existingCluster.schedulerPool: one L4 node, GKE's GPU taint and the taint the key lists.
    (l4,) = objects["l4-pool"]
    assert l4["metadata"]["labels"]["cloud.google.com/gke-accelerator"] == "nvidia-l4"
    assert l4["status"]["capacity"]["nvidia.com/gpu"] == "1"
    assert {(t["key"], t["value"], t["effect"]) for t in l4["spec"]["taints"]} == {
        ("nvidia.com/gpu", "present", "NoSchedule"),
        ("team/dedicated", "dask", "NoSchedule"),
    }
    system = objects["default-pool"][0]
    assert system["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "e2-standard-8"
    assert system["status"]["capacity"]["cpu"] == "8" and "taints" not in system["spec"]
    gpu = objects["a100"][0]["metadata"]["labels"]
    assert gpu["cloud.google.com/gke-spot"] == "true"
    assert gpu["cloud.google.com/gke-accelerator"] == "nvidia-tesla-a100"
    assert gpu["cloud.google.com/gke-gpu-driver-version"] == "default"  # driver: gke-default, GKE's label
    assert objects["a100"][0]["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]
    assert len(node_objects(pools(rec), "team-cluster", "v1.34.4", count="min")) == 1  # systemMinNodes; a100 at 0


def test_unknown_machine_types_are_all_named(dev) -> None:
    pool = next(r for r in dev.of_type("gcp:container/nodePool:NodePool") if r.inputs["name"] == "a100")
    system = next(r for r in dev.of_type("gcp:container/nodePool:NodePool") if r.inputs["name"] == "system")
    saved = (pool.inputs["nodeConfig"]["machineType"], system.inputs["nodeConfig"]["machineType"])
    pool.inputs["nodeConfig"]["machineType"] = "a3-highgpu-8g"
    system.inputs["nodeConfig"]["machineType"] = "x9-huge"
    try:
        with pytest.raises(NodesError) as err:
            pools(dev)
    finally:
        pool.inputs["nodeConfig"]["machineType"], system.inputs["nodeConfig"]["machineType"] = saved
    assert "node pool a100: nodeConfig.machineType 'a3-highgpu-8g' is not in components/catalog.py" in str(err.value)
    assert "node pool system: nodeConfig.machineType 'x9-huge'" in str(err.value)


def test_recorded_floats_go_out_as_integers() -> None:
    policy = next(
        whole_numbers(m)
        for _, m in kubernetes_manifests(recording("prod"))
        if m["kind"] == "NetworkPolicy" and m["metadata"]["name"] == "rapids-scheduler-clients"
    )
    ports = [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]]
    assert ports and all(type(p) is int for p in ports)
