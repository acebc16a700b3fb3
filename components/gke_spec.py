"""Pure builders for GKE node pool arguments, typed with pulumi-gcp's own TypedDicts.

They return plain dicts (no resources are declared), so they are tested without the
Pulumi runtime, and pyright checks every key against the provider SDK.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
from pulumi_gcp.container import (
    ClusterControlPlaneEndpointsConfigArgsDict,
    ClusterControlPlaneEndpointsConfigDnsEndpointConfigArgsDict,
    ClusterMasterAuthorizedNetworksConfigArgsDict,
    ClusterMonitoringConfigArgsDict,
    ClusterNodeConfigArgsDict,
    ClusterPrivateClusterConfigArgsDict,
    NodePoolAutoscalingArgsDict,
    NodePoolManagementArgsDict,
    NodePoolNodeConfigArgsDict,
    NodePoolNodeConfigTaintArgsDict,
    NodePoolUpgradeSettingsArgsDict,
)

from components.catalog import GPU_RESOURCE, GPU_TAINT_EFFECT_GKE, GPU_TAINT_VALUE
from components.settings import CONTROL_PLANE_ACCESS, GpuPoolSettings

GPU_TAINT: NodePoolNodeConfigTaintArgsDict = {
    "key": GPU_RESOURCE,
    "value": GPU_TAINT_VALUE,
    "effect": GPU_TAINT_EFFECT_GKE,
}
# Only the Dask scheduler tolerates this: workers never take the scheduler's small GPU.
SCHEDULER_TAINT: NodePoolNodeConfigTaintArgsDict = {
    "key": "gpu-dask/scheduler",
    "value": "true",
    "effect": "NO_SCHEDULE",
}
OAUTH_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]  # access is governed by IAM roles
IMAGE_TYPE = "COS_CONTAINERD"
IMAGE_CACHE_MODE = "CONTAINER_IMAGE_CACHE"  # GKE SecondaryBootDisk.Mode

# The autoscaler and GKE change node counts; Pulumi must not report (or revert) that drift.
NODE_COUNT_IGNORE_CHANGES = ["nodeCount", "initialNodeCount"]


def _common_node_config(service_account: pulumi.Input[str], labels: Mapping[str, str]) -> NodePoolNodeConfigArgsDict:
    return {
        "image_type": IMAGE_TYPE,
        "service_account": service_account,
        "oauth_scopes": list(OAUTH_SCOPES),
        "workload_metadata_config": {"mode": "GKE_METADATA"},
        "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
        "metadata": {"disable-legacy-endpoints": "true"},
        "resource_labels": {"app": "gpu-dask", **labels},
    }


def gpu_node_config(
    pool: GpuPoolSettings,
    service_account: pulumi.Input[str],
    *,
    driver_version: str,
    image_streaming: bool,
    labels: Mapping[str, str],
) -> NodePoolNodeConfigArgsDict:
    """`driver_version` is gpuDriverInstallationConfig.gpuDriverVersion (StackSettings.gke_driver_version);
    `labels` are GCP resource labels added to `app: gpu-dask`."""
    config = _common_node_config(service_account, labels)
    config.update(
        {
            "machine_type": pool.machine_type,
            "spot": pool.spot,
            "disk_size_gb": pool.disk_size_gb,
            "disk_type": "pd-ssd",  # the RAPIDS image is ~14 GB: disk throughput bounds its pull
            "guest_accelerators": [
                {
                    "type": pool.accelerator_type,
                    "count": pool.gpus_per_node,
                    # With the DaemonSet this MUST be INSTALLATION_DISABLED: left unset on GKE >= 1.30
                    # GKE installs its own driver and the DaemonSet never schedules.
                    "gpu_driver_installation_config": {"gpu_driver_version": driver_version},
                }
            ],
            "taints": [GPU_TAINT.copy(), *([SCHEDULER_TAINT.copy()] if pool.scheduler_only else [])],
            # Image streaming: workers start before the whole image is pulled.
            "gcfs_config": {"enabled": image_streaming},
            "labels": {"gpu-dask/pool": pool.name},
        }
    )
    if pool.secondary_boot_disk_image:
        # The RAPIDS image preloaded on a disk GKE attaches to every new node (read through
        # image streaming's containerd plugin, hence gcfs_config above must be on).
        config["secondary_boot_disks"] = [
            {"disk_image": pool.secondary_boot_disk_image, "mode": IMAGE_CACHE_MODE},
        ]
    return config


def system_node_config(
    machine_type: str, service_account: pulumi.Input[str], labels: Mapping[str, str]
) -> NodePoolNodeConfigArgsDict:
    config = _common_node_config(service_account, labels)
    config.update(
        {
            "machine_type": machine_type,
            "spot": False,  # the operator and the scheduler must survive spot reclaims
            "disk_size_gb": 100,
            "disk_type": "pd-balanced",
            "labels": {"gpu-dask/pool": "system"},
        }
    )
    return config


def default_pool_node_config(service_account: pulumi.Input[str]) -> ClusterNodeConfigArgsDict:
    """The node config of the default pool GKE creates with the cluster and the stack removes
    at once (`removeDefaultNodePool`). Without it that pool runs, for a minute, as the Compute
    Engine default service account, and cluster creation fails where that account is disabled.

    The cluster ignores later changes to it (`CLUSTER_IGNORE_CHANGES`): after the pool is
    removed GKE reports another pool's config here, and its ForceNew fields would otherwise
    replace the cluster on every `up` (https://github.com/pulumi/pulumi-gcp/issues/744; GOTCHAS.md).
    """
    return {
        "service_account": service_account,
        "oauth_scopes": list(OAUTH_SCOPES),
        "image_type": IMAGE_TYPE,
        "workload_metadata_config": {"mode": "GKE_METADATA"},
        "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
        "metadata": {"disable-legacy-endpoints": "true"},
    }


# What the cluster must never diff on: the default pool's config only matters at creation.
CLUSTER_IGNORE_CHANGES = ["nodeConfig"]


def autoscaling(min_nodes: int, max_nodes: int) -> NodePoolAutoscalingArgsDict:
    # total_* counts the whole pool in zonal and regional clusters alike.
    return {"total_min_node_count": min_nodes, "total_max_node_count": max_nodes, "location_policy": "ANY"}


def management() -> NodePoolManagementArgsDict:
    return {"auto_repair": True, "auto_upgrade": True}


def gpu_upgrade_settings() -> NodePoolUpgradeSettingsArgsDict:
    # Surge upgrades would need an extra A100 node's quota; replace one node at a time instead.
    return {"strategy": "SURGE", "max_surge": 0, "max_unavailable": 1}


def monitoring_config(managed_prometheus: bool, dcgm: bool) -> ClusterMonitoringConfigArgsDict:
    """The cluster's monitoringConfig: system metrics always; Managed Service for Prometheus's
    managed collection (the collectors in gmp-system that read PodMonitorings); GKE's managed DCGM
    exporter for GPU metrics when `dcgm` (it needs managed collection). An in-place update in the
    provider (tests/data/tpg-container-schema.json: monitoring_config `update`)."""
    components = ["SYSTEM_COMPONENTS", *(["DCGM"] if dcgm and managed_prometheus else [])]
    return {"enable_components": components, "managed_prometheus": {"enabled": managed_prometheus}}


# How clients reach the control plane (`controlPlaneAccess`).
DNS_ONLY, DNS_AND_IP = CONTROL_PLANE_ACCESS


def control_plane_access(
    access: str, master_cidr: str, authorized_networks: tuple[str, ...]
) -> tuple[
    ClusterPrivateClusterConfigArgsDict,
    ClusterControlPlaneEndpointsConfigArgsDict,
    ClusterMasterAuthorizedNetworksConfigArgsDict | None,
]:
    """privateClusterConfig, controlPlaneEndpointsConfig and masterAuthorizedNetworksConfig.

    `dns-only` (new stacks): the DNS-based endpoint only, authorised by IAM; the IP endpoints
    are off (ipEndpointsConfig.enabled false), so no authorized networks. No masterIpv4CidrBlock:
    GKE creates a Private Service Connect-based cluster (a /28 makes a VPC-peering one). On a
    cluster already up the omitted block keeps its value (Optional + Computed in the provider).
    `dns-and-ip` (the stacks created before): the legacy VPC-peering private cluster with the
    public IP endpoint behind authorizedNetworks next to the DNS endpoint.
    """
    dns: ClusterControlPlaneEndpointsConfigDnsEndpointConfigArgsDict = {"allow_external_traffic": True}
    if access == DNS_ONLY:
        return (
            {"enable_private_nodes": True},
            {"dns_endpoint_config": dns, "ip_endpoints_config": {"enabled": False}},
            None,
        )
    return (
        {"enable_private_nodes": True, "enable_private_endpoint": False, "master_ipv4_cidr_block": master_cidr},
        {"dns_endpoint_config": dns},
        {
            "cidr_blocks": [{"cidr_block": cidr, "display_name": f"authorized-{cidr}"} for cidr in authorized_networks],
        },
    )
