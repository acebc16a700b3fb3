"""A dedicated VPC for the cluster: subnet with pod/service ranges, and Cloud NAT so that
private nodes can pull public images (RAPIDS from Docker Hub, the operator from ghcr.io)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.type_aliases import with_old_type

PODS_RANGE = "pods"
SERVICES_RANGE = "services"


@dataclass(frozen=True)
class NetworkArgs:
    project: str
    region: str
    """The subnet's, router's and NAT's region (a zonal cluster's region, or the regional cluster's)."""
    name_prefix: str
    """GCP names are `<prefix>-vpc`, `<prefix>-nodes` (subnet), `<prefix>-router`, `<prefix>-nat`."""
    subnet_cidr: str
    """The nodes' primary range."""
    pods_cidr: str
    """The subnet's secondary range `pods` (VPC-native pod IPs)."""
    services_cidr: str
    """The subnet's secondary range `services` (ClusterIP Services)."""
    scheduler_address: bool = False
    """True -> reserve an internal address in the subnet for the Dask scheduler's internal load
    balancer (`dask.schedulerService: InternalLoadBalancer`)."""


class Network(pulumi.ComponentResource):
    """VPC, subnet (with secondary ranges for VPC-native pods/services), router and NAT."""

    TYPE_TOKEN = "gpu-dask:network:Network"
    """Frozen (components/type_aliases.py): part of every URN under this component."""
    OLD_TYPE_TOKEN = "gpu-dask:gcp:Network"

    vpc: gcp.compute.Network
    subnet: gcp.compute.Subnetwork
    nat: gcp.compute.RouterNat
    pods_range: str
    """The secondary range name a VPC-native cluster takes its pod IPs from."""
    services_range: str
    """The secondary range name a VPC-native cluster takes its Service IPs from."""
    scheduler_address: gcp.compute.Address | None
    """The reserved internal IPv4 address of the scheduler's internal load balancer, or None."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE_TOKEN, name, None, with_old_type(self.OLD_TYPE_TOKEN, opts))
        child = pulumi.ResourceOptions(parent=self)
        self.vpc = gcp.compute.Network(
            f"{name}-vpc",
            name=f"{args.name_prefix}-vpc",
            project=args.project,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            opts=child,
        )
        self.subnet = gcp.compute.Subnetwork(
            f"{name}-subnet",
            name=f"{args.name_prefix}-nodes",
            project=args.project,
            region=args.region,
            network=self.vpc.id,
            ip_cidr_range=args.subnet_cidr,
            # Nodes have no public IPs: reach Google APIs (Artifact Registry, GCS) privately.
            private_ip_google_access=True,
            secondary_ip_ranges=[
                {"range_name": PODS_RANGE, "ip_cidr_range": args.pods_cidr},
                {"range_name": SERVICES_RANGE, "ip_cidr_range": args.services_cidr},
            ],
            # Flow logs for incident response (who talked to the scheduler), sampled: node
            # traffic is mostly Dask shuffles, and full sampling would cost more than it tells.
            log_config={
                "aggregation_interval": "INTERVAL_5_MIN",
                "flow_sampling": 0.1,
                "metadata": "INCLUDE_ALL_METADATA",
            },
            opts=child,
        )
        router = gcp.compute.Router(
            f"{name}-router",
            name=f"{args.name_prefix}-router",
            project=args.project,
            region=args.region,
            network=self.vpc.id,
            opts=child,
        )
        self.nat = gcp.compute.RouterNat(
            f"{name}-nat",
            name=f"{args.name_prefix}-nat",
            project=args.project,
            region=args.region,
            router=router.name,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            log_config={"enable": True, "filter": "ERRORS_ONLY"},
            opts=child,
        )
        self.pods_range, self.services_range = PODS_RANGE, SERVICES_RANGE
        # Reserved by the stack, not by GKE: an address the load balancer takes but does not own
        # outlives the Service, so it stays the same across every DaskCluster replacement and
        # even a recreated Service. GCE_ENDPOINT is the purpose for one internal forwarding
        # rule's address (SHARED_LOADBALANCER_VIP only for several); GKE's internal load balancers
        # use the nodes' subnet unless told otherwise, so the address is taken from it.
        self.scheduler_address = (
            gcp.compute.Address(
                f"{name}-scheduler-address",
                name=f"{args.name_prefix}-dask-scheduler",
                project=args.project,
                region=args.region,
                subnetwork=self.subnet.id,
                address_type="INTERNAL",
                purpose="GCE_ENDPOINT",
                description="Internal load balancer of the Dask scheduler (gpu-dask)",
                opts=child,
            )
            if args.scheduler_address
            else None
        )
        self.register_outputs({"vpc": self.vpc.id, "subnet": self.subnet.id})
