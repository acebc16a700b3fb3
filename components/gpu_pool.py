"""One autoscaled A100 node pool."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from components import gke_spec
from components.settings import GpuPoolSettings, is_region
from components.type_aliases import with_old_type


@dataclass(frozen=True)
class GpuNodePoolArgs:
    project: str
    location: str
    """The cluster's location: a zone, or a region (then no per-zone initial node count)."""
    cluster_id: pulumi.Input[str]
    service_account: pulumi.Input[str]
    """The nodes' service account email."""
    pool: GpuPoolSettings
    """Name, machine type (and so accelerator type and count), node counts, spot, disk, zones."""
    driver_version: str
    """gpuDriverInstallationConfig.gpuDriverVersion: `INSTALLATION_DISABLED` with the driver
    DaemonSet, else the GKE-managed driver branch (`DEFAULT`, `LATEST`)."""
    protect: bool
    """Pulumi `protect` on the node pool."""
    image_streaming: bool = True
    """GKE image streaming (gcfsConfig). Omitted -> on: containers start before the image is pulled."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """GCP resource labels on the nodes. Omitted -> only `app: gpu-dask`."""
    after: Sequence[pulumi.Resource] = ()
    """What the nodes need before they boot (the service account's roles, the image streaming
    API). Omitted -> the pool waits only for the cluster."""


class GpuNodePool(pulumi.ComponentResource):
    """An A100 pool: accelerator type and count follow the machine type; tainted for GPU pods only."""

    TYPE_TOKEN = "gpu-dask:gpu_pool:GpuNodePool"
    """Frozen (components/type_aliases.py): part of every URN under this component."""
    OLD_TYPE_TOKEN = "gpu-dask:gke:GpuNodePool"

    node_pool: gcp.container.NodePool
    name: pulumi.Output[str]

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE_TOKEN, name, None, with_old_type(self.OLD_TYPE_TOKEN, opts))
        pool = args.pool
        self.node_pool = gcp.container.NodePool(
            f"{name}-pool",
            name=pool.name,  # a stable name: workers and the plan select pools by it
            project=args.project,
            cluster=args.cluster_id,
            location=args.location,
            node_locations=list(pool.zones) or None,
            initial_node_count=pool.min_nodes if not is_region(args.location) else None,
            autoscaling=gke_spec.autoscaling(pool.min_nodes, pool.max_nodes),
            management=gke_spec.management(),
            upgrade_settings=gke_spec.gpu_upgrade_settings(),
            node_config=gke_spec.gpu_node_config(
                pool,
                args.service_account,
                driver_version=args.driver_version,
                image_streaming=args.image_streaming,
                labels=args.labels,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                ignore_changes=gke_spec.NODE_COUNT_IGNORE_CHANGES,
                delete_before_replace=True,
                depends_on=list(args.after),
            ),
        )
        self.name = self.node_pool.name
        self.register_outputs({"name": self.name})
