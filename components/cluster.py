"""The GKE cluster: private, shielded, Workload Identity, its own node service account,
and a small on-demand CPU pool for the operator, the Dask scheduler and system pods."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from components import gke_spec
from components.kubeconfig import kubeconfig
from components.settings import SYSTEM_POOL_NAME, is_region
from components.type_aliases import with_old_type

# What GKE nodes need, and nothing more (GKE hardening guide: least-privilege node SA).
NODE_ROLES = {
    "log-writer": "roles/logging.logWriter",
    "metric-writer": "roles/monitoring.metricWriter",
    "monitoring-viewer": "roles/monitoring.viewer",
    "metadata-writer": "roles/stackdriver.resourceMetadata.writer",
    "autoscaling-metrics": "roles/autoscaling.metricsWriter",
    "registry-reader": "roles/artifactregistry.reader",
    # Image streaming (gcfsConfig) on nodes with a custom service account: without it pods on
    # streaming nodes fail to start (https://github.com/terraform-google-modules/terraform-google-kubernetes-engine/issues/2251, fixed by https://github.com/terraform-google-modules/terraform-google-kubernetes-engine/pull/2262).
    "serviceusage-consumer": "roles/serviceusage.serviceUsageConsumer",
}
# Project APIs the stack needs beyond Compute and GKE (enabled by the stack; never disabled
# on destroy, other stacks in the project may use them).
PROJECT_APIS = {
    "containerfilesystem": "containerfilesystem.googleapis.com",  # image streaming
}


@dataclass(frozen=True)
class GkeClusterArgs:
    project: str
    location: str
    """A zone (a zonal cluster) or a region (a regional cluster: control plane and nodes in
    each of its zones)."""
    cluster_name: str
    """The GKE cluster's name; the node service account is `<cluster_name>-nodes`."""
    network_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    pods_range: str
    """Name of the subnet's secondary range for pod IPs (VPC-native)."""
    services_range: str
    """Name of the subnet's secondary range for Service IPs."""
    master_cidr: str
    """The control plane's /28 (private cluster peering range); unused with `dns-only`."""
    authorized_networks: tuple[str, ...]
    """CIDRs that reach the control plane's IP endpoint (`dns-and-ip`); empty -> none does (the DNS
    endpoint, authorised by IAM, stays reachable)."""
    release_channel: str
    system_machine_type: str
    system_min_nodes: int
    system_max_nodes: int
    protect: bool
    """Pulumi `protect` on the cluster and the system pool, and GKE deletion protection."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """GCP resource labels on the cluster and its nodes. Omitted -> only `app: gpu-dask`."""
    managed_prometheus: bool = True
    """Managed Service for Prometheus's managed collection. Omitted -> on."""
    dcgm_metrics: bool = False
    """GKE's managed DCGM GPU metrics (needs managed_prometheus). Omitted -> off."""
    control_plane_access: str = gke_spec.DNS_AND_IP
    """`dns-only`: only the DNS endpoint (IP endpoints off, a PSC-based cluster when created);
    `dns-and-ip`: the VPC-peering private cluster with the IP endpoint behind authorized_networks too."""


