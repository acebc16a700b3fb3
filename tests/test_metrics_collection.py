"""Metrics collection: PodMonitorings that select exactly the pods the operator builds, on the
port each serves /metrics on, valid against the upstream GMP CRD."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import dask.config
import pytest
from distributed.cli import dask_scheduler

from components import monitoring_spec
from gpudask.plan import checks as recording_checks
from gpudask.record.recorder import Recording, load_config
from gpudask.upstream import schemas as upstream_schemas

from .conftest import EXISTING_STACKS, GKE_STACKS, STACKS, manifests_of, operator_pods, selects, settings_for

Run = Callable[..., Recording]


def _http_port(pod: dict[str, Any]) -> int:
    """Where the pod's Dask HTTP server listens: `--dashboard-address` when given, else the CLI's default."""
    args = pod["containers"][0].get("args") or []
    if "--dashboard-address" in args:
        address = args[args.index("--dashboard-address") + 1]
    else:
        assert args[:2] == ["dask", "scheduler"], args
        address = next(p.default for p in dask_scheduler.main.params if p.name == "dashboard_address")
    return int(str(address).rsplit(":", 1)[-1])


def _routes(pod: dict[str, Any], component: str) -> list[str]:
    env = {e["name"]: e.get("value") for e in pod["containers"][0].get("env") or []}
    key = f"DASK_DISTRIBUTED__{component.upper()}__HTTP__ROUTES"
    if key in env:
        return dask.config.collect_env({key: env[key]})["distributed"][component]["http"]["routes"]
    return dask.config.get(f"distributed.{component}.http.routes")


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_gke_stacks_scrape_the_scheduler_and_every_worker_group_on_their_metrics_ports(
    recorded: Run, stack: str
) -> None:
    rec, s = recorded(stack), settings_for(stack)
    monitors = manifests_of(rec, "PodMonitoring")
    pods = operator_pods(rec)
    groups = {labels.get("dask.org/workergroup-name") or "scheduler" for labels, _ in pods}
    assert len(monitors) == len(groups) == 2 + len(s.dask.worker_groups)
    # Every pod is scraped by exactly one monitor: none is missed, none counted twice.
    assert [sum(selects(m["spec"]["selector"], labels) for m in monitors) for labels, _ in pods] == [1] * len(pods)
    for monitor in monitors:
        spec = monitor["spec"]
        chosen = [(labels, pod) for labels, pod in pods if selects(spec["selector"], labels)]
        assert chosen, monitor["metadata"]["name"]
        for labels, pod in chosen:
            component = labels["dask.org/component"]
            [endpoint] = spec["endpoints"]
            assert endpoint["port"] == _http_port(pod)
            declared = {p["containerPort"] for p in pod["containers"][0]["ports"] if p["name"] == "http-dashboard"}
            assert declared == {endpoint["port"]}
            assert endpoint["path"] == "/metrics"
            assert f"distributed.http.{component}.prometheus" in _routes(pod, component)
        assert monitor["metadata"]["namespace"] == s.dask.namespace


@pytest.mark.parametrize("stack", STACKS)
def test_every_pod_monitoring_is_valid_against_the_upstream_crd(recorded: Run, stack: str) -> None:
    for monitor in manifests_of(recorded(stack), "PodMonitoring"):
        assert upstream_schemas.crd_findings(monitor) == []


def test_the_crd_check_catches_what_the_api_server_would_refuse_or_drop() -> None:
    s = settings_for("prod")
    good = monitoring_spec.pod_monitoring(s.dask, monitoring_spec.scrape_targets(s.dask)[0])
    assert upstream_schemas.crd_findings(good) == []
    no_interval = copy.deepcopy(good)
    del no_interval["spec"]["endpoints"][0]["interval"]
    misspelt = copy.deepcopy(good)
    misspelt["spec"]["endpoints"][0]["paht"] = "/metrics"
    bad_metadata = copy.deepcopy(good)
    bad_metadata["spec"]["targetLabels"]["metadata"] = ["pod", "hostname"]
    findings = {
        "no interval": upstream_schemas.crd_findings(no_interval),
        "misspelt": upstream_schemas.crd_findings(misspelt),
        "bad metadata": upstream_schemas.crd_findings(bad_metadata),
    }
    assert all(findings.values()), findings
    assert "'interval' is a required property" in findings["no interval"][0]
    assert "unknown field" in findings["misspelt"][0]


def test_the_vendored_crds_say_where_they_come_from() -> None:
    header = upstream_schemas.VENDORED_CRDS["PodMonitoring"].read_text().split("apiVersion:", 1)[0]
    assert "GoogleCloudPlatform/prometheus-engine" in header and "retrieved 2026-12-03" in header
    assert "2ffde4ec7b7e4ca1da4e32f36b692945b78a60e4" in header
    header = upstream_schemas.VENDORED_CRDS["PodMonitor"].read_text().split("apiVersion:", 1)[0]
    assert "prometheus-operator/prometheus-operator" in header and "6adcebc5076c34f4f55f8f5f7b1e528929373ac7" in header


@pytest.mark.parametrize("stack", EXISTING_STACKS)
def test_existing_cluster_stacks_scrape_nothing_unless_asked(recorded: Run, stack: str) -> None:
    rec = recorded(stack)
    assert manifests_of(rec, "PodMonitoring") == [] and manifests_of(rec, "PodMonitor") == []
    asked = recorded(stack, overrides={"gpu-dask:monitoring": {"collection": "prometheus-operator"}})
    monitors = manifests_of(asked, "PodMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {
        t.job for t in monitoring_spec.scrape_targets(settings_for(stack).dask)
    }
    assert all(m["spec"]["podMetricsEndpoints"][0]["port"] == "http-dashboard" for m in monitors)
    # Valid against the vendored prometheus-operator CRD, and the plan finds nothing new.
    assert all(upstream_schemas.crd_findings(m) == [] for m in monitors)
    errors = [f for f in recording_checks.all_findings(asked) if f.severity == recording_checks.ERROR]
    assert errors == []
    policies = [m for m in manifests_of(asked, "NetworkPolicy") if "-metrics-" in m["metadata"]["name"]]
    peers = [p for m in policies for rule in m["spec"]["ingress"] for p in rule["from"]]
    assert (
        peers
        == [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            }
        ]
        * 2
    )


def test_stack_files_do_not_set_monitoring_yet() -> None:
    # Defaults: GMP for stacks that create GKE, nothing for existing clusters (README).
    assert all("gpu-dask:monitoring" not in load_config(s) for s in STACKS), json.dumps(STACKS)


def test_bad_monitoring_config_is_refused_with_every_problem_at_once() -> None:
    from components.settings import SettingsError

    with pytest.raises(SettingsError) as err:
        settings_for(
            "dev",
            monitoring={
                "collection": "datadog",
                "notificationChannels": ["email-me"],
                "alerts": {"noGpuWorkerMinutes": 0, "spillMinuts": 3},
                "dashbord": True,
            },
        )
    text = str(err.value)
    for expected in (
        "monitoring.collection: 'datadog' is not allowed; one of gmp, prometheus-operator, none",
        "monitoring.notificationChannels[0]: 'email-me' is not a notification channel id",
        "monitoring.alerts.noGpuWorkerMinutes: 0 must be an integer >= 1",
        "monitoring.alerts.spillMinuts: 3 is not a known key",
        "monitoring.dashbord: True is not a known key",
    ):
        assert expected in text, text
    with pytest.raises(SettingsError, match=r"monitoring.dashboard: True needs a GCP project this stack owns"):
        settings_for(EXISTING_STACKS[0], monitoring={"dashboard": True, "collection": "gmp"})
    with pytest.raises(SettingsError, match=r"monitoring.collection: 'none' must be gmp while monitoring.dashboard"):
        settings_for("dev", monitoring={"collection": "none"})


@pytest.mark.control_plane
def test_pod_monitorings_and_collector_policies_apply_on_the_pinned_api_server() -> None:
    """The real API server (upstream/versions.toml) takes the vendored CRD and prod's objects, and
    refuses what only the CRD's CEL rules catch (jsonschema does not evaluate them). A control plane
    of its own: a CRD is cluster-wide."""
    import yaml

    from components import security_spec
    from gpudask.local import procs
    from gpudask.local.cluster.controlplane import ControlPlane
    from gpudask.local.cluster.kube import ApiError
    from gpudask.record.recorder import run_program

    rec, s = run_program("prod"), settings_for("prod")
    wanted = [m for m in manifests_of(rec, "PodMonitoring")]
    wanted += [m for m in manifests_of(rec, "NetworkPolicy") if "-metrics-" in m["metadata"]["name"]]
    assert len(wanted) == 2 + 1 + len(s.dask.worker_groups) + 1  # 3 monitors, 2 collector policies
    with ControlPlane(timeout=120) as cp:
        kube = cp.kube()
        crd = yaml.safe_load(upstream_schemas.VENDORED_CRDS["PodMonitoring"].read_text())
        kube.apply(crd, "gpu-dask-test")

        def established() -> bool:
            got = kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}")
            return any(
                c["type"] == "Established" and c["status"] == "True"
                for c in (got.get("status") or {}).get("conditions") or []
            )

        assert procs.wait_for(established, 60), "the PodMonitoring CRD was not Established within 60 s"
        kube.apply(security_spec.namespace(s.dask), "gpu-dask-test")
        for manifest in wanted:
            kube.apply(manifest, "gpu-dask-test")
        stored = {m["metadata"]["name"]: m for m in kube.list(monitoring_spec.GMP_API_VERSION, "PodMonitoring", "dask")}
        assert sorted(stored) == sorted(m["metadata"]["name"] for m in wanted if m["kind"] == "PodMonitoring")
        assert stored["rapids-scheduler"]["spec"]["endpoints"] == [
            {"interval": "30s", "path": "/metrics", "port": 8787}
        ]
        protected = copy.deepcopy(wanted[0])
        protected["metadata"]["name"] = "relabels-namespace"
        protected["spec"]["targetLabels"]["fromPod"] = [{"from": "dask.org/cluster-name", "to": "namespace"}]
        assert upstream_schemas.crd_findings(protected) == []  # jsonschema cannot see it
        with pytest.raises(ApiError) as refused:
            kube.apply(protected, "gpu-dask-test")
        assert refused.value.status == 422
        assert 'cannot relabel onto protected label "namespace"' in refused.value.message
