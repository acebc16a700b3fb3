"""The Dask Kubernetes operator, installed from its pinned Helm chart."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import operator_plugin_spec
from components.operator_spec import CHART, NAMESPACE, REPOSITORY, operator_values
from components.type_aliases import with_old_type


@dataclass(frozen=True)
class DaskOperatorArgs:
    version: str
    """The dask-kubernetes-operator chart version, which is also the operator image tag."""
    node_pool: str
    """The GKE node pool (`cloud.google.com/gke-nodepool`) the operator runs on: an on-demand CPU pool."""
    chart: str = ""
    """A chart folder or .tgz of that version (air-gapped, offline tests); empty -> the published repository."""


class DaskOperator(pulumi.ComponentResource):
    """Namespace `dask-operator` and the `dask-kubernetes-operator` release (its CRDs come with it)."""

    TYPE_TOKEN = "gpu-dask:operator:DaskOperator"
    """Frozen (components/type_aliases.py): part of every URN under this component."""
    OLD_TYPE_TOKEN = "gpu-dask:dask:Operator"

    namespace: k8s.core.v1.Namespace
    plugin: k8s.core.v1.ConfigMap
    """The stack's operator plugin (components/operator_plugin.py), mounted into the operator."""
    release: k8s.helm.v3.Release
    version: pulumi.Output[str]

    def __init__(self, name: str, args: DaskOperatorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE_TOKEN, name, None, with_old_type(self.OLD_TYPE_TOKEN, opts))
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "gpu-dask"}},
            opts=pulumi.ResourceOptions(parent=self),
        )
        plugin = operator_plugin_spec.config_map(NAMESPACE)
        self.plugin = k8s.core.v1.ConfigMap(
            f"{name}-plugin",
            metadata=plugin["metadata"],
            data=plugin["data"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=CHART,
            chart=args.chart or CHART,
            version=args.version,  # pinned: chart version = operator image tag
            repository_opts=None if args.chart else {"repo": REPOSITORY},
            namespace=self.namespace.metadata.name,
            values=operator_values(args.node_pool),
            # Helm installs the CRDs in crds/ once and never upgrades them (GOTCHAS.md).
            skip_crds=False,
            atomic=True,
            cleanup_on_fail=True,
            timeout=600,
            # The operator pod mounts the plugin's ConfigMap: it must exist first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.plugin]),
        )
        self.version = self.release.version.apply(lambda v: v or args.version)
        self.register_outputs({"version": self.version})