class GkeCluster(pulumi.ComponentResource):
    """A private GKE Standard cluster with its default pool removed and a system pool added."""

    TYPE_TOKEN = "gpu-dask:cluster:GkeCluster"
    """Frozen (components/type_aliases.py): part of every URN under this component."""
    OLD_TYPE_TOKEN = "gpu-dask:gke:Cluster"

    cluster: gcp.container.Cluster
    system_pool: gcp.container.NodePool
    node_service_account: gcp.serviceaccount.Account
    node_roles: dict[str, gcp.projects.IAMMember]
    apis: dict[str, gcp.projects.Service]
    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    dns_endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]

    def __init__(self, name: str, args: GkeClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE_TOKEN, name, None, with_old_type(self.OLD_TYPE_TOKEN, opts))
        child = pulumi.ResourceOptions(parent=self)

        self.node_service_account = gcp.serviceaccount.Account(
            f"{name}-nodes",
            account_id=f"{args.cluster_name}-nodes",
            display_name=f"GKE nodes of {args.cluster_name} (gpu-dask)",
            project=args.project,
            # docs/deploy.md creates it first, to grant the deploy identity actAs on this account
            # only (not project-wide); the stack then adopts it instead of failing with 409.
            create_ignore_already_exists=True,
            opts=child,
        )
        member = self.node_service_account.email.apply(lambda email: f"serviceAccount:{email}")
        self.node_roles = {
            role_key: gcp.projects.IAMMember(
                f"{name}-nodes-{role_key}", project=args.project, role=role, member=member, opts=child
            )
            for role_key, role in NODE_ROLES.items()
        }
        self.apis = {
            key: gcp.projects.Service(
                f"{name}-api-{key}", project=args.project, service=api, disable_on_destroy=False, opts=child
            )
            for key, api in PROJECT_APIS.items()
        }

        private_cluster, endpoints, authorized = gke_spec.control_plane_access(
            args.control_plane_access, args.master_cidr, args.authorized_networks
        )
        self.cluster = gcp.container.Cluster(
            f"{name}-cluster",
            name=args.cluster_name,
            project=args.project,
            location=args.location,
            network=args.network_id,
            subnetwork=args.subnet_id,
            # Pools are separate resources. The default pool GKE creates first (and the stack
            # removes) runs as our node service account, never the Compute Engine default one;
            # its config is ignored after creation (see gke_spec.default_pool_node_config).
            remove_default_node_pool=True,
            initial_node_count=1,
            node_config=gke_spec.default_pool_node_config(self.node_service_account.email),
            ip_allocation_policy={
                "cluster_secondary_range_name": args.pods_range,
                "services_secondary_range_name": args.services_range,
            },
            # The DNS-based control-plane endpoint: reachable from anywhere, authorised by IAM
            # (container.clusters.connect) instead of an IP allowlist, so GitHub-hosted runners
            # and laptops reach it without joining authorizedNetworks (docs/deploy.md). With
            # `dns-and-ip` the IP endpoint stays too, behind authorizedNetworks; `dns-only` turns it off.
            private_cluster_config=private_cluster,
            control_plane_endpoints_config=endpoints,
            master_authorized_networks_config=authorized,
            release_channel={"channel": args.release_channel},
            workload_identity_config={"workload_pool": f"{args.project}.svc.id.goog"},
            # Dataplane V2: enforces NetworkPolicy without the Calico add-on.
            datapath_provider="ADVANCED_DATAPATH",
            enable_shielded_nodes=True,
            enable_legacy_abac=False,
            master_auth={"client_certificate_config": {"issue_client_certificate": False}},
            deletion_protection=args.protect,
            resource_labels={"app": "gpu-dask", **args.labels},
            monitoring_config=gke_spec.monitoring_config(args.managed_prometheus, args.dcgm_metrics),
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                ignore_changes=gke_spec.CLUSTER_IGNORE_CHANGES,
                # The default pool's nodes need their roles while they exist.
                depends_on=list(self.node_roles.values()),
            ),
        )

        self.system_pool = gcp.container.NodePool(
            f"{name}-system-pool",
            name=SYSTEM_POOL_NAME,  # scheduler and operator select it by this name
            project=args.project,
            cluster=self.cluster.id,
            location=args.location,
            initial_node_count=args.system_min_nodes if not is_region(args.location) else 1,
            autoscaling=gke_spec.autoscaling(args.system_min_nodes, args.system_max_nodes),
            management=gke_spec.management(),
            node_config=gke_spec.system_node_config(
                args.system_machine_type, self.node_service_account.email, args.labels
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                ignore_changes=gke_spec.NODE_COUNT_IGNORE_CHANGES,
                delete_before_replace=True,  # fixed name: the new pool cannot exist beside the old
                depends_on=[*self.node_roles.values(), *self.apis.values()],
            ),
        )

        self.name = self.cluster.name
        self.endpoint = self.cluster.endpoint
        self.dns_endpoint = self.cluster.control_plane_endpoints_config.apply(_dns_endpoint)
        self.kubeconfig = pulumi.Output.secret(
            self.dns_endpoint.apply(
                lambda host: kubeconfig(f"gke_{args.project}_{args.location}_{args.cluster_name}", host)
            )
        )
        self.register_outputs(
            {
                "name": self.name,
                "endpoint": self.endpoint,
                "dnsEndpoint": self.dns_endpoint,
                "kubeconfig": self.kubeconfig,
            }
        )


def _dns_endpoint(config: gcp.container.outputs.ClusterControlPlaneEndpointsConfig | None) -> str:
    dns = config.dns_endpoint_config if config else None
    return (dns.endpoint if dns else None) or ""
