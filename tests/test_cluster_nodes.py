"""kwok nodes shaped like the stack's pools, and the real scheduler's verdict on GPU capacity."""

from __future__ import annotations

import time

import pytest

from gpudask.local.cluster.nodes import stack_nodes
from gpudask.record.recorder import run_program


def _gpu_pod(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"cloud.google.com/gke-nodepool": "a100"},
            "containers": [
                {
                    "name": "w",
                    "image": "rapidsai/base:25.10-cuda12.9-py3.12",
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def dev():
    return run_program("dev")


@pytest.mark.control_plane
def test_the_real_scheduler_refuses_a_gpu_pod_beyond_the_pools_capacity(dev) -> None:
    from gpudask.local.cluster.controlplane import ControlPlane

    started = time.monotonic()
    # Its own control plane: the stack's kwok nodes are cluster-wide and stay until it stops.
    with ControlPlane() as cp, stack_nodes(cp, dev) as nodes:
        print(f"{len(nodes.names)} kwok nodes Ready in {nodes.ready_s:.1f} s")
        kube = cp.kube()
        kube.request(
            "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gpu"}}
        )
        for i in range(3):  # dev: two a2-highgpu-1g nodes (maxNodes 2), one A100 each
            # No toleration given: ExtendedResourceToleration adds it, as on GKE.
            kube.request("POST", "/api/v1/namespaces/gpu/pods", _gpu_pod(f"gpu-{i}"))
        deadline = time.monotonic() + 30
        listed: dict[str, dict] = {}
        bound: dict[str, str] = {}
        refused: list[str] = []
        while time.monotonic() < deadline:
            listed = {p["metadata"]["name"]: p for p in kube.list("v1", "Pod", "gpu")}
            bound = {n: p["spec"].get("nodeName") for n, p in listed.items() if p["spec"].get("nodeName")}
            refused = [
                c["message"]
                for p in listed.values()
                for c in p.get("status", {}).get("conditions") or []
                if c["type"] == "PodScheduled" and c["status"] == "False"
            ]
            if len(bound) == 2 and refused:
                break
            time.sleep(0.2)
        tolerations = listed["gpu-0"]["spec"]["tolerations"]
    print(f"scenario: {time.monotonic() - started:.1f} s; refused: {refused}")
    assert len(bound) == 2 and len(set(bound.values())) == 2, bound
    assert all("-a100-" in node for node in bound.values())
    # e.g. "0/5 nodes are available: 2 Insufficient nvidia.com/gpu, 3 node(s) didn't match Pod's node affinity/selector."
    # The scheduler pool's node refuses it by its taint, the A100 nodes by capacity.
    assert refused and "2 Insufficient nvidia.com/gpu" in refused[0] and "untolerated taint" in refused[0], refused
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
