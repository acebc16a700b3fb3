"""The Dask half of a local control plane: the chart's operator and real Dask processes
behind the Dask namespace's pods, plus what the scenarios and `rehearse --cluster` read back
(the waitFor condition, operator events, where each pod landed)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpudask.local.cluster.controlplane import ControlPlane
from gpudask.local.cluster.kube import ApiError, Kube
from gpudask.local.cluster.kubelet import Kubelet
from gpudask.local.cluster.nodes import Nodes
from gpudask.local.cluster.operator import CHART_NAME, Operator, OperatorPod, chart_operator, config_maps_for
from gpudask.record.recorder import Recording

DASK_API = "kubernetes.dask.org/v1"


class ScenarioError(Exception):
    """The operator or a Dask pod did not do what the scenario needs; the message says what."""


# --- pulumi.com/waitFor ------------------------------------------------------------------------
_JSONPATH = re.compile(r"^jsonpath=\{\.(?P<path>[A-Za-z0-9_.]+)\}(?:=(?P<value>.*))?$")


def wait_for_met(condition: str, obj: dict[str, Any]) -> bool:
    """Whether `obj` satisfies a `pulumi.com/waitFor` `jsonpath=` condition, as kubectl wait
    reads one: `jsonpath={.a.b}=v` needs the field equal to `v`; `jsonpath={.a.b}` needs it
    present and non-empty."""
    match = _JSONPATH.match(condition.strip())
    if match is None:
        raise ValueError(f"pulumi.com/waitFor: {condition!r} is not a jsonpath={{.field}}[=value] condition")
    value: Any = obj
    for part in match.group("path").split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    if match.group("value") is None:
        return value not in (None, "", [], {})
    return str(value) == match.group("value")


# --- the operator's pod, from what helm installed --------------------------------------------------
def find_chart_operator(kube: Kube) -> dict[str, Any]:
    """The chart's operator Deployment (label app.kubernetes.io/name=dask-kubernetes-operator)."""
    found = kube.list("apps/v1", "Deployment", **{"labelSelector": f"app.kubernetes.io/name={CHART_NAME}"})
    if len(found) != 1:
        raise ScenarioError(f"expected one {CHART_NAME} Deployment installed by helm, found {len(found)}")
    return found[0]


OUTSIDE_CLUSTER_ROLE = "gpudask-operator-outside-cluster"


def outside_cluster_rbac(pod: OperatorPod) -> list[dict[str, Any]]:
    """The one right the chart's ClusterRole lacks because the operator normally runs inside
    the cluster: `pods/portforward`. Inside, it reaches the scheduler through the Service's DNS
    name; outside (here) its code port-forwards the Service through the API server instead
    (`dask_kubernetes.operator.networking.port_forward_service`)."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": OUTSIDE_CLUSTER_ROLE},
            "rules": [{"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["get", "create"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": OUTSIDE_CLUSTER_ROLE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OUTSIDE_CLUSTER_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": pod.service_account, "namespace": pod.namespace}],
        },
    ]


@dataclass
class DaskRuntime:
    cp: ControlPlane
    kube: Kube
    namespace: str
    kubelet: Kubelet
    operator: Operator
    operator_pod: OperatorPod
    tls_dir: Path | None = None  # the stand-in CA and client certificate, when the stack uses TLS
    nodes: Nodes | None = None  # the kwok nodes shaped like the stack's pools (engine.stack_cluster sets it)

    def get(self, kind: str, name: str, api_version: str = DASK_API) -> dict[str, Any] | None:
        try:
            return self.kube.get(self.kube.path(api_version, kind, name, self.namespace))
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, **params: str) -> list[dict[str, Any]]:
        return self.kube.list(api_version, kind, self.namespace, **params)

    def wait(self, what: str, predicate: Callable[[], bool], timeout: float, period: float = 0.3) -> float:
        """Seconds until `predicate()`; raises with the operator's log tail after `timeout`."""
        begin = time.monotonic()
        while not predicate():
            if time.monotonic() - begin > timeout:
                raise ScenarioError(
                    f"{what}: not reached within {timeout:.0f}s\n--- operator log ---\n{self.operator.log_tail()}\n"
                    f"--- kubelet ---\n" + "\n".join(self.kubelet.log[-15:])
                )
            time.sleep(period)
        return time.monotonic() - begin

    def events(self) -> list[str]:
        """The operator's Kubernetes Events on Dask objects, oldest first (`kubectl get events`)."""
        items = self.kube.list("v1", "Event", self.namespace)
        items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        return [
            f"{e['involvedObject']['kind']}/{e['involvedObject']['name']}: {e.get('reason', '')} {e.get('message', '')}".strip()
            for e in items
            if e["involvedObject"].get("apiVersion", "").startswith("kubernetes.dask.org")
        ]

    def scheduler_address(self, cluster: str) -> str:
        """`tcp://` or `tls://` loopback address of the cluster's running scheduler pod (a client
        inside the cluster would use the Service name; here the kubelet stand-in's port map)."""
        for backed in self.kubelet.pods.values():
            if (
                backed.component == "scheduler"
                and backed.labels.get("dask.org/cluster-name") == cluster
                and backed.process is not None
                and not backed.deleting
            ):
                comm = backed.named_ports["tcp-comm"]
                protocol = "tls" if "tls" in backed.argv else "tcp"
                return f"{protocol}://127.0.0.1:{backed.ports[comm]}"
        raise ScenarioError(f"no running scheduler pod for DaskCluster {cluster}")

    def client_security(self, address: str = "tls://") -> Any:
        """`distributed.Security` with the stand-in client certificate when the stack uses TLS
        and `address` (a scheduler address) is a `tls://` one; None otherwise (a Security that
        requires encryption refuses a plain `tcp://` scheduler)."""
        folder = self.tls_dir
        if folder is None or not (folder / "client.pem").exists() or not address.startswith("tls://"):
            return None
        from distributed.security import Security

        return Security(
            tls_ca_file=str(folder / "ca.pem"),
            tls_client_cert=str(folder / "client.pem"),
            tls_client_key=str(folder / "client-key.pem"),
            require_encryption=True,
        )

    def worker_deployments(self, group: str | None = None) -> list[str]:
        selector = "dask.org/component=worker" + (f",dask.org/workergroup-name={group}" if group else "")
        return sorted(d["metadata"]["name"] for d in self.list("apps/v1", "Deployment", labelSelector=selector))


