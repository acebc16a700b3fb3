"""gpu-dask: read the stack config once, build the components, export what clients need."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components import kubernetes_half, prices
from components.cluster import GkeCluster, GkeClusterArgs
from components.dashboard import DaskDashboard, DaskDashboardArgs
from components.gpu_pool import GpuNodePool, GpuNodePoolArgs
from components.network import Network, NetworkArgs
from components.settings import EXISTING_CLUSTER_KUBECONFIG, GpuPoolSettings

settings = kubernetes_half.settings_from_config()

gke: GkeCluster | None = None
# The scheduler's internal load balancer address, reserved in the stack's subnet (GKE stacks).
internal_address: pulumi.Output[str] | None = None
gpu_pools: dict[str, GpuNodePool] = {}
scheduler_pool: GpuNodePool | None = None
if settings.existing_cluster is None:
    network = Network(
        "network",
        NetworkArgs(
            project=settings.project,
            region=settings.region,
            name_prefix=settings.cluster_name,
            subnet_cidr=settings.network.subnet_cidr,
            pods_cidr=settings.network.pods_cidr,
            services_cidr=settings.network.services_cidr,
            scheduler_address=settings.dask.scheduler_service == "InternalLoadBalancer",
        ),
    )
    if network.scheduler_address is not None:
        internal_address = network.scheduler_address.address
    gke = GkeCluster(
        "gke",
        GkeClusterArgs(
            project=settings.project,
            location=settings.location,
            cluster_name=settings.cluster_name,
            network_id=network.vpc.id,
            subnet_id=network.subnet.id,
            pods_range=network.pods_range,
            services_range=network.services_range,
            master_cidr=settings.network.master_cidr,
            authorized_networks=settings.authorized_networks,
            release_channel=settings.release_channel,
            system_machine_type=settings.system_machine_type,
            system_min_nodes=settings.system_min_nodes,
            system_max_nodes=settings.system_max_nodes,
            protect=settings.protect,
            labels=settings.labels,
            managed_prometheus=settings.monitoring.collection == "gmp",
            dcgm_metrics=settings.dcgm_metrics,
            control_plane_access=settings.control_plane_access,
        ),
    )

    def gpu_pool_args(pool: GpuPoolSettings, cluster: GkeCluster) -> GpuNodePoolArgs:
        return GpuNodePoolArgs(
            project=settings.project,
            location=settings.location,
            cluster_id=cluster.cluster.id,
            service_account=cluster.node_service_account.email,
            pool=pool,
            driver_version=settings.gke_driver_version,
            protect=settings.protect,
            image_streaming=settings.image_streaming,
            labels=settings.labels,
            after=[*cluster.node_roles.values(), *cluster.apis.values()],
        )

    gpu_pools = {
        pool_name: GpuNodePool(f"gpu-{pool_name}", gpu_pool_args(pool, gke))
        for pool_name, pool in settings.gpu_node_pools.items()
    }
    if settings.scheduler_pool:
        # The scheduler's one small GPU (L4/T4), unless dask.schedulerGpu is false.
        scheduler_pool = GpuNodePool("gpu-scheduler", gpu_pool_args(settings.scheduler_pool, gke))
    # Built from the endpoint and CA only (stable across cluster updates). Waiting for the
    # system pool gives the operator somewhere to run; nothing Kubernetes waits for GPU pools.
    provider = k8s.Provider(
        "gke",
        kubeconfig=gke.kubeconfig,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(depends_on=[gke.system_pool]),
    )
else:
    # A cluster this stack does not own: its pools are described by gpuNodePools, not created.
    provider = k8s.Provider(
        "existing",
        # "" and not omitted: the SDK would copy $KUBECONFIG (a path) into the provider's inputs,
        # and so into state. The provider reads "" as "the ambient kubeconfig" (KUBECONFIG, else
        # ~/.kube/config), where it finds the context the stack names.
        kubeconfig=EXISTING_CLUSTER_KUBECONFIG,
        context=settings.existing_cluster.context,
        enable_server_side_apply=True,
    )
dask = kubernetes_half.declare(settings, provider, internal_address=internal_address)
kubernetes_half.export_outputs(settings, dask)
if gke is not None:
    pulumi.export("clusterName", gke.name)
    pulumi.export("location", settings.location)
    pulumi.export("project", settings.project)
    pulumi.export("gpuNodePools", {name: pool.name for name, pool in gpu_pools.items()})
    if scheduler_pool is not None:
        pulumi.export("schedulerNodePool", scheduler_pool.name)
    pulumi.export("kubeconfig", gke.kubeconfig)
    if settings.monitoring.dashboard:
        # On the cluster's Managed Prometheus data; the dashboard needs nothing of the cluster to exist.
        board = DaskDashboard(
            "monitoring",
            DaskDashboardArgs(
                settings.project,
                settings.cluster_name,
                settings.dask,
                settings.monitoring,
                node_hourly=prices.pool_node_hourly(settings),
            ),
        )
        pulumi.export("monitoringDashboardUrl", board.url)
