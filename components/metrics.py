"""Metrics collection for the Dask cluster: PodMonitorings (or PodMonitors) and the
NetworkPolicies that let the collector reach /metrics (components/monitoring_spec.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components import monitoring_spec
from components.settings import DaskSettings, MonitoringSettings


@dataclass(frozen=True)
class DaskMetricsArgs:
    dask: DaskSettings
    monitoring: MonitoringSettings
    """`monitoring.collection` none -> the component declares nothing."""


class DaskMetrics(pulumi.ComponentResource):
    """What scrapes the scheduler and every worker group, and the policies that admit the scraper."""

    TYPE_TOKEN = "gpu-dask:metrics:DaskMetrics"
    """Frozen (components/type_aliases.py): part of every URN under this component."""
    OLD_TYPE_TOKEN = None
    """New on 2026-12-03: no deployed stack had it under another type."""

    monitors: dict[str, k8s.apiextensions.CustomResource]
    network_policies: dict[str, k8s.networking.v1.NetworkPolicy]

    def __init__(self, name: str, args: DaskMetricsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.network_policies = {
            key: k8s.networking.v1.NetworkPolicy(
                f"{name}-netpol-{key}", metadata=policy["metadata"], spec=cast(Any, policy["spec"]), opts=child
            )
            for key, policy in monitoring_spec.network_policies(args.dask, args.monitoring).items()
        }
        self.monitors = {
            job: k8s.apiextensions.CustomResource(
                f"{name}-{job}",
                api_version=body["apiVersion"],
                kind=body["kind"],
                metadata=body["metadata"],
                spec=body["spec"],
                opts=child,
            )
            for job, body in monitoring_spec.monitor_objects(args.dask, args.monitoring).items()
        }
        self.register_outputs({"jobs": sorted(self.monitors)})
