"""The NVIDIA driver installer DaemonSet (only with `driver: daemonset`)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.driver_spec import driver_daemonset


@dataclass(frozen=True)
class NvidiaDriverArgs:
    """No knobs today: the installer follows Google's COS preloaded-latest manifest."""


class NvidiaDriverInstaller(pulumi.ComponentResource):
    """Installs the NVIDIA driver on every GPU node whose driver GKE does not manage."""

    daemonset: k8s.apps.v1.DaemonSet

    def __init__(self, name: str, args: NvidiaDriverArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-dask:gpu:NvidiaDriverInstaller", name, None, opts)
        del args
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
