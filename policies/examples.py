"""A compliant and a violating resource for every rule (used by the tests and selfcheck.py)."""

from __future__ import annotations

from typing import Any

from rules import CLUSTER, DASK_CLUSTER, GPU_TAINT, INTERNAL_LB, NODE_POOL, SERVICE

NODES_SA = "gpu-dask-dev-nodes@gpu-dask-dev.iam.gserviceaccount.com"
GOOD_NODE_CONFIG: dict[str, Any] = {"serviceAccount": NODES_SA, "workloadMetadataConfig": {"mode": "GKE_METADATA"}}
GOOD_CLUSTER: dict[str, Any] = {
    "removeDefaultNodePool": True,
    "nodeConfig": GOOD_NODE_CONFIG,
    "masterAuthorizedNetworksConfig": {"cidrBlocks": [{"cidrBlock": "203.0.113.0/24"}]},
    "privateClusterConfig": {"enablePrivateNodes": True},
    "workloadIdentityConfig": {"workloadPool": "gpu-dask-dev.svc.id.goog"},
}
GPU_ACCELERATOR = {
    "type": "nvidia-tesla-a100",
    "count": 1,
    "gpuDriverInstallationConfig": {"gpuDriverVersion": "INSTALLATION_DISABLED"},
}
ILB = {"metadata": {"annotations": {INTERNAL_LB: "Internal"}}}

Case = tuple[str, dict[str, Any]]
RESOURCE_EXAMPLES: dict[str, dict[str, list[Case]]] = {
    "no-public-dask-scheduler": {
        "compliant": [
            (SERVICE, {**ILB, "spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.128.0.0/20"]}}),
            (SERVICE, {"spec": {"type": "ClusterIP"}}),
            (DASK_CLUSTER, {"spec": {"scheduler": {"service": {"type": "ClusterIP"}}}}),
        ],
        "violating": [
            (SERVICE, {"spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.128.0.0/20"]}}),
            (SERVICE, {**ILB, "spec": {"type": "LoadBalancer"}}),
            (DASK_CLUSTER, {"spec": {"scheduler": {"service": {"type": "LoadBalancer"}}}}),
            (DASK_CLUSTER, {"spec": {"scheduler": {"service": {"type": "NodePort"}}}}),
        ],
    },
    "no-open-control-plane": {
        "compliant": [(CLUSTER, GOOD_CLUSTER)],
        "violating": [
            (CLUSTER, {**GOOD_CLUSTER, "masterAuthorizedNetworksConfig": {"cidrBlocks": [{"cidrBlock": "0.0.0.0/0"}]}}),
            (CLUSTER, {k: v for k, v in GOOD_CLUSTER.items() if k != "masterAuthorizedNetworksConfig"}),
            (CLUSTER, {**GOOD_CLUSTER, "privateClusterConfig": {"enablePrivateNodes": False}}),
        ],
    },
    "no-default-compute-service-account": {
        "compliant": [(NODE_POOL, {"nodeConfig": GOOD_NODE_CONFIG}), (CLUSTER, GOOD_CLUSTER)],
        "violating": [
            (NODE_POOL, {"nodeConfig": {"workloadMetadataConfig": {"mode": "GKE_METADATA"}}}),
            (
                NODE_POOL,
                {"nodeConfig": {**GOOD_NODE_CONFIG, "serviceAccount": "123-compute@developer.gserviceaccount.com"}},
            ),
            (CLUSTER, {k: v for k, v in GOOD_CLUSTER.items() if k != "nodeConfig"}),
            (CLUSTER, {**GOOD_CLUSTER, "removeDefaultNodePool": False, "nodeConfig": None}),
        ],
    },
    "gke-metadata-server": {
        "compliant": [(NODE_POOL, {"nodeConfig": GOOD_NODE_CONFIG}), (CLUSTER, GOOD_CLUSTER)],
        "violating": [
            (NODE_POOL, {"nodeConfig": {**GOOD_NODE_CONFIG, "workloadMetadataConfig": {"mode": "GCE_METADATA"}}}),
            (CLUSTER, {k: v for k, v in GOOD_CLUSTER.items() if k != "workloadIdentityConfig"}),
        ],
    },
    "pinned-images": {
        "compliant": [
            ("kubernetes:apps/v1:DaemonSet", {"spec": {"template": {"spec": {"containers": [{"image": "x/y:1.2"}]}}}}),
            (
                DASK_CLUSTER,
                {"spec": {"worker": {"spec": {"containers": [{"image": "rapidsai/base@sha256:" + "0" * 64}]}}}},
            ),
        ],
        "violating": [
            ("kubernetes:apps/v1:DaemonSet", {"spec": {"template": {"spec": {"initContainers": [{"image": "x/y"}]}}}}),
            (DASK_CLUSTER, {"spec": {"scheduler": {"spec": {"containers": [{"image": "rapidsai/base:latest"}]}}}}),
        ],
    },
    "gpu-pool-tainted": {
        "compliant": [
            (
                NODE_POOL,
                {"nodeConfig": {**GOOD_NODE_CONFIG, "guestAccelerators": [GPU_ACCELERATOR], "taints": [GPU_TAINT]}},
            ),
            (NODE_POOL, {"nodeConfig": GOOD_NODE_CONFIG}),  # a CPU pool needs no taint
        ],
        "violating": [(NODE_POOL, {"nodeConfig": {**GOOD_NODE_CONFIG, "guestAccelerators": [GPU_ACCELERATOR]}})],
    },
}

DRIVER_DAEMONSET: Case = (
    "kubernetes:apps/v1:DaemonSet",
    {"metadata": {"namespace": "kube-system", "name": "nvidia-driver-installer"}},
)


def gpu_pool(version: str) -> Case:
    accelerator = {**GPU_ACCELERATOR, "gpuDriverInstallationConfig": {"gpuDriverVersion": version}}
    return (NODE_POOL, {"name": "a100", "nodeConfig": {**GOOD_NODE_CONFIG, "guestAccelerators": [accelerator]}})


STACK_EXAMPLES: dict[str, dict[str, list[list[Case]]]] = {
    "driver-daemonset-xor-gke-driver": {
        "compliant": [[DRIVER_DAEMONSET, gpu_pool("INSTALLATION_DISABLED")], [gpu_pool("LATEST")]],
        "violating": [[DRIVER_DAEMONSET, gpu_pool("DEFAULT")], [gpu_pool("INSTALLATION_DISABLED")]],
    }
}
