"""Scrape a local control plane's Dask pods as Managed Prometheus would: through what the
PodMonitorings select.

GMP's collector reads each `PodMonitoring` (monitoring.googleapis.com/v1) of a namespace, lists the
pods its `spec.selector` selects, and scrapes each endpoint (`port`: a container port's number or
name) of each selected pod, labelling the series with `job` (the PodMonitoring's name), `instance`
(`<pod>:<port>`), `namespace`, and the `targetLabels.metadata` it asks for (`pod`, `container`,
`node`). Here the selection is made by the API server (a pod list with the selector), and each
selected pod is mapped to the real process behind it through the kubelet stand-in
(gpudask/local/cluster/kubelet.py: `Kubelet.pods` by uid, `Backed.named_ports` / `Backed.ports`:
containerPort -> loopback port). The pinned Prometheus is built without service discovery
(`remove_all_sd`), so the resolved targets become static ones: the selection is the API server's,
not ours. A PodMonitoring that selects no pod, or a selected pod with no running process or no such
port, is reported, not skipped.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpudask.local import procs
from gpudask.local.cluster.kube import Kube
from gpudask.local.cluster.kubelet import Kubelet
from gpudask.upstream import programs as upstream

GMP_API = "monitoring.googleapis.com/v1"


class ScrapeError(RuntimeError):
    """Prometheus did not start, or a wait for data ran past its deadline; the message says what."""


def label_selector(selector: Mapping[str, Any]) -> str:
    """A `metav1.LabelSelector` as the `labelSelector` query parameter the API server takes."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise ValueError(f"matchExpressions operator {op!r} is not one of In, NotIn, Exists, DoesNotExist")
    return ",".join(parts)


@dataclass(frozen=True)
class Target:
    """One endpoint of one pod a PodMonitoring selects, and where its process listens here."""

    job: str
    pod: str
    node: str
    port: str
    """The endpoint's port as the PodMonitoring names it (number or name)."""
    address: str
    path: str
    labels: dict[str, str]


def monitored_targets(kube: Kube, namespace: str, kubelet: Kubelet) -> tuple[list[Target], list[str]]:
    """(targets, problems): every endpoint of every pod each PodMonitoring of `namespace` selects,
    resolved by the API server and mapped to the kubelet stand-in's processes."""
    targets: list[Target] = []
    problems: list[str] = []
    backed = {b.uid: b for b in kubelet.pods.values()}
    for monitor in kube.list(GMP_API, "PodMonitoring", namespace):
        job = monitor["metadata"]["name"]
        spec = monitor.get("spec") or {}
        selector = label_selector(spec.get("selector") or {})
        pods = [
            p
            for p in kube.list("v1", "Pod", namespace, labelSelector=selector)
            if not p["metadata"].get("deletionTimestamp")
        ]
        if not pods:
            problems.append(f"PodMonitoring {namespace}/{job}: its selector {selector!r} selects no pod")
        wanted = set(((spec.get("targetLabels") or {}).get("metadata")) or ())
        for pod in pods:
            name = pod["metadata"]["name"]
            process = backed.get(pod["metadata"]["uid"])
            if process is None or process.process is None or process.process.poll() is not None:
                problems.append(f"PodMonitoring {namespace}/{job}: selects pod {name}, which no process backs")
                continue
            for endpoint in spec.get("endpoints") or []:
                port = endpoint["port"]
                container_port = process.named_ports.get(port) if isinstance(port, str) else int(port)
                loopback = process.ports.get(container_port) if container_port is not None else None
                if loopback is None:
                    problems.append(
                        f"PodMonitoring {namespace}/{job}: pod {name} declares no container port {port!r} "
                        f"(ports: {sorted(process.ports)})"
                    )
                    continue
                metadata = {
                    "pod": name,
                    "container": process.container.get("name", ""),
                    "node": pod["spec"].get("nodeName", ""),
                }
                labels = {"namespace": namespace, "instance": f"{name}:{port}"}
                labels |= {k: v for k, v in metadata.items() if k in wanted}
                targets.append(
                    Target(
                        job,
                        name,
                        metadata["node"],
                        str(port),
                        f"{procs.LOOPBACK}:{loopback}",
                        endpoint.get("path", "/metrics"),
                        labels,
                    )
                )
    return targets, problems


def prometheus_config(targets: list[Target], scrape_s: float) -> dict[str, Any]:
    """One scrape job per PodMonitoring (and path), a static target per selected endpoint."""
    jobs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in targets:
        jobs.setdefault((t.job, t.path), []).append({"targets": [t.address], "labels": dict(t.labels)})
    return {
        "global": {"scrape_interval": f"{scrape_s:g}s", "evaluation_interval": f"{scrape_s:g}s"},
        "scrape_configs": [
            {"job_name": job, "metrics_path": path, "static_configs": static} for (job, path), static in jobs.items()
        ],
    }


@contextlib.contextmanager
def prometheus(config: Mapping[str, Any], timeout: float = 60.0) -> Iterator[str]:
    """The pinned Prometheus (gpudask/upstream/programs.py) with `config`; yields its base URL and
    stops it (and removes its data) when the block ends."""
    binary = upstream.binary("prometheus")
    port = procs.free_port()
    with tempfile.TemporaryDirectory(prefix="gpudask-prometheus-") as folder:
        path = Path(folder) / "prometheus.yml"
        path.write_text(yaml.safe_dump(dict(config)))
        log = Path(folder) / "prometheus.log"
        argv = [
            str(binary),
            f"--config.file={path}",
            f"--storage.tsdb.path={folder}/data",
            f"--web.listen-address={procs.LOOPBACK}:{port}",
        ]
        proc = procs.spawn(argv, log)
        base = f"http://{procs.LOOPBACK}:{port}"

        def ready() -> bool:
            if proc.poll() is not None:
                raise ScrapeError(f"Prometheus exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{base}/-/ready", timeout=2) as r:
                return r.status == 200
            return False

        try:
            wait_until("Prometheus to answer /-/ready", ready, timeout)
            yield base
        finally:
            procs.stop_all([proc], 5)


def wait_until(what: str, check: Callable[[], bool], timeout: float, period: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ScrapeError(f"waited {timeout:.0f} s for {what}")
        time.sleep(period)


def query(base: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector (Prometheus' HTTP API)."""
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    if body.get("status") != "success":
        raise ScrapeError(f"query failed: {promql}: {body}")
    return list(body["data"]["result"])


def active_targets(base: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base}/api/v1/targets?state=active", timeout=10) as response:
        return list(json.loads(response.read())["data"]["activeTargets"])
