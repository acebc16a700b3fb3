"""The pinned Dask Kubernetes operator as a local process, authenticated as the chart's
ServiceAccount.

The chart installed by helm declares a Deployment whose pod would run the operator image
(`kopf run` of `dask_kubernetes.operator.controller`, the chart's `kopfArgs`, its env). No
container runtime runs that pod here; this module runs the same program from the pinned
wheel in this venv instead, with the Deployment's own args and env, and a token kubeconfig
of the Deployment's ServiceAccount: every request the operator makes goes through the
chart's ClusterRole, so a missing permission fails here as it would on GKE.

From outside a cluster the operator reaches the scheduler the way its code does when the
Service name does not resolve (`dask_kubernetes.operator.networking`): after ~10 s of DNS
retries it port-forwards the Service through the API server, which the API server proxies
to the node's kubelet: kwok, whose `PortForward` targets the kubelet stand-in registers.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpudask.local import procs, rehearse
from gpudask.local.cluster.kube import ApiError

CONTROLLER_MODULE = "dask_kubernetes.operator.controller"
CHART_NAME = "dask-kubernetes-operator"


def chart_folder() -> Path:
    """The operator chart the pinned dask-kubernetes wheel ships (what the stack's Helm release installs offline)."""
    import dask_kubernetes

    return Path(dask_kubernetes.__file__).parent / "operator" / "deployment" / "helm" / CHART_NAME


class OperatorError(Exception):
    """The operator could not start or stopped; the message holds its log's tail."""


@dataclass(frozen=True)
class ConfigMapMount:
    """A ConfigMap volume the operator container mounts: its files (key -> path) under mount_path."""

    mount_path: str
    config_map: str
    items: dict[str, str]  # key -> path relative to mount_path; empty: every key as its own name


@dataclass(frozen=True)
class OperatorPod:
    """What the chart's Deployment says the operator runs as."""

    namespace: str
    service_account: str
    args: list[str]  # kopf arguments after `run -m <module>` (the chart's args + kopfArgs)
    env: dict[str, str]
    config_map_mounts: tuple[ConfigMapMount, ...] = ()
    """The stack's operator plugin arrives this way (components/operator_plugin_spec.py)."""


def _config_map_mounts(pod: Mapping[str, Any], container: Mapping[str, Any]) -> tuple[ConfigMapMount, ...]:
    volumes = {v["name"]: v["configMap"] for v in pod.get("volumes") or [] if v.get("configMap")}
    mounts = []
    for mount in container.get("volumeMounts") or []:
        source = volumes.get(mount["name"])
        if source is not None:
            items = {i["key"]: i["path"] for i in source.get("items") or []}
            mounts.append(ConfigMapMount(mount["mountPath"], source["name"], items))
    return tuple(mounts)


def materialize(
    mounts: tuple[ConfigMapMount, ...], config_maps: Mapping[str, Mapping[str, str]], folder: Path
) -> dict[str, str]:
    """Write each mounted ConfigMap's files under `folder` as the kubelet would under the mount
    path; returns mount path -> local folder (for `rehearse.relocate`). A ConfigMap not given is
    an error naming it (the kubelet would leave the pod ContainerCreating)."""
    missing = sorted({m.config_map for m in mounts} - set(config_maps))
    if missing:
        raise OperatorError(f"the operator mounts ConfigMap(s) {missing}, which were not given (read them first)")
    local: dict[str, str] = {}
    for i, mount in enumerate(mounts):
        root = folder / f"volume-{i}-{mount.config_map}"
        data = config_maps[mount.config_map]
        for key, path in (mount.items or {k: k for k in data}).items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[key])
        local[mount.mount_path] = str(root)
    return local


