"""Pure builder for the image prepuller: a DaemonSet that pulls the Dask worker image onto
every GPU node as soon as the node is Ready.

It requests no GPU, so it lands before the NVIDIA driver is installed and the device plugin
advertises the GPU: the image pull overlaps the driver install instead of following it
(ai-on-gke best-practices/startup-latency.md). It runs `sleep` in the worker's own (pinned)
image, in the Dask namespace under Pod Security `restricted`. `pulumi up` never waits for its
pods: with the A100 pools at zero there are none to wait for.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from components.dask_spec import GPU_RESOURCE, SCHEDULER_TOLERATION
from components.security_spec import CONTAINER_SECURITY_CONTEXT, LABELS, POD_SECURITY_CONTEXT
from components.settings import DaskSettings

COMPONENT_LABEL = "app.kubernetes.io/component"
COMPONENT = "image-prepuller"
# Pulumi's await logic skips an object that carries this annotation.
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"
GPU_NODE_LABEL = "cloud.google.com/gke-accelerator"


def prepuller_name(dask_cluster: str) -> str:
    return f"{dask_cluster}-image-prepuller"


def worker_images(dask: DaskSettings) -> list[str]:
    """Every image a GPU worker of this cluster runs, in a stable order."""
    images = [dask.worker.image]
    for group in dask.worker_groups.values():
        if group.gpus_per_worker and group.image not in images:
            images.append(group.image)
    return images


def image_prepuller(dask_cluster: str, namespace: str, images: Sequence[str]) -> dict[str, Any]:
    """The DaemonSet pulling `images` (`worker_images`) for DaskCluster `dask_cluster`, in `namespace`."""
    labels = {**LABELS, COMPONENT_LABEL: COMPONENT, "app.kubernetes.io/instance": dask_cluster}
    containers = [
        {
            "name": f"image-{i}",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            # The pull is the work; the container then idles. `sleep` is in every RAPIDS image.
            "command": ["sleep", "infinity"],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
            # Nothing to serve: the probes only say the container (so the pulled image) is there.
            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 300},
            "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 300},
            # It writes nothing: a read-only root on top of the namespace's restricted context.
            "securityContext": {**copy.deepcopy(CONTAINER_SECURITY_CONTEXT), "readOnlyRootFilesystem": True},
        }
        for i, image in enumerate(images)
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": prepuller_name(dask_cluster),
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": {SKIP_AWAIT_ANNOTATION: "true"},
        },
        "spec": {
            "selector": {"matchLabels": {COMPONENT_LABEL: COMPONENT, "app.kubernetes.io/instance": dask_cluster}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": copy.deepcopy(POD_SECURITY_CONTEXT),
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {"matchExpressions": [{"key": GPU_NODE_LABEL, "operator": "Exists"}]}
                                ]
                            }
                        }
                    },
                    # Requests no GPU, so the automatic GPU toleration does not apply: say it.
                    # The scheduler's own GPU pool too: the scheduler runs the same image.
                    "tolerations": [
                        {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
                        dict(SCHEDULER_TOLERATION),
                    ],
                    "terminationGracePeriodSeconds": 1,
                    "containers": containers,
                },
            },
        },
    }
