"""One autoscaled A100 node pool."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components import gke_spec
from components.settings import GpuPoolSettings, StackSettings


@dataclass(frozen=True)
class GpuNodePoolArgs:
    settings: StackSettings
    pool: GpuPoolSettings
    cluster_id: pulumi.Input[str]
    service_account: pulumi.Input[str]
    after: Sequence[pulumi.Resource] = ()
    """What the nodes need before they boot (the service account's roles, the image streaming
    API). Omitted -> the pool waits only for the cluster."""


class GpuNodePool(pulumi.ComponentResource):
    """An A100 pool: accelerator type and count follow the machine type; tainted for GPU pods only."""

    node_pool: gcp.container.NodePool
    name: pulumi.Output[str]

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-dask:gke:GpuNodePool", name, None, opts)
        s, pool = args.settings, args.pool
        self.node_pool = gcp.container.NodePool(
            f"{name}-pool",
            name=pool.name,  # a stable name: workers and the plan select pools by it
            project=s.project,
            cluster=args.cluster_id,
            location=s.location,
            node_locations=list(pool.zones) or None,
            initial_node_count=pool.min_nodes if not s.regional else None,
            autoscaling=gke_spec.autoscaling(pool.min_nodes, pool.max_nodes),
            management=gke_spec.management(),
            upgrade_settings=gke_spec.gpu_upgrade_settings(),
            node_config=gke_spec.gpu_node_config(s, pool, args.service_account),
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=s.protect,
                ignore_changes=gke_spec.NODE_COUNT_IGNORE_CHANGES,
                delete_before_replace=True,
                depends_on=list(args.after),
            ),
        )
        self.name = self.node_pool.name
        self.register_outputs({"name": self.name})
