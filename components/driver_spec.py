"""Pure builder for the NVIDIA driver installer DaemonSet (COS, preloaded installer image).

Behaviour matches Google's `nvidia-driver-installer/cos/daemonset-preloaded-latest.yaml`
(GoogleCloudPlatform/container-engine-accelerators), written here as data so that the
stack never fetches a manifest from a URL at deploy time and reviews see every field.
"""

from __future__ import annotations

from typing import Any

NAME = "nvidia-driver-installer"
NAMESPACE = "kube-system"
# Preloaded on COS GPU nodes by GKE; never pulled (imagePullPolicy: Never).
INSTALLER_IMAGE = "cos-nvidia-installer:fixed"
# Applies MIG partitions from /etc/nvidia when a pool asks for them; pinned by digest upstream.
PARTITION_IMAGE = (
    "gcr.io/gke-release/nvidia-partition-gpu@sha256:c54fd003948fac687c2a93a55ea6e4d47ffbd641278a9191e75e822fe72471c2"
)
PAUSE_IMAGE = "gke.gcr.io/pause:3.8"
INSTALL_DIR_HOST = "/home/kubernetes/bin/nvidia"

# Nodes with a GPU and WITHOUT a GKE-managed driver. On GKE >= 1.30 a pool that leaves
# gpuDriverVersion unset gets GKE's driver and this label, so the DaemonSet never lands there.
NODE_AFFINITY_EXPRESSIONS = [
    {"key": "cloud.google.com/gke-accelerator", "operator": "Exists"},
    {"key": "cloud.google.com/gke-gpu-driver-version", "operator": "DoesNotExist"},
]


def _host_path(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "hostPath": {"path": path}}


def driver_daemonset() -> dict[str, Any]:
    labels = {"k8s-app": NAME}
    env = {
        "NVIDIA_INSTALL_DIR_HOST": INSTALL_DIR_HOST,
        "NVIDIA_INSTALL_DIR_CONTAINER": "/usr/local/nvidia",
        "VULKAN_ICD_DIR_HOST": f"{INSTALL_DIR_HOST}/vulkan/icd.d",
        "VULKAN_ICD_DIR_CONTAINER": "/etc/vulkan/icd.d",
        "ROOT_MOUNT_DIR": "/root",
        "COS_TOOLS_DIR_HOST": "/var/lib/cos-tools",
        "COS_TOOLS_DIR_CONTAINER": "/build/cos-tools",
    }
    installer = {
        "name": NAME,
        "image": INSTALLER_IMAGE,
        "imagePullPolicy": "Never",
        "command": ["/cos-gpu-installer", "install", "--version=latest"],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "resources": {"requests": {"cpu": "150m"}},
        # Loads a kernel module on the host: privileged by necessity.
        "securityContext": {"privileged": True},
        "volumeMounts": [
            {"name": "nvidia-install-dir-host", "mountPath": "/usr/local/nvidia"},
            {"name": "vulkan-icd-mount", "mountPath": "/etc/vulkan/icd.d"},
            {"name": "dev", "mountPath": "/dev"},
            {"name": "root-mount", "mountPath": "/root"},
            {"name": "cos-tools", "mountPath": "/build/cos-tools"},
        ],
    }
    partitioner = {
        "name": "partition-gpus",
        "image": PARTITION_IMAGE,
        "env": [{"name": "LD_LIBRARY_PATH", "value": "/usr/local/nvidia/lib64"}],
        "resources": {"requests": {"cpu": "150m"}},
        "securityContext": {"privileged": True},
        "volumeMounts": [
            {"name": "nvidia-install-dir-host", "mountPath": "/usr/local/nvidia"},
            {"name": "dev", "mountPath": "/dev"},
            {"name": "nvidia-config", "mountPath": "/etc/nvidia"},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"name": NAME, **labels}},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {"matchExpressions": [dict(e) for e in NODE_AFFINITY_EXPRESSIONS]}
                                ]
                            }
                        }
                    },
                    # Every GPU node, whatever its taints (GPU, spot, upgrades).
                    "tolerations": [{"operator": "Exists"}],
                    "hostNetwork": True,
                    "hostPID": True,
                    "volumes": [
                        _host_path("dev", "/dev"),
                        _host_path("vulkan-icd-mount", f"{INSTALL_DIR_HOST}/vulkan/icd.d"),
                        _host_path("nvidia-install-dir-host", INSTALL_DIR_HOST),
                        _host_path("root-mount", "/"),
                        _host_path("cos-tools", "/var/lib/cos-tools"),
                        _host_path("nvidia-config", "/etc/nvidia"),
                    ],
                    "initContainers": [installer, partitioner],
                    "containers": [{"name": "pause", "image": PAUSE_IMAGE}],
                },
            },
        },
    }