def chart_operator(deployment: Mapping[str, Any], namespace: str = "") -> OperatorPod:
    """The operator's ServiceAccount, kopf args and env from the chart's Deployment (as the API
    server returns it, or as `helm template` renders it: then `namespace` is the release's)."""
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = rehearse.container_env(container)
    args = [rehearse.expand(str(a), env) for a in container.get("args") or []]
    return OperatorPod(
        namespace=deployment["metadata"].get("namespace") or namespace,
        service_account=pod.get("serviceAccountName") or "default",
        args=args,
        env=env,
        config_map_mounts=_config_map_mounts(pod, container),
    )


def config_maps_for(kube: Any, pod: OperatorPod) -> dict[str, dict[str, str]]:
    """The data of the ConfigMaps the operator pod mounts, read as the kubelet does (with the
    caller's credentials: the chart's ServiceAccount may not read ConfigMaps), for
    `Operator(config_maps=...)`. A missing one is left out (`materialize` then names it)."""
    found: dict[str, dict[str, str]] = {}
    for mount in pod.config_map_mounts:
        try:
            response = kube.request("GET", f"/api/v1/namespaces/{pod.namespace}/configmaps/{mount.config_map}")
        except ApiError as err:
            if err.status == 404:
                continue
            raise
        found[mount.config_map] = dict((response.data or {}).get("data") or {})
    return found


def local_args(args: list[str], liveness_port: int) -> list[str]:
    """The chart's kopf args with the liveness endpoint moved to loopback on a free port."""
    out = [a for a in args if not a.startswith("--liveness")]
    return [*out, f"--liveness=http://{procs.LOOPBACK}:{liveness_port}/healthz"]


@dataclass
class Operator:
    """The running operator. Use as a context manager; `start()` returns once kopf serves
    its liveness endpoint (its startup handlers have run)."""

    pod: OperatorPod
    kubeconfig: Path  # the ServiceAccount's token kubeconfig
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    start_s: float = 0.0  # spawn -> liveness answered
    liveness_port: int = field(default_factory=procs.free_port)
    config_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """ConfigMap name -> data, for the pod's ConfigMap mounts (the stack's plugin). Given, their
    files are written under workdir and the env's paths under each mount point there; not given,
    the env keeps the pod's paths, which do not exist here, and the stock operator runs."""

    @property
    def log_path(self) -> Path:
        return self.workdir / "operator.log"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "kopf",
            "run",
            "-m",
            CONTROLLER_MODULE,
            *local_args(self.pod.args, self.liveness_port),
        ]

    def local_env(self) -> dict[str, str]:
        """The pod's env as this process runs it: mounted ConfigMaps written here, paths moved."""
        env = dict(self.pod.env)
        if self.config_maps and self.pod.config_map_mounts:
            local = materialize(self.pod.config_map_mounts, self.config_maps, self.workdir)
            env = {name: rehearse.relocate(value, local) for name, value in env.items()}
        return {**env, "KUBECONFIG": str(self.kubeconfig)}

    def start(self, timeout: float = 60.0) -> Operator:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = self.local_env()
        begin = time.monotonic()
        self.process = rehearse.spawn("dask-kubernetes-operator", self.argv(), env, self.log_path, self.workdir)
        url = f"http://{procs.LOOPBACK}:{self.liveness_port}/healthz"
        while True:
            if self.process.poll() is not None:
                raise OperatorError(f"the operator exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    break
            if time.monotonic() - begin > timeout:
                raise OperatorError(f"the operator did not answer {url} within {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.2)
        self.start_s = time.monotonic() - begin
        return self

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_log(self, predicate: Callable[[str], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.log_text()):
                return True
            time.sleep(0.2)
        return False

    def handler_lines(self) -> list[str]:
        """kopf's per-object lines (handlers run, their messages), as its Events would say."""
        return [line.split("] ", 2)[-1] for line in self.log_text().splitlines() if "kopf.objects" in line]

    def forbidden(self) -> list[str]:
        """Log lines where the API server refused the operator (RBAC)."""
        return [line for line in self.log_text().splitlines() if " 403 " in line or "forbidden" in line.lower()]

    def stop(self) -> None:
        if self.process is not None:
            procs.stop(self.process, grace=10)

    def __enter__(self) -> Operator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
