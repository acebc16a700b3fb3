"""`rehearse --cluster` scraped through what its PodMonitorings select (issue 23).

dev's Kubernetes half goes up by the real engine on a local control plane (kwok nodes named like
GKE's, the chart's operator, Dask pods backed by real processes). Each PodMonitoring the engine
applied is resolved by the API server (a pod list with its selector), each selected pod mapped to its
process (gpudask/local/cluster/scrape.py), and the pinned Prometheus scrapes those endpoints with
GMP's labels. Then every Dask dashboard query and the per-pool node and cost tiles answer (the cost
tile: nodes running Dask pods x the plan's per-node price, per pool), and every Dask alert is quiet.
GPU (DCGM) queries cannot be produced here (tests/test_dashboard.py checks their names).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from components import dashboard_spec, prices
from gpudask.local import engine
from gpudask.local.cluster.controlplane import ControlPlane
from gpudask.local.cluster.nodes import stack_nodes
from gpudask.local.cluster.runtime import dask_namespace, settle_dask
from gpudask.local.cluster.scrape import (
    active_targets,
    label_selector,
    monitored_targets,
    prometheus,
    prometheus_config,
    query,
    wait_until,
)
from gpudask.record.recorder import load_config, run_program
from gpudask.record.view import recorded_settings

pytestmark = [pytest.mark.control_plane, pytest.mark.real_pulumi, pytest.mark.process]
SCRAPE_S = 1


def test_label_selector_speaks_the_api_servers_syntax() -> None:
    selector = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "c", "operator": "In", "values": ["x", "y"]},
            {"key": "d", "operator": "NotIn", "values": ["z"]},
            {"key": "e", "operator": "Exists"},
            {"key": "f", "operator": "DoesNotExist"},
        ],
    }
    assert label_selector(selector) == "a=1,b=2,c in (x,y),d notin (z),e,!f"


def test_dev_on_the_local_control_plane_answers_every_dask_query_through_its_podmonitorings(tmp_path: Path) -> None:
    began = time.monotonic()
    # dev's autoscaler idles at 0 workers: at 1 the workers' PodMonitoring has a pod to select.
    dask_config = json.loads(load_config("dev")["gpu-dask:dask"])
    dask_config["autoscale"] = {**dask_config["autoscale"], "minimum": 1}
    overrides = {"gpu-dask:dask": dask_config}
    rec = run_program("dev", overrides=overrides)
    settings = recorded_settings(rec)
    dask = settings.dask
    namespace = dask_namespace(rec)
    node_hourly = prices.pool_node_hourly(settings)
    with (
        ControlPlane() as cp,
        stack_nodes(cp, rec, process_backed_namespaces=(namespace,)),
        engine.stack_up(cp, rec, tmp_path / "dev", log=print, config=overrides) as up,
    ):
        assert up.result.ok, up.result.failure()
        runtime = up.runtime
        _, problems = settle_dask(runtime, timeout=180)
        assert problems == [], problems
        kube = cp.kube()
        targets, problems = monitored_targets(kube, namespace, runtime.kubelet)
        assert problems == [], problems

        # What the API server selected: every Dask pod, each by exactly one PodMonitoring; the
        # scheduler's by the scheduler's monitor.
        pods = {
            p["metadata"]["name"]: p for p in kube.list("v1", "Pod", namespace, labelSelector="dask.org/cluster-name")
        }
        assert Counter(t.pod for t in targets) == Counter(dict.fromkeys(pods, 1))
        scheduler_job = next(
            t.job for t in targets if pods[t.pod]["metadata"]["labels"]["dask.org/component"] == "scheduler"
        )
        assert scheduler_job == f"{dask.name}-scheduler"
        assert all(t.node == pods[t.pod]["spec"]["nodeName"] and t.node.startswith("gke-") for t in targets)
        print("targets:", *(f"{t.job} {t.pod} on {t.node} -> {t.address}{t.path}" for t in targets), sep="\n  ")

        with prometheus(prometheus_config(targets, SCRAPE_S)) as base:
            wait_until(
                f"all {len(targets)} targets up",
                lambda: (
                    len(active_targets(base)) == len(targets) and all(t["health"] == "up" for t in active_targets(base))
                ),
                60,
            )
            address = runtime.scheduler_address(dask.name)
            security = runtime.client_security(address)
            with Client(address, timeout=30, security=security) as client:
                assert client.gather(client.map(lambda i: i * 2, range(20), pure=False)) == [i * 2 for i in range(20)]
            answered: dict[str, Any] = {}
            for q in dashboard_spec.dashboard_queries(dask, settings.cluster_name, node_hourly):
                if q.source == "dcgm":
                    continue
                wait_until(f"data from {q.key}: {q.promql}", lambda q=q: bool(query(base, q.promql)), 30)
                answered[q.key] = query(base, q.promql)
            for key, result in answered.items():
                print(key, [(r["metric"], r["value"][1]) for r in result])

            # The per-pool tiles: the nodes running Dask pods, per pool, and each times its plan price.
            # Which pool a node is in: its GKE label, from the API server (not from its name, as the query does).
            pool_of = {
                n["metadata"]["name"]: n["metadata"]["labels"]["cloud.google.com/gke-nodepool"]
                for n in kube.list("v1", "Node")
            }
            hosting: dict[str, set[str]] = {}
            for t in targets:
                hosting.setdefault(pool_of[t.node], set()).add(t.node)
            counted = {r["metric"]["pool"]: float(r["value"][1]) for r in answered["pool_nodes"]}
            assert counted == {pool: float(len(nodes)) for pool, nodes in hosting.items()}
            cost = {r["metric"]["pool"]: float(r["value"][1]) for r in answered["pool_cost"]}
            assert cost == pytest.approx({pool: n * node_hourly[pool] for pool, n in counted.items()})

            for alert in dashboard_spec.alerts(dask, settings.monitoring.alerts):
                if alert.source == "dask":
                    assert query(base, alert.promql) == [], alert.key
    print(f"scrape of dev on the local control plane: {time.monotonic() - began:.1f} s")
