"""gpu-dask: read the stack config once, build the components, export what clients need."""

from __future__ import annotations

import os

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import GkeCluster, GkeClusterArgs
from components.dask_cluster import GpuDaskCluster, GpuDaskClusterArgs
from components.dask_spec import worker_group_summary
from components.driver import NvidiaDriverInstaller
from components.gpu_pool import GpuNodePool, GpuNodePoolArgs
from components.metrics import DaskMetrics, DaskMetricsArgs
from components.network import Network, NetworkArgs
from components.operator import DaskOperator, DaskOperatorArgs
from components.prepuller import ImagePrepuller, ImagePrepullerArgs
from components.prepuller_spec import worker_images
from components.settings import TOP_KEYS, GpuPoolSettings, parse_settings

config = pulumi.Config()
# Raises SettingsError listing every problem before any resource is declared.
settings = parse_settings({key: config.get(key) for key in TOP_KEYS}, project=pulumi.Config("gcp").get("project"))

gke: GkeCluster | None = None
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
        ),
    )
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
        kubeconfig=os.path.expanduser(settings.existing_cluster.kubeconfig),
        context=settings.existing_cluster.context,
        enable_server_side_apply=True,
    )
on_gke = pulumi.ResourceOptions(providers=[provider])

if settings.uses_driver_daemonset:
    NvidiaDriverInstaller("nvidia-driver", on_gke)

operator = DaskOperator(
    "dask-operator", DaskOperatorArgs(version=settings.operator_version, node_pool=settings.system_pool), on_gke
)
dask = GpuDaskCluster(
    "dask",
    GpuDaskClusterArgs(settings.dask),
    # The operator (and its CRDs) only: GPU nodes arrive on their own when workers are pending.
    pulumi.ResourceOptions(providers=[provider], depends_on=[operator.release]),
)

if settings.monitoring.collection != "none":
    # In the Dask namespace; the collector reaches /metrics once its policies exist.
    DaskMetrics(
        "metrics",
        DaskMetricsArgs(settings.dask, settings.monitoring),
        pulumi.ResourceOptions(providers=[provider], depends_on=[dask.namespace]),
    )

if settings.image_prepuller:
    # In the Dask namespace (Pod Security restricted), so after it; never awaited.
    ImagePrepuller(
        "image-prepuller",
        ImagePrepullerArgs(settings.dask.name, settings.dask.namespace, tuple(worker_images(settings.dask))),
        pulumi.ResourceOptions(providers=[provider], depends_on=[dask.namespace]),
    )

pulumi.export("schedulerAddress", dask.scheduler_address)
pulumi.export("dashboardUrl", dask.dashboard_url)
pulumi.export("daskClusterName", settings.dask.name)
pulumi.export("daskNamespace", settings.dask.namespace)
pulumi.export("daskWorkerGroups", worker_group_summary(settings.dask))
if gke is not None:
    pulumi.export("clusterName", gke.name)
    pulumi.export("location", settings.location)
    pulumi.export("project", settings.project)
    pulumi.export("gpuNodePools", {name: pool.name for name, pool in gpu_pools.items()})
    if scheduler_pool is not None:
        pulumi.export("schedulerNodePool", scheduler_pool.name)
    pulumi.export("kubeconfig", gke.kubeconfig)
if dask.tls is not None:
    # Clients need the CA and a client certificate: `gpudask.connect` reads these three.
    pulumi.export("tlsCaCertPem", dask.tls.ca_cert_pem)
    pulumi.export("tlsClientCertPem", dask.tls.client_cert_pem)
    pulumi.export("tlsClientKeyPem", dask.tls.client_key_pem)
if dask.internal_load_balancer_ip is not None:
    pulumi.export("internalLoadBalancerIp", dask.internal_load_balancer_ip)
