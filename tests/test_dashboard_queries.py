"""Every dashboard and alert query, answered by a real Prometheus (built from its Go module,
upstream/versions.toml) scraping the real Dask scheduler and workers of `gpudask rehearse`.

Prometheus scrapes what the stack's PodMonitorings select, as GMP would: one job per
PodMonitoring (its name), the endpoint's path, each selected pod's HTTP port, and the target
labels GMP adds (namespace, pod, node). Every Dask query must return data after a real workload;
every alert must stay quiet on the healthy cluster and fire on its broken variant (the GPU worker
stopped while work waits; a worker filled until it spills; the scheduler stopped; workers
restarting in a loop). GPU (DCGM) queries cannot be produced here: tests/test_dashboard.py checks
their metric names. Every process has a deadline and is stopped.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import distributed
import pytest
from distributed import Client

from components import dashboard_spec, monitoring_spec
from components.settings import AlertSettings, StackSettings
from gpudask.local.cluster.scrape import prometheus
from gpudask.local.rehearse import Rehearsal, rehearsal
from gpudask.record.recorder import Recording, load_config, run_program
from gpudask.record.view import recorded_settings

pytestmark = pytest.mark.process
# Short windows so that the alerts' own expressions answer within the test; durations (`for`)
# are Cloud Monitoring's to apply and are not evaluated here.
ALERTS = AlertSettings(restart_window_minutes=2, restarts=3, scheduler_tick_seconds=5.0)
SCRAPE_S = 1


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f}s for {what}")
        time.sleep(0.5)


@dataclass
class Scraped:
    running: Rehearsal
    prometheus: str
    settings: StackSettings
    targets: dict[str, str]
    """process name -> job."""

    def query(self, promql: str) -> list[dict[str, Any]]:
        return _query(self.prometheus, promql)

    def returns(self, promql: str, timeout: float = 30) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        def check() -> bool:
            found[:] = self.query(promql)
            return bool(found)

        _wait(f"data from {promql}", check, timeout)
        return found


def scrape_config(running: Rehearsal, settings: StackSettings) -> tuple[dict[str, Any], dict[str, str]]:
    """Prometheus' config from the stack's PodMonitorings: a job per monitor, a static target per
    selected process (its HTTP port, asked of the scheduler), GMP's target labels."""
    dask = settings.dask
    monitors = monitoring_spec.monitor_objects(dask, replace(settings.monitoring, collection="gmp"))
    with Client(running.address, timeout=30, security=running.security()) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        http_ports = {w["name"]: w["services"]["dashboard"] for w in workers}
    by_job: dict[str, list[dict[str, Any]]] = {}
    jobs: dict[str, str] = {}
    for process in running.processes:
        labels = {"dask.org/cluster-name": dask.name, "dask.org/component": process.component}
        if process.group:
            labels["dask.org/workergroup-name"] = process.group
        chosen = [
            m
            for m in monitors.values()
            if all(labels.get(k) == v for k, v in m["spec"]["selector"]["matchLabels"].items())
        ]
        assert len(chosen) == 1, (process.name, [m["metadata"]["name"] for m in chosen])
        monitor = chosen[0]
        port = running.dashboard_port if process.component == "scheduler" else http_ports[process.name]
        [endpoint] = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        job = monitor["metadata"]["name"]
        jobs[process.name] = job
        by_job.setdefault(job, []).append(
            {
                "targets": [f"127.0.0.1:{port}"],
                "labels": {"namespace": dask.namespace, "pod": process.name, "node": "localhost"},
            }
        )
    config = {
        "global": {"scrape_interval": f"{SCRAPE_S}s", "evaluation_interval": f"{SCRAPE_S}s"},
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": static} for job, static in by_job.items()
        ],
    }
    return config, jobs


def _dev(overrides: dict[str, Any] | None = None) -> Recording:
    return run_program("dev", overrides=overrides)


@contextlib.contextmanager
def scraped(rec: Recording) -> Iterator[Scraped]:
    settings = recorded_settings(rec)
    with rehearsal(rec, timeout=120) as running:
        config, jobs = scrape_config(running, settings)
        with prometheus(config) as base:
            s = Scraped(running, base, settings, jobs)
            expected = len(jobs)
            _wait(
                f"{expected} targets up",
                lambda: len(s.query("up == 1")) >= expected,
                60,
            )
            yield s


def _workload(client: Client, gpu: bool, n: int = 20) -> None:
    def work(i: int) -> int:
        time.sleep(0.05)
        return i * i

    futures = client.map(work, range(n), pure=False, resources={"GPU": 1} if gpu else None)
    results: list[int] = client.gather(futures)  # pyright: ignore[reportAssignmentType]
    assert sum(results) == sum(i * i for i in range(n))


