"""The dashboard and alert policies as declared (under mocks); their queries against real
Prometheus are tests/test_dashboard_queries.py's."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from components import dashboard_spec, prices
from gpudask.plan import checks
from gpudask.record.recorder import Recording

from .conftest import GKE_STACKS, settings_for

Run = Callable[..., Recording]
DCGM_COUNTERS = Path(__file__).parent / "data" / "dcgm" / "default-counters.csv"
CHANNEL = "projects/gpu-dask-dev/notificationChannels/1234567890"


def dcgm_exporter_metrics() -> set[str]:
    lines = [line for line in DCGM_COUNTERS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {line.split(",")[0].strip() for line in lines}


def _metric_names(promql: str) -> set[str]:
    """Series names a PromQL expression selects (names followed by `{`)."""
    return set(re.findall(r"\b([A-Za-z_:][A-Za-z0-9_:]*)\{", promql))


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_gke_stacks_declare_managed_prometheus_the_dashboard_and_every_alert(recorded: Run, stack: str) -> None:
    rec, s = recorded(stack), settings_for(stack)
    cluster = rec.one("gcp:container/cluster:Cluster")
    config = cluster.inputs["monitoringConfig"]
    assert config["managedPrometheus"] == {"enabled": True}
    # DCGM where GKE installs the driver; the DaemonSet mode (prod) gets none, and a plan warning.
    assert ("DCGM" in config["enableComponents"]) == (s.driver != "daemonset")
    warnings = [f for f in checks.monitoring_findings(rec) if f.severity == checks.WARNING]
    assert bool(warnings) == (s.driver == "daemonset")
    board = json.loads(rec.one("gcp:monitoring/dashboard:Dashboard").inputs["dashboardJson"])
    plotted = [
        t["widget"]["xyChart"]["dataSets"][0]["timeSeriesQuery"]["prometheusQuery"]
        for t in board["mosaicLayout"]["tiles"]
    ]
    assert plotted == [
        q.promql for q in dashboard_spec.dashboard_queries(s.dask, s.cluster_name, prices.pool_node_hourly(s))
    ]
    policies = {r.name: r.inputs for r in rec.of_type("gcp:monitoring/alertPolicy:AlertPolicy")}
    expected = dashboard_spec.alerts(s.dask, s.monitoring.alerts)
    assert sorted(policies) == sorted(f"monitoring-alert-{a.key}" for a in expected)
    for alert in expected:
        inputs = policies[f"monitoring-alert-{alert.key}"]
        [condition] = inputs["conditions"]
        assert condition["conditionPrometheusQueryLanguage"]["query"] == alert.promql
        assert inputs.get("notificationChannels", []) == []  # none by default
    assert rec.outputs["monitoringDashboardUrl"].startswith("https://console.cloud.google.com/monitoring/dashboards/")


def test_thresholds_and_channels_come_from_config(recorded: Run) -> None:
    rec = recorded(
        "dev",
        overrides={
            "gpu-dask:monitoring": {
                "notificationChannels": [CHANNEL],
                "alerts": {"noGpuWorkerMinutes": 7, "schedulerTickSeconds": 2.5, "restarts": 9},
            }
        },
    )
    policies = {r.name: r.inputs for r in rec.of_type("gcp:monitoring/alertPolicy:AlertPolicy")}
    assert all(p["notificationChannels"] == [CHANNEL] for p in policies.values())
    condition = policies["monitoring-alert-no-gpu-worker"]["conditions"][0]["conditionPrometheusQueryLanguage"]
    assert condition["duration"] == "420s"
    unhealthy = policies["monitoring-alert-scheduler-unhealthy"]["conditions"][0]["conditionPrometheusQueryLanguage"]
    assert unhealthy["query"].endswith("> 2.5")
    restarts = policies["monitoring-alert-worker-restart-loop"]["conditions"][0]["conditionPrometheusQueryLanguage"]
    assert restarts["query"].endswith("> 9")


def test_dashboard_off_declares_no_monitoring_resources(recorded: Run) -> None:
    rec = recorded("dev", overrides={"gpu-dask:monitoring": {"dashboard": False}})
    assert rec.of_type("gcp:monitoring/dashboard:Dashboard") == []
    assert rec.of_type("gcp:monitoring/alertPolicy:AlertPolicy") == []
    assert "monitoringDashboardUrl" not in rec.outputs


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_gpu_queries_name_only_metrics_the_dcgm_exporter_exports(stack: str) -> None:
    """GPU metrics cannot be produced here: their names are checked against the exporter's list."""
    s = settings_for(stack)
    known = dcgm_exporter_metrics()
    assert "DCGM_FI_DEV_GPU_UTIL" in known and len(known) > 20
    gpu = [q.promql for q in dashboard_spec.dashboard_queries(s.dask) if q.source == "dcgm"]
    gpu += [a.promql for a in dashboard_spec.alerts(s.dask, s.monitoring.alerts) if a.source == "dcgm"]
    assert gpu
    for promql in gpu:
        names = _metric_names(promql)
        assert names and names <= known, (promql, names - known)
    # And the Dask queries use no DCGM series (they must answer on a machine without a GPU).
    dask_only = [q.promql for q in dashboard_spec.dashboard_queries(s.dask) if q.source == "dask"]
    assert not any(n.startswith("DCGM_") for p in dask_only for n in _metric_names(p))


def test_the_dcgm_list_says_where_it_comes_from() -> None:
    header = DCGM_COUNTERS.read_text().split("\n# Format", 1)[0]
    assert "NVIDIA/dcgm-exporter" in header and "retrieved 2026-12-03" in header


def test_the_plan_prices_managed_prometheus_samples_for_dev_and_prod(recorded: Run) -> None:
    from gpudask.plan import report

    prod = report.metrics_cost(recorded("prod"))
    # By hand: prod runs 4 GPU + 2 CPU workers (no autoscaler), each scraped every 30 s.
    series = 200 + 6 * 60
    assert prod["idle"] == prod["max"] == {"workers": 6, "samplesPerHour": series * 120, "hourly": 0.004}
    dev = report.metrics_cost(recorded("dev"))
    # Dev's autoscaled GPU group rests at 0 and scales to 2.
    assert (dev["idle"]["workers"], dev["max"]["workers"]) == (0, 2)
    assert dev["max"]["samplesPerHour"] == (200 + 2 * 60) * 120
    assert report.metrics_cost(recorded("existing")) == {}  # nothing scraped by GMP there
    summary = report.summary_markdown(report.build_plan(recorded("prod")))
    assert "~67,200 samples/h idle (6 workers)" in summary


def test_readme_sample_figures_are_the_plans(recorded: Run) -> None:
    from gpudask.plan import report
    from gpudask.record.recorder import PROJECT_DIR

    readme = (PROJECT_DIR / "README.md").read_text()
    prod, dev = report.metrics_cost(recorded("prod")), report.metrics_cost(recorded("dev"))
    assert f"Prod: ~{prod['idle']['samplesPerHour']:,} samples/h, ${prod['idle']['hourly']:.4f}/h" in readme
    assert f"dev: ~{dev['idle']['samplesPerHour']:,} idle,\n~{dev['max']['samplesPerHour']:,} at full scale" in readme
