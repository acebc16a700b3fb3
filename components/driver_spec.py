"""Pure builder for the NVIDIA driver installer DaemonSet (COS, preloaded installer image).

Behaviour matches Google's `nvidia-driver-installer/cos/daemonset-preloaded-latest.yaml`
(GoogleCloudPlatform/container-engine-accelerators), written here as data so that the
stack never fetches a manifest from a URL at deploy time and reviews see every field.
tests/test_driver.py compares it field by field with a dated upstream copy
(tests/data/) and lists every deliberate difference with its reason.
"""

from __future__ import annotations

from typing import Any

NAME = "nvidia-driver-installer"
NAMESPACE = "kube-system"
# Preloaded on COS GPU nodes by GKE; never pulled (imagePullPolicy: Never).
INSTALLER_IMAGE = "cos-nvidia-installer:fixed"
# Applies MIG partitions from /etc/nvidia when a pool asks for them; pinned by digest upstream.
# The digest at upstream HEAD (992db81, 2026-06-11; daemonset-preloaded-latest.yaml last changed
# f2cf419, 2025-07-02): the multi-arch image that replaced e226275d... (and c54fd003... of 2023).
PARTITION_IMAGE = (
    "gcr.io/gke-release/nvidia-partition-gpu@sha256:de12f85ebfb4fb6c1893cd30c23aab662a72fa0448f97ef74fccb82d7522ef17"
)
# Pinned by digest, as upstream does: a tag alone lets the registry change what runs.
PAUSE_IMAGE = "gke.gcr.io/pause:3.8@sha256:880e63f94b145e46f1b1082bb71b85e21f16b99b180b9996407d61240ceb9830"
INSTALL_DIR_HOST = "/home/kubernetes/bin/nvidia"
# `pulumi up` must not wait for this DaemonSet's pods: only GPU nodes run them, and a pool
# that scales from zero has none (pulumi-kubernetes awaits DaemonSets, https://github.com/pulumi/pulumi-kubernetes/issues/2953).
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}

# The installer's script. A node whose driver is already loaded (an init container re-run
# after a kubelet restart, or a node image with the driver in it) is left alone; after an
# install the directory is made world-readable, because our pods run as uid 1001 and read
# the driver's libraries through the device plugin's mount of it.
INSTALL_SCRIPT = f"""\
if lsmod | grep -q nvidia; then
  echo "nvidia kernel module already loaded: leaving the installed driver as it is"
  exit 0
fi
echo "no nvidia kernel module loaded: installing the COS driver"
/cos-gpu-installer install --version=latest || exit 1
chmod 755 /root{INSTALL_DIR_HOST}
"""

# Nodes with a GPU and WITHOUT a GKE-managed driver. On GKE >= 1.30 a pool that leaves
# gpuDriverVersion unset gets GKE's driver and this label, so the DaemonSet never lands there.
NODE_AFFINITY_EXPRESSIONS = [
    {"key": "cloud.google.com/gke-accelerator", "operator": "Exists"},
    {"key": "cloud.google.com/gke-gpu-driver-version", "operator": "DoesNotExist"},
    # Confidential GPU nodes install their driver with daemonset-confidential*.yaml (upstream).
    {"key": "cloud.google.com/gke-confidential-nodes-instance-type", "operator": "DoesNotExist"},
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
        "command": ["bash", "-c", INSTALL_SCRIPT],
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
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(labels), "annotations": dict(SKIP_AWAIT)},
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