@contextlib.contextmanager
def dask_runtime(
    cp: ControlPlane,
    namespace: str,
    workdir: Path,
    gpu: bool | None = None,
    operator_timeout: float = 90.0,
    pull_s: Callable[[Mapping[str, Any]], float] | None = None,
) -> Iterator[DaskRuntime]:
    """The kubelet stand-in for `namespace` and the chart's operator (with the ConfigMaps its
    Deployment mounts), both running; stopped (processes killed and reaped) when the block ends."""
    kube = Kube(cp.kubeconfig)
    pod = chart_operator(find_chart_operator(kube))
    for obj in outside_cluster_rbac(pod):
        kube.apply(obj, "gpudask-runtime")
    token_kubeconfig = cp.kubeconfig_for(pod.service_account, pod.namespace)
    kubelet = Kubelet(cp.kubeconfig, namespace, workdir / "pods", gpu=gpu, pull_s=pull_s)
    # The ConfigMaps its pod mounts (the stack's scale-down plugin), read as the kubelet would:
    # the operator runs with the plugin exactly where the chart's Deployment says it does on GKE.
    operator = Operator(pod, token_kubeconfig, workdir / "operator", config_maps=config_maps_for(kube, pod))
    with kubelet, operator:
        operator.start(timeout=operator_timeout)
        yield DaskRuntime(cp, kube, namespace, kubelet, operator, pod)


def dask_namespace(rec: Recording) -> str:
    """The namespace of the stack's DaskCluster (the one whose pods run as processes)."""
    from gpudask.local.rehearse import dask_cluster_and_groups

    cluster, _ = dask_cluster_and_groups(rec)
    return str(cluster["metadata"].get("namespace") or "default")


def settle_dask(runtime: DaskRuntime, timeout: float) -> tuple[float, list[str]]:
    """Wait until every Dask pod the operator made is backed by a Ready process (or `timeout`);
    (seconds, problems). A problem is a pod not running/Ready, a pod the stand-in refused,
    or an API request the operator was refused (RBAC)."""
    began = time.monotonic()

    def pending() -> list[str]:
        pods = runtime.list("v1", "Pod", labelSelector="dask.org/cluster-name")
        backed = {b.uid: b for b in runtime.kubelet.pods.values()}
        out = []
        for pod in pods:
            b = backed.get(pod["metadata"]["uid"])
            if b is None or b.process is None or b.process.poll() is not None or not b.ready:
                out.append(
                    f"pod {pod['metadata']['name']} is not running Ready ({(pod.get('status') or {}).get('phase')})"
                )
        if not pods:
            out.append("no Dask pod exists (did the operator create the cluster?)")
        return out

    left = pending()
    while left and time.monotonic() - began < timeout:
        time.sleep(1)
        left = pending()
    problems = left + runtime.kubelet.errors + [f"operator refused: {line}" for line in runtime.operator.forbidden()]
    return time.monotonic() - began, problems


def print_runtime(runtime: DaskRuntime, out: Callable[[str], None] = print) -> None:
    """What `rehearse --cluster` shows of the Dask half: the operator, its events, each Dask pod."""
    out(
        f"operator: kopf run -m {runtime.operator.argv()[5]} as ServiceAccount "
        f"{runtime.operator_pod.namespace}/{runtime.operator_pod.service_account} "
        f"(answered its liveness probe {runtime.operator.start_s:.1f} s after start)"
    )
    events = runtime.events()
    if events:
        out(f"operator events ({len(events)}):")
    else:
        # kopf posts the handlers' log lines as Events only with settings.posting.loggers, which
        # dask-kubernetes' startup leaves at kopf's default, False (GOTCHAS.md, 2026-11-23).
        events = runtime.operator.handler_lines()
        out(
            f"operator events: none posted (kopf {importlib.metadata.version('kopf')}: settings.posting.loggers "
            f"is off); its handler log lines instead ({len(events)}):"
        )
    for line in events:
        out(f"  {line}")
    out("Dask pods (process-backed):")
    for name, node, role, ready, restarts in runtime.kubelet.placements():
        out(f"  {name} on {node} ({role}): {'Ready' if ready else 'not Ready'}, restarts {restarts}")
    for line in runtime.kubelet.log:
        if "swapped" in line or "cannot" in line:
            out(f"  note: {line}")