@pytest.fixture(scope="module")
def healthy() -> Iterator[Scraped]:
    with scraped(_dev()) as s:
        with Client(s.running.address, timeout=30) as client:
            _workload(client, gpu=True)
            _workload(client, gpu=False)
        time.sleep(3 * SCRAPE_S)
        yield s


def test_every_dask_dashboard_query_returns_data(healthy: Scraped, record_property: Any) -> None:
    answered = {}
    for q in dashboard_spec.dashboard_queries(healthy.settings.dask):
        if q.source != "dask":
            continue
        result = healthy.returns(q.promql)
        answered[q.key] = {"query": q.promql, "values": [(r["metric"], r["value"][1]) for r in result]}
    record_property("dashboard", json.dumps(answered))
    print(json.dumps(answered, indent=1))
    assert {r["metric"]["job"]: float(r["value"][1]) for r in healthy.query(_by_key("workers").promql)} == {
        "rapids-default-workers": 1.0
    }


def test_series_per_target_stay_within_the_plans_estimates(healthy: Scraped) -> None:
    """The plan prices samples from monitoring_spec's per-target estimates: they must hold here."""
    counts = {
        r["metric"]["job"]: float(r["value"][1])
        for r in healthy.query('count by (job) ({__name__=~".+", __name__!~"up|scrape_.*"})')
    }
    print("series per job:", counts)
    assert counts["rapids-scheduler"] <= monitoring_spec.SCHEDULER_SERIES_ESTIMATE
    assert counts["rapids-default-workers"] <= monitoring_spec.WORKER_SERIES_ESTIMATE


def _by_key(key: str) -> dashboard_spec.Query:
    return next(q for q in dashboard_spec.dashboard_queries(_dev_settings().dask) if q.key == key)


def _dev_settings() -> StackSettings:
    return recorded_settings(_dev())


def test_every_dask_alert_is_quiet_on_the_healthy_cluster(healthy: Scraped) -> None:
    for alert in dashboard_spec.alerts(healthy.settings.dask, ALERTS):
        if alert.source == "dask":
            assert healthy.query(alert.promql) == [], alert.key


def _alert(settings: StackSettings, key: str) -> str:
    return next(a.promql for a in dashboard_spec.alerts(settings.dask, ALERTS) if a.key == key)


def test_no_gpu_worker_fires_when_the_gpu_worker_stops_while_work_waits() -> None:
    with scraped(_dev()) as s:
        query = _alert(s.settings, "no-gpu-worker")
        assert s.query(query) == []
        gpu_worker = next(p.name for p in s.running.processes if p.component == "worker")
        s.running.remove(gpu_worker)
        with Client(s.running.address, timeout=30) as client:
            futures = client.map(lambda i: i, range(5), pure=False, resources={"GPU": 1})
            fired = s.returns(query, timeout=30)
            assert float(fired[0]["value"][1]) == 5.0
            client.cancel(futures)


def test_spill_alert_fires_when_a_worker_fills_until_it_spills() -> None:
    dask_config = json.loads(load_config("dev")["gpu-dask:dask"])
    dask_config["worker"] = {**dask_config["worker"], "memoryGb": 1}
    with scraped(_dev({"gpu-dask:dask": dask_config})) as s:
        query = _alert(s.settings, "workers-spilling")
        assert s.query(query) == []
        with Client(s.running.address, timeout=30) as client:
            # 16 x 50 MB held by a worker whose limit is 1 GiB: beyond the 60% target it spills.
            held = client.map(lambda i: bytearray(50 * 2**20), range(16), pure=False)
            distributed.wait(held, timeout=60)
            fired = s.returns(query, timeout=30)
            assert float(fired[0]["value"][1]) > 0
            client.cancel(held)


def test_scheduler_and_restart_alerts_fire_on_their_variants() -> None:
    with scraped(_dev()) as s:
        unhealthy, loop = _alert(s.settings, "scheduler-unhealthy"), _alert(s.settings, "worker-restart-loop")
        assert s.query(unhealthy) == [] and s.query(loop) == []
        worker = next(p.name for p in s.running.processes if p.component == "worker")
        with Client(s.running.address, timeout=30) as client:
            for _ in range(ALERTS.restarts + 1):
                before = s.running.restarts.get(worker, 0)
                s.running.kill(worker)  # the supervisor (the kubelet) restarts it
                _wait(
                    "the supervisor to restart the worker",
                    lambda before=before: s.running.restarts.get(worker, 0) > before,
                    30,
                )
                _wait("the worker to register again", lambda: len(client.scheduler_info()["workers"]) == 1, 60)
        s.returns(loop, timeout=30)
        scheduler = next(p.name for p in s.running.processes if p.component == "scheduler")
        s.running.remove(scheduler)
        s.returns(unhealthy, timeout=30)
