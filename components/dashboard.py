"""The Cloud Monitoring dashboard and alert policies of the Dask cluster (components/dashboard_spec.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_gcp as gcp

from components import dashboard_spec
from components.settings import DaskSettings, MonitoringSettings


@dataclass(frozen=True)
class DaskDashboardArgs:
    project: str
    cluster_name: str
    dask: DaskSettings
    monitoring: MonitoringSettings
    """Thresholds and notification channels (`monitoring.notificationChannels` omitted -> none)."""
    node_hourly: Mapping[str, float] = field(default_factory=dict)
    """GKE pool name -> one node's $/h (components/prices.pool_node_hourly): the per-pool cost tile.
    Omitted -> no per-pool tiles."""


class DaskDashboard(pulumi.ComponentResource):
    """One dashboard (PromQL tiles) and one alert policy per condition, on Managed Prometheus data."""

    TYPE_TOKEN = "gpu-dask:dashboard:DaskDashboard"
    """Frozen (components/type_aliases.py): part of every URN under this component."""
    OLD_TYPE_TOKEN = None
    """New on 2026-12-03: no deployed stack had it under another type."""

    dashboard: gcp.monitoring.Dashboard
    alert_policies: dict[str, gcp.monitoring.AlertPolicy]
    url: pulumi.Output[str]

    def __init__(self, name: str, args: DaskDashboardArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.dashboard = gcp.monitoring.Dashboard(
            f"{name}-dashboard",
            project=args.project,
            dashboard_json=dashboard_spec.dashboard_json(args.dask, args.cluster_name, args.node_hourly),
            opts=child,
        )
        self.alert_policies = {
            alert.key: gcp.monitoring.AlertPolicy(
                f"{name}-alert-{alert.key}",
                project=args.project,
                opts=child,
                **cast(Any, dashboard_spec.alert_policy(alert, args.dask, args.monitoring.notification_channels)),
            )
            for alert in dashboard_spec.alerts(args.dask, args.monitoring.alerts)
        }
        self.url = self.dashboard.id.apply(lambda id_: dashboard_spec.dashboard_url(args.project, id_))
        self.register_outputs({"url": self.url})
