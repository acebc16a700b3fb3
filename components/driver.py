"""The NVIDIA driver installer DaemonSet (only with `driver: daemonset`)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.driver_spec import driver_daemonset
from components.type_aliases import with_old_type


class NvidiaDriverInstaller(pulumi.ComponentResource):
    """Installs the NVIDIA driver on every GPU node whose driver GKE does not manage.

    It takes no arguments: the DaemonSet is Google's COS preloaded-latest manifest, pinned in
    components/driver_spec.py; its nodes are chosen by the label GKE puts on GPU nodes.
    """

    TYPE_TOKEN = "gpu-dask:driver:NvidiaDriverInstaller"
    """Frozen (components/type_aliases.py): part of every URN under this component."""
    OLD_TYPE_TOKEN = "gpu-dask:gpu:NvidiaDriverInstaller"

    daemonset: k8s.apps.v1.DaemonSet

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE_TOKEN, name, None, with_old_type(self.OLD_TYPE_TOKEN, opts))
        manifest = driver_daemonset()
        self.daemonset = k8s.apps.v1.DaemonSet(
            f"{name}-daemonset",
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            # pulumi-kubernetes waits for a DaemonSet's pods to be ready; only GPU nodes run these,
            # and a pool at zero has none. The manifest's `pulumi.com/skipAwait` annotation makes
            # `pulumi up` create it and move on (tests/test_driver.py checks the annotation).
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": self.daemonset.metadata.name})
