"""The stack's own client endpoint for the Dask scheduler: a pure builder, settings in, a dict out.

With `dask.schedulerService: InternalLoadBalancer`, clients outside the cluster reach the
scheduler through a Service this stack creates and owns, not through the operator's:

- the operator's `<name>-scheduler` Service stays ClusterIP (workers and in-cluster clients);
  the operator deletes and recreates it with every DaskCluster replacement (image bump, TLS
  renewal), so an address it carried would change each time;
- this Service selects the same scheduler pod (the operator's own selector), is an internal
  passthrough load balancer, and takes its IP from a reserved internal address
  (`gcp.compute.Address`, purpose GCE_ENDPOINT, in the nodes' subnet), so the address survives
  every DaskCluster replacement and is known before the first `pulumi up` finishes;
- it carries no `dask.org/component` label: the operator watches Services labelled
  `dask.org/component: scheduler` (`handle_scheduler_service_status`) and would write its
  load-balancer state into the DaskCluster's phase.
"""

from __future__ import annotations

from typing import Any

from dask_kubernetes.operator import make_cluster_spec

from components.catalog import MANAGED_BY_LABELS
from components.settings import DaskSettings

INTERNAL_LB_ANNOTATION = "networking.gke.io/load-balancer-type"
OPERATOR_LABEL_PREFIX = "dask.org/"


def endpoint_name(dask: DaskSettings) -> str:
    """The Kubernetes name of the stack's scheduler Service (the operator's is `<name>-scheduler`)."""
    return f"{dask.name}-scheduler-ilb"


def scheduler_selector(dask: DaskSettings) -> dict[str, str]:
    """The operator's own selector for the scheduler pod (what its `<name>-scheduler` Service uses)."""
    base = make_cluster_spec(name=dask.name, image=dask.image)
    return dict(base["spec"]["scheduler"]["service"]["selector"])


def scheduler_ports(dask: DaskSettings) -> list[dict[str, Any]]:
    """The operator's scheduler ports (comm 8786, dashboard 8787), by their container port names."""
    base = make_cluster_spec(name=dask.name, image=dask.image)
    return [dict(port) for port in base["spec"]["scheduler"]["service"]["ports"]]


def internal_endpoint(dask: DaskSettings, address: Any) -> dict[str, Any]:
    """The internal LoadBalancer Service, as `kubectl apply -f` would take it.

    `address` is the reserved internal IPv4 address (a string, or a Pulumi Output of one);
    None leaves the choice to GKE (an ephemeral address from the subnet)."""
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "selector": scheduler_selector(dask),
        "ports": scheduler_ports(dask),
        # GKE turns these into the load balancer's firewall rule.
        "loadBalancerSourceRanges": list(dask.client_cidrs),
        # `Cluster` (the default) SNATs clients to node IPs, which the ipBlock NetworkPolicy
        # rules for clientCidrs then drop; `Local` keeps the client's source address.
        "externalTrafficPolicy": "Local",
    }
    if address is not None:
        spec["loadBalancerIP"] = address
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": endpoint_name(dask),
            "namespace": dask.namespace,
            "labels": {**MANAGED_BY_LABELS, "app.kubernetes.io/component": "dask-scheduler-endpoint"},
            "annotations": {INTERNAL_LB_ANNOTATION: "Internal"},
        },
        "spec": spec,
    }
