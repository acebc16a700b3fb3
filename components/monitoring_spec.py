"""Pure builders for metrics collection: what scrapes the Dask scheduler and workers.

Dask serves Prometheus metrics at `/metrics` on its HTTP server (distributed.http.scheduler.prometheus
and distributed.http.worker.prometheus, both in distributed's default routes; they need the
`prometheus_client` package in the image, else the route answers a "not available" comment):
the scheduler on its dashboard port (8787), every worker on `--dashboard-address` (8788).

- `gmp`: Google Cloud Managed Service for Prometheus. One `PodMonitoring`
  (monitoring.googleapis.com/v1) for the scheduler and one per worker group; GKE's managed
  collectors (DaemonSet `collector`, namespace `gmp-system`) scrape what they select.
- `prometheus-operator`: the same selection as `PodMonitor`s (monitoring.coreos.com/v1), for
  an existing cluster that runs its own Prometheus.
- `none`: nothing is scraped.

The Dask namespace denies ingress by default: components.security_spec.collector_network_policies
admits exactly the collector to exactly these ports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.catalog import MANAGED_BY_LABELS
from components.dask_spec import WORKER_HTTP_PORT, worker_group_name, worker_selector
from components.security_spec import DASHBOARD_PORT, collector_network_policies, collector_peer
from components.settings import DaskSettings, MonitoringSettings

METRICS_PATH = "/metrics"
SCHEDULER_METRICS_PORT = DASHBOARD_PORT
WORKER_METRICS_PORT = WORKER_HTTP_PORT
# GMP's default is 1m; 30s resolves a worker that comes and goes within the autoscaler's minute.
SCRAPE_INTERVAL_S = 30
SCRAPE_INTERVAL = f"{SCRAPE_INTERVAL_S}s"
GMP_API_VERSION = "monitoring.googleapis.com/v1"
PROMETHEUS_OPERATOR_API_VERSION = "monitoring.coreos.com/v1"
# Pod metadata GMP puts on every sample (`instance` is always `<pod>:<port>`); `node` lets the
# dashboard count the nodes a group's workers occupy.
TARGET_METADATA = ["pod", "container", "node"]
# Series one target exposes, for the plan's sample estimate: distributed 2026.7.1's scheduler serves
# ~80 fixed series plus ~10 per task prefix (tests/test_dashboard_queries.py measures them and
# holds these as upper bounds for its workload); a worker ~50 (Dask, process, Python GC).
SCHEDULER_SERIES_ESTIMATE = 200
WORKER_SERIES_ESTIMATE = 60


@dataclass(frozen=True)
class ScrapeTarget:
    """One set of pods and the port their `/metrics` is served on."""

    job: str
    """The Prometheus `job` label (GMP: the PodMonitoring's name): what queries select on."""
    selector: dict[str, str]
    port: int
    group: str | None
    """The worker group's key (`default` for the DaskCluster's own group); None for the scheduler."""


def scheduler_job(dask: DaskSettings) -> str:
    return f"{dask.name}-scheduler"


def worker_job(group_name: str) -> str:
    """The job of one worker group, named after the group (`rapids-default` -> `rapids-default-workers`)."""
    return f"{group_name}-workers"


def scrape_targets(dask: DaskSettings) -> list[ScrapeTarget]:
    """The scheduler and every worker group, with the labels the operator puts on their pods."""
    targets = [
        ScrapeTarget(
            scheduler_job(dask),
            {"dask.org/cluster-name": dask.name, "dask.org/component": "scheduler"},
            SCHEDULER_METRICS_PORT,
            None,
        ),
        ScrapeTarget(
            worker_job(dask.default_group_name),
            worker_selector(dask.name, dask.default_group_name),
            WORKER_METRICS_PORT,
            "default",
        ),
    ]
    for key, group in dask.worker_groups.items():
        name = worker_group_name(dask, group)
        targets.append(ScrapeTarget(worker_job(name), worker_selector(dask.name, name), WORKER_METRICS_PORT, key))
    return targets


def pod_monitoring(dask: DaskSettings, target: ScrapeTarget) -> dict[str, Any]:
    """A GMP PodMonitoring for one target (validated against the upstream CRD by the plan)."""
    return {
        "apiVersion": GMP_API_VERSION,
        "kind": "PodMonitoring",
        "metadata": {"name": target.job, "namespace": dask.namespace, "labels": dict(MANAGED_BY_LABELS)},
        "spec": {
            "selector": {"matchLabels": dict(target.selector)},
            "endpoints": [{"port": target.port, "path": METRICS_PATH, "interval": SCRAPE_INTERVAL}],
            "targetLabels": {"metadata": list(TARGET_METADATA)},
        },
    }


def pod_monitor(dask: DaskSettings, target: ScrapeTarget) -> dict[str, Any]:
    """The same selection as a Prometheus-operator PodMonitor. Its endpoints name a port:
    the operator's pods name both HTTP ports `http-dashboard` (make_cluster_spec). Its job
    label is `<namespace>/<name>`, not `<name>` as with GMP: the dashboard and alerts, declared
    only for stacks that create GKE, assume GMP."""
    return {
        "apiVersion": PROMETHEUS_OPERATOR_API_VERSION,
        "kind": "PodMonitor",
        "metadata": {"name": target.job, "namespace": dask.namespace, "labels": dict(MANAGED_BY_LABELS)},
        "spec": {
            "selector": {"matchLabels": dict(target.selector)},
            "podMetricsEndpoints": [{"port": "http-dashboard", "path": METRICS_PATH, "interval": SCRAPE_INTERVAL}],
        },
    }


def monitor_objects(dask: DaskSettings, monitoring: MonitoringSettings) -> dict[str, dict[str, Any]]:
    """The scrape objects of `monitoring.collection`, keyed by job (stable: Pulumi child names follow)."""
    if monitoring.collection == "none":
        return {}
    build = pod_monitoring if monitoring.collection == "gmp" else pod_monitor
    return {t.job: build(dask, t) for t in scrape_targets(dask)}


def network_policies(dask: DaskSettings, monitoring: MonitoringSettings) -> dict[str, dict[str, Any]]:
    """NetworkPolicies that admit exactly the collector to exactly the /metrics ports."""
    peer = collector_peer(monitoring.collection, monitoring.prometheus_namespace)
    return collector_network_policies(dask, peer, SCHEDULER_METRICS_PORT, WORKER_METRICS_PORT)


def samples_per_hour(workers: int) -> int:
    """Samples ingested per hour by the scheduler and `workers` workers at SCRAPE_INTERVAL (estimate)."""
    series = SCHEDULER_SERIES_ESTIMATE + workers * WORKER_SERIES_ESTIMATE
    return series * 3600 // SCRAPE_INTERVAL_S
