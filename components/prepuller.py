"""The image prepuller DaemonSet (only with `imagePrepuller: true`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components.prepuller_spec import image_prepuller
from components.type_aliases import with_old_type


@dataclass(frozen=True)
class ImagePrepullerArgs:
    dask_cluster: str
    """The DaskCluster whose workers' images are pulled: names and labels the DaemonSet."""
    namespace: str
    """Where the DaemonSet runs: the Dask namespace (Pod Security restricted)."""
    images: tuple[str, ...]
    """The images to pull (`prepuller_spec.worker_images`: every GPU worker's), one container each."""


class ImagePrepuller(pulumi.ComponentResource):
    """Pulls the GPU workers' image onto each GPU node as soon as it is Ready."""

    TYPE_TOKEN = "gpu-dask:prepuller:ImagePrepuller"
    """Frozen (components/type_aliases.py): part of every URN under this component."""
    OLD_TYPE_TOKEN = "gpu-dask:gpu:ImagePrepuller"

    daemonset: k8s.apps.v1.DaemonSet

    def __init__(self, name: str, args: ImagePrepullerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE_TOKEN, name, None, with_old_type(self.OLD_TYPE_TOKEN, opts))
        manifest = image_prepuller(args.dask_cluster, args.namespace, args.images)
        self.daemonset = k8s.apps.v1.DaemonSet(
            f"{name}-daemonset",
            metadata=manifest["metadata"],
            spec=cast(Any, manifest["spec"]),
            # skipAwait (in the metadata): `pulumi up` never waits for GPU nodes to exist.
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": self.daemonset.metadata.name})
