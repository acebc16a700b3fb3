"""Pure builders for the Cloud Monitoring dashboard and alert policies: PromQL over what Managed
Prometheus collects (components/monitoring_spec.py: `job` is the PodMonitoring's name,
`instance` is `<pod>:<port>`, `node` the pod's node).

Dask series (distributed's /metrics): dask_scheduler_workers{state}, dask_scheduler_tasks{state},
dask_scheduler_tick_duration_maximum_seconds, dask_scheduler_workers_removed_total,
dask_worker_memory_bytes{type}, dask_worker_threads. GPU series come from GKE's managed DCGM
exporter (DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_FB_USED, ...; names checked against the DCGM
exporter's list in tests/data/dcgm/); they cannot be produced without a GPU.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components.monitoring_spec import scheduler_job, scrape_targets
from components.settings import AlertSettings, DaskSettings


@dataclass(frozen=True)
class Query:
    """One PromQL expression; `source` says where its series come from (dask | dcgm)."""

    key: str
    title: str
    promql: str
    source: str = "dask"


@dataclass(frozen=True)
class Alert:
    key: str
    title: str
    promql: str
    """Fires when it returns any series."""
    duration_s: int
    documentation: str
    source: str = "dask"
    severity: str = "WARNING"


class _Sel:
    def __init__(self, dask: DaskSettings):
        targets = scrape_targets(dask)
        ns = f'namespace="{dask.namespace}"'
        self.scheduler = f'{ns},job="{scheduler_job(dask)}"'
        workers = [t.job for t in targets if t.group is not None]
        self.workers = f'{ns},job=~"{"|".join(workers)}"'
        gpu_groups = {"default"} if dask.worker.gpus_per_worker else set()
        gpu_groups |= {key for key, g in dask.worker_groups.items() if g.gpus_per_worker}
        gpu_jobs = [t.job for t in targets if t.group in gpu_groups]
        self.gpu_workers = f'{ns},job=~"{"|".join(gpu_jobs) or "none"}"'
        self.namespace = ns
        self.dask_pods = f'{ns},job=~"{"|".join([scheduler_job(dask), *workers])}"'
        # The DCGM exporter labels each GPU's series with the pod using it as `pod`/`namespace`
        # (dcgm-exporter internal/pkg/transformation/kubernetes.go); the scrape's own target labels
        # of those names win, so the workload's arrive as exported_pod / exported_namespace.
        self.gpu_namespace = f'exported_namespace="{dask.namespace}"'


# Where a node's pool shows in its name: GKE names a node `gke-<cluster>-<pool>-<8 hex>-<4>` (its
# instance group's instance; the local control plane's kwok nodes `gke-<cluster>-<pool>-<nn>`).
# Managed Prometheus gives each scraped Dask pod its node (`targetLabels.metadata: node`).
POOL_SOURCE = "gke-node-names"


def _pool_terms(dask: DaskSettings, cluster_name: str, node_hourly: Mapping[str, float], cost: bool) -> str:
    s = _Sel(dask)
    terms = []
    for pool in sorted(node_hourly):
        # A pool whose name extends this one's (`a100` and `a100-80`) must not be counted here too.
        longer = [other for other in sorted(node_hourly) if other.startswith(f"{pool}-")]
        matchers = [f'node=~"gke-{cluster_name}-{pool}-.+"', *(f'node!~"gke-{cluster_name}-{o}-.+"' for o in longer)]
        nodes = f"count(count by (node) (up{{{s.dask_pods},{','.join(matchers)}}} == 1))"
        value = f"{nodes} * {node_hourly[pool]:g}" if cost else nodes
        terms.append(f'label_replace({value}, "pool", "{pool}", "", "")')
    return " or ".join(terms)


def pool_queries(dask: DaskSettings, cluster_name: str, node_hourly: Mapping[str, float]) -> list[Query]:
    """Nodes per pool that run a Dask pod (scheduler or worker), and what they cost per hour at the
    plan's per-node prices (`node_hourly`: components/prices.pool_node_hourly). A node that runs no
    Dask pod (a system pool's spare node) is not seen: Dask's pods are all that is scraped."""
    return [
        Query(
            "pool_nodes",
            "Nodes running Dask pods, per pool",
            _pool_terms(dask, cluster_name, node_hourly, cost=False),
            POOL_SOURCE,
        ),
        Query(
            "pool_cost",
            "Their cost per hour, per pool ($/h at the plan's per-node prices)",
            _pool_terms(dask, cluster_name, node_hourly, cost=True),
            POOL_SOURCE,
        ),
    ]


def dashboard_queries(
    dask: DaskSettings, cluster_name: str = "", node_hourly: Mapping[str, float] | None = None
) -> list[Query]:
    """What the dashboard plots, in tile order; the per-pool tiles last, when prices are given."""
    s = _Sel(dask)
    pools = pool_queries(dask, cluster_name, node_hourly) if node_hourly else []
    return [
        Query("workers", "Workers up, per group", f"count by (job) (up{{{s.workers}}} == 1)"),
        Query(
            "gpu_workers",
            "GPU workers up (one GPU each)",
            f"count(up{{{s.gpu_workers}}} == 1) or on() vector(0)",
        ),
        Query(
            "tasks",
            "Tasks processing, queued, waiting for a worker (no-worker)",
            f'sum by (state) (dask_scheduler_tasks{{{s.scheduler},state=~"processing|queued|no-worker"}})',
        ),
        Query(
            "worker_states",
            "Workers by state (saturated, paused, idle)",
            f"sum by (state) (dask_scheduler_workers{{{s.scheduler}}})",
        ),
        Query(
            "memory",
            "Worker memory (managed, unmanaged, spilled to disk), per worker",
            f"sum by (instance, type) (dask_worker_memory_bytes{{{s.workers}}})",
        ),
        Query(
            "spilled",
            "Bytes spilled to disk, per worker",
            f'max by (instance) (dask_worker_memory_bytes{{{s.workers},type="spilled"}})',
        ),
        Query(
            "scheduler_tick",
            "Scheduler event loop: longest tick (s)",
            f"max(dask_scheduler_tick_duration_maximum_seconds{{{s.scheduler}}})",
        ),
        Query(
            "worker_nodes",
            "Nodes hosting workers, per group",
            f"count by (job) (count by (job, node) (up{{{s.workers}}} == 1))",
        ),
        Query(
            "gpu_util",
            "GPU utilisation (%), per pod (DCGM)",
            f"avg by (exported_pod) (DCGM_FI_DEV_GPU_UTIL{{{s.gpu_namespace}}})",
            "dcgm",
        ),
        Query(
            "gpu_memory",
            "GPU memory used (MiB), per pod (DCGM)",
            f"sum by (exported_pod) (DCGM_FI_DEV_FB_USED{{{s.gpu_namespace}}})",
            "dcgm",
        ),
        *pools,
    ]


def alerts(dask: DaskSettings, a: AlertSettings) -> list[Alert]:
    """The alert policies' conditions; each fires when its query returns a series for `duration_s`."""
    s = _Sel(dask)
    return [
        Alert(
            "no-gpu-worker",
            "Dask work waits and no GPU worker is up",
            f'(sum(dask_scheduler_tasks{{{s.scheduler},state=~"queued|no-worker"}}) > 0)'
            f" unless on() (count(up{{{s.gpu_workers}}} == 1) > 0)",
            a.no_gpu_worker_minutes * 60,
            "Tasks are queued or wait for a GPU worker and none is up: A100 stockout in the zone, GPU quota "
            "(`gpudask plan` lists the quotas), or the autoscaler's maximum. `kubectl -n "
            f"{dask.namespace} get pods` shows Pending workers; their events say why.",
            severity="ERROR",
        ),
        Alert(
            "workers-spilling",
            "Dask workers spill to disk",
            f'max by (instance) (dask_worker_memory_bytes{{{s.workers},type="spilled"}}) > {a.spilled_bytes}',
            a.spill_minutes * 60,
            "A worker holds data on its spill volume: memory is too small for the work (raise memoryGb, add "
            "workers, or persist less).",
        ),
        Alert(
            "workers-paused",
            "Dask workers paused (memory above the pause fraction)",
            f'sum(dask_scheduler_workers{{{s.scheduler},state="paused"}}) > 0',
            a.paused_minutes * 60,
            "Paused workers run no tasks until their memory falls.",
        ),
        Alert(
            "scheduler-unhealthy",
            "Dask scheduler down or its event loop blocked",
            f"(max(up{{{s.scheduler}}}) or on() vector(0)) == 0"
            f" or max(dask_scheduler_tick_duration_maximum_seconds{{{s.scheduler}}}) > {a.scheduler_tick_seconds:g}",
            a.scheduler_minutes * 60,
            "The scheduler is not scraped, or a tick took longer than the threshold (a large graph, a blocking "
            "call): clients time out and the liveness probe may restart it, losing every result.",
            severity="CRITICAL",
        ),
        Alert(
            "gpu-idle",
            "GPUs allocated to Dask workers but idle",
            f"avg by (exported_pod) (avg_over_time(DCGM_FI_DEV_GPU_UTIL{{{s.gpu_namespace}}}[{a.gpu_idle_minutes}m]))"
            f" < {a.gpu_idle_percent:g}",
            a.gpu_idle_minutes * 60,
            "A GPU worker has been nearly idle: an A100 hour costs dollars (`gpudask plan`). Scale the group "
            "down or let the autoscaler retire it.",
            source="dcgm",
        ),
        Alert(
            "worker-restart-loop",
            "Dask workers restart in a loop",
            f"increase(dask_scheduler_workers_removed_total{{{s.scheduler}}}[{a.restart_window_minutes}m])"
            f" > {a.restarts}",
            60,
            "Workers keep leaving the scheduler: OOM kills, failing liveness probes, spot reclaims. "
            f"`kubectl -n {dask.namespace} get pods` shows the restarts.",
        ),
    ]


def dashboard_json(dask: DaskSettings, cluster_name: str, node_hourly: Mapping[str, float] | None = None) -> str:
    """The dashboard's `dashboardJson`: one xyChart tile per query, two per row."""
    tiles = []
    for i, q in enumerate(dashboard_queries(dask, cluster_name, node_hourly)):
        tiles.append(
            {
                "xPos": (i % 2) * 24,
                "yPos": (i // 2) * 16,
                "width": 24,
                "height": 16,
                "widget": {
                    "title": q.title,
                    "xyChart": {
                        "dataSets": [{"timeSeriesQuery": {"prometheusQuery": q.promql}, "plotType": "LINE"}],
                    },
                },
            }
        )
    body = {
        "displayName": f"gpu-dask {cluster_name} / {dask.namespace}/{dask.name}",
        "mosaicLayout": {"columns": 48, "tiles": tiles},
    }
    return json.dumps(body, sort_keys=True)


def alert_policy(alert: Alert, dask: DaskSettings, channels: tuple[str, ...]) -> dict[str, Any]:
    """Keyword arguments of one gcp.monitoring.AlertPolicy (PromQL condition)."""
    return {
        "display_name": f"gpu-dask {dask.namespace}/{dask.name}: {alert.title}",
        "combiner": "OR",
        "severity": alert.severity,
        "conditions": [
            {
                "display_name": alert.title,
                "condition_prometheus_query_language": {
                    "query": alert.promql,
                    "duration": f"{alert.duration_s}s",
                    "evaluation_interval": "60s",
                },
            }
        ],
        "documentation": {"content": alert.documentation, "mime_type": "text/markdown"},
        "notification_channels": list(channels),
        "user_labels": {"app": "gpu-dask", "dask-cluster": dask.name},
    }


def dashboard_url(project: str, dashboard_id: str) -> str:
    """The console URL of a dashboard whose resource id is `projects/<number>/dashboards/<id>`."""
    return f"https://console.cloud.google.com/monitoring/dashboards/custom/{dashboard_id.rsplit('/', 1)[-1]}?project={project}"
