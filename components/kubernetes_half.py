"""What a stack deploys onto Kubernetes, whoever made the cluster: Google's driver DaemonSet (when
the driver mode needs it), the Dask operator, the RAPIDS DaskCluster and the image prepuller.

`__main__.py` calls `declare` with the provider of the GKE cluster it creates, or of an existing
cluster; `gpudask.local.engine` calls it with the provider of a local control plane, so the real Pulumi
engine and the Kubernetes provider judge exactly these objects. Top-level resources, declared in
the order and with the names they always had (their URNs do not depend on who calls).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.dask_cluster import GpuDaskCluster, GpuDaskClusterArgs, TlsIssuer
from components.dask_spec import worker_group_summary
from components.driver import NvidiaDriverInstaller
from components.metrics import DaskMetrics, DaskMetricsArgs
from components.operator import DaskOperator, DaskOperatorArgs
from components.prepuller import ImagePrepuller, ImagePrepullerArgs
from components.prepuller_spec import worker_images
from components.settings import TOP_KEYS, StackSettings, parse_settings


def settings_from_config() -> StackSettings:
    """The stack config, read once; raises SettingsError listing every problem before any resource is declared."""
    config = pulumi.Config()
    return parse_settings({key: config.get(key) for key in TOP_KEYS}, project=pulumi.Config("gcp").get("project"))


def declare(
    settings: StackSettings,
    provider: k8s.Provider,
    *,
    tls_issuer: TlsIssuer | None = None,
    internal_address: pulumi.Input[str] | None = None,
) -> GpuDaskCluster:
    """Declare the Kubernetes half on `provider`; `tls_issuer` replaces pulumi-tls (None: pulumi-tls).

    `internal_address`: the reserved internal IP of the scheduler's internal load balancer
    (`dask.schedulerService: InternalLoadBalancer`): the GKE half's `gcp.compute.Address`, or any
    address string where the GCP half is stood in; None -> an ephemeral one."""
    on_cluster = pulumi.ResourceOptions(providers=[provider])
    if settings.uses_driver_daemonset:
        NvidiaDriverInstaller("nvidia-driver", on_cluster)
    # existingCluster.installOperator: false -> the host cluster's operator (and CRDs) serve us.
    operator = (
        DaskOperator(
            "dask-operator",
            DaskOperatorArgs(
                version=settings.operator_version, node_pool=settings.system_pool, chart=settings.operator_chart
            ),
            on_cluster,
        )
        if settings.installs_operator
        else None
    )
    dask = GpuDaskCluster(
        "dask",
        GpuDaskClusterArgs(settings.dask, tls_issuer=tls_issuer, internal_address=internal_address),
        # The operator (and its CRDs) only: GPU nodes arrive on their own when workers are pending.
        pulumi.ResourceOptions(providers=[provider], depends_on=[operator.release] if operator else []),
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
    return dask


def export_outputs(settings: StackSettings, dask: GpuDaskCluster) -> None:
    """The stack outputs clients read (`gpudask connect`), the same for every kind of stack."""
    pulumi.export("schedulerAddress", dask.scheduler_address)
    pulumi.export("dashboardUrl", dask.dashboard_url)
    pulumi.export("daskClusterName", settings.dask.name)
    pulumi.export("daskNamespace", settings.dask.namespace)
    pulumi.export("daskWorkerGroups", worker_group_summary(settings.dask))
    if dask.tls is not None:
        # Clients need the CA and a client certificate: `gpudask.client.connect` reads these three.
        pulumi.export("tlsCaCertPem", dask.tls.ca_cert_pem)
        pulumi.export("tlsClientCertPem", dask.tls.client_cert_pem)
        pulumi.export("tlsClientKeyPem", dask.tls.client_key_pem)
    if dask.internal_load_balancer_ip is not None:
        pulumi.export("internalLoadBalancerIp", dask.internal_load_balancer_ip)
