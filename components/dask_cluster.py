"""The RAPIDS DaskCluster, its extra worker groups and its autoscaler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

import pulumi
import pulumi_kubernetes as k8s

from components import dask_spec, scheduler_endpoint_spec, security_spec
from components.dask_tls import DaskTls, DaskTlsArgs
from components.settings import DaskSettings
from components.type_aliases import with_old_type


class TlsMaterial(Protocol):
    """What the DaskCluster needs of its certificates (DaskTls, or a stand-in where pulumi-tls cannot run)."""

    ca_cert_pem: pulumi.Output[str]
    certificates_digest: pulumi.Output[str]
    client_cert_pem: pulumi.Output[str]
    client_key_pem: pulumi.Output[str]
    secret: k8s.core.v1.Secret


TlsIssuer = Callable[[str, DaskTlsArgs, pulumi.ResourceOptions], TlsMaterial]


@dataclass(frozen=True)
class GpuDaskClusterArgs:
    dask: DaskSettings
    """The whole `dask` config: the DaskCluster body, its worker groups, autoscaler, namespace
    guard rails and TLS are all built from it (components/dask_spec.py, security_spec.py)."""
    internal_address: pulumi.Input[str] | None = None
    """With `dask.schedulerService: InternalLoadBalancer`: the reserved internal IPv4 address of
    the stack's scheduler Service (a `gcp.compute.Address`'s `address` on GKE; any string where
    the GCP half is stood in). None -> GKE picks an ephemeral address from the subnet."""
    tls_issuer: TlsIssuer | None = None
    """Makes the certificates when `dask.tls` is on; None -> DaskTls (pulumi-tls). The real-engine
    tests pass a stand-in: the pulumi-tls provider cannot be built here (GOTCHAS.md)."""


class GpuDaskCluster(pulumi.ComponentResource):
    """A `DaskCluster` whose GPU workers pack onto the same nodes, plus optional groups and autoscaler."""

    TYPE_TOKEN = "gpu-dask:dask_cluster:GpuDaskCluster"
    """Frozen (components/type_aliases.py): part of every URN under this component."""
    OLD_TYPE_TOKEN = "gpu-dask:dask:GpuDaskCluster"

    namespace: k8s.core.v1.Namespace
    service_account: k8s.core.v1.ServiceAccount
    network_policies: dict[str, k8s.networking.v1.NetworkPolicy]
    client_role: k8s.rbac.v1.Role | None
    client_role_binding: k8s.rbac.v1.RoleBinding | None
    worker_disruption_budget: k8s.policy.v1.PodDisruptionBudget
    scheduler_disruption_budget: k8s.policy.v1.PodDisruptionBudget
    tls: TlsMaterial | None
    dask_cluster: k8s.apiextensions.CustomResource
    worker_groups: dict[str, k8s.apiextensions.CustomResource]
    autoscaler: k8s.apiextensions.CustomResource | None
    scheduler_address: pulumi.Output[str]
    dashboard_url: pulumi.Output[str]
    internal_load_balancer_ip: pulumi.Output[str] | None
    scheduler_endpoint: k8s.core.v1.Service | None
    """The stack's internal load balancer for clients (schedulerService InternalLoadBalancer)."""

    def __init__(self, name: str, args: GpuDaskClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE_TOKEN, name, None, with_old_type(self.OLD_TYPE_TOKEN, opts))
        dask = args.dask

        child = pulumi.ResourceOptions(parent=self)
        ns = security_spec.namespace(dask)
        self.namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata=ns["metadata"], opts=child)
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        sa = security_spec.service_account(dask)
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=sa["metadata"],
            automount_service_account_token=sa["automountServiceAccountToken"],
            opts=in_namespace,
        )
        # Policies before pods: nothing runs in the namespace unguarded, not even briefly.
        self.network_policies = {
            key: k8s.networking.v1.NetworkPolicy(
                f"{name}-netpol-{key}", metadata=policy["metadata"], spec=cast(Any, policy["spec"]), opts=in_namespace
            )
            for key, policy in security_spec.network_policies(dask).items()
        }
        # Clients in clientNamespaces read the cluster (KubeCluster.from_name) and scale groups.
        role, binding = security_spec.client_role(dask), security_spec.client_role_binding(dask)
        self.client_role = (
            k8s.rbac.v1.Role(f"{name}-client-role", metadata=role["metadata"], rules=role["rules"], opts=in_namespace)
            if role
            else None
        )
        self.client_role_binding = (
            k8s.rbac.v1.RoleBinding(
                f"{name}-client-role-binding",
                metadata=binding["metadata"],
                role_ref=binding["roleRef"],
                subjects=binding["subjects"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, self.client_role]),
            )
            if binding and self.client_role
            else None
        )
        pdb = security_spec.worker_disruption_budget(dask)
        self.worker_disruption_budget = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-workers-pdb", metadata=pdb["metadata"], spec=cast(Any, pdb["spec"]), opts=in_namespace
        )
        pdb = security_spec.scheduler_disruption_budget(dask)
        self.scheduler_disruption_budget = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-scheduler-pdb", metadata=pdb["metadata"], spec=cast(Any, pdb["spec"]), opts=in_namespace
        )
        issuer: TlsIssuer = args.tls_issuer or DaskTls
        self.tls = (
            issuer(f"{name}-tls", DaskTlsArgs(dask.name, dask.namespace, after=[self.namespace]), child)
            if dask.tls
            else None
        )
        after_namespace: list[pulumi.Resource] = [
            self.namespace,
            self.service_account,
            *self.network_policies.values(),
            *([self.tls.secret] if self.tls else []),
        ]

        body = dask_spec.dask_cluster(dask)
        if self.tls:
            # Dask loads its certificates once, at start: a renewed Secret alone never reaches
            # running pods. The certificates' digest in the scheduler's metadata is under
            # `spec.scheduler`, a replaceOnChanges path, so a renewal replaces the DaskCluster
            # (scheduler and workers restart on the new certificates).
            scheduler_meta = body["spec"]["scheduler"].setdefault("metadata", {})
            scheduler_meta.setdefault("annotations", {})[dask_spec.TLS_DIGEST_ANNOTATION] = self.tls.certificates_digest
        self.dask_cluster = _custom_resource(
            f"{name}-cluster",
            body,
            pulumi.ResourceOptions(
                parent=self,
                depends_on=after_namespace,
                replace_on_changes=dask_spec.CLUSTER_REPLACE_ON_CHANGES,
                # A fixed name: the old cluster must go before the new one is created.
                delete_before_replace=True,
                # With an autoscaler the replica count is its to change, not Pulumi's.
                ignore_changes=["spec.worker.replicas"] if dask.autoscale else None,
            ),
        )

        # The operator adopts groups and autoscalers (ownerReferences to the DaskCluster): when
        # the cluster is replaced or deleted, Kubernetes deletes them too, so Pulumi must
        # recreate them with it and not try to delete them a second time.
        owned = pulumi.ResourceOptions(
            parent=self,
            depends_on=[self.dask_cluster],
            replace_with=[self.dask_cluster],
            deleted_with=self.dask_cluster,
            delete_before_replace=True,
        )
        self.worker_groups = {
            group_name: _custom_resource(
                f"{name}-group-{group_name}",
                dask_spec.dask_worker_group(dask, group),
                pulumi.ResourceOptions.merge(
                    owned, pulumi.ResourceOptions(replace_on_changes=dask_spec.WORKER_GROUP_REPLACE_ON_CHANGES)
                ),
            )
            for group_name, group in dask.worker_groups.items()
        }
        autoscaler_body = dask_spec.dask_autoscaler(dask)
        self.autoscaler = _custom_resource(f"{name}-autoscaler", autoscaler_body, owned) if autoscaler_body else None

        self.scheduler_address = pulumi.Output.from_input(dask.scheduler_address)
        self.dashboard_url = pulumi.Output.from_input(dask.dashboard_url)
        self.internal_load_balancer_ip = None
        outputs: dict[str, Any] = {"schedulerAddress": self.scheduler_address, "dashboardUrl": self.dashboard_url}
        if self.tls:
            outputs |= {"tlsCaCertPem": self.tls.ca_cert_pem, "tlsClientCertPem": self.tls.client_cert_pem}
        self.scheduler_endpoint = None
        if dask.scheduler_service == "InternalLoadBalancer":
            # The stack's own Service on a reserved address (scheduler_endpoint_spec.py): not the
            # operator's, which a DaskCluster replacement deletes and recreates. It depends on the
            # DaskCluster (the provider awaits its endpoints: the scheduler pod Ready) but takes
            # nothing from it, so replacing the cluster leaves this Service and its IP alone.
            body = scheduler_endpoint_spec.internal_endpoint(dask, args.internal_address)
            self.scheduler_endpoint = k8s.core.v1.Service(
                f"{name}-scheduler-ilb",
                metadata=body["metadata"],
                spec=cast(Any, body["spec"]),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[self.dask_cluster],
                    # The provider waits for a Ready scheduler pod and the load balancer's IP; a
                    # cold scheduler node (scale-up, driver, RAPIDS image) takes longer than its
                    # 10 min default.
                    custom_timeouts=pulumi.CustomTimeouts(create="30m", update="30m"),
                ),
            )
            self.internal_load_balancer_ip = (
                pulumi.Output.from_input(args.internal_address)
                if args.internal_address is not None
                else self.scheduler_endpoint.status.apply(_first_ingress_ip)
            )
            outputs["internalLoadBalancerIp"] = self.internal_load_balancer_ip
        self.register_outputs(outputs)


def _first_ingress_ip(status: Any) -> str:
    ingress = (status.load_balancer.ingress if status and status.load_balancer else None) or []
    return (ingress[0].ip or "") if ingress else ""


def _custom_resource(name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    extra = {key: value for key, value in body.items() if key not in ("apiVersion", "kind", "metadata")}
    return k8s.apiextensions.CustomResource(
        name,
        api_version=body["apiVersion"],
        kind=body["kind"],
        metadata=body["metadata"],
        opts=opts,
        **extra,
    )
