"""Pure builders for the Dask namespace's guard rails: Pod Security labels, NetworkPolicies,
service account, PodDisruptionBudget, container security contexts, and mutual TLS.

A reachable Dask scheduler runs any code it is sent, so the network is the boundary:
default-deny ingress, the cluster's own pods talk freely, clients reach 8786 only from the
namespaces and ranges the stack config names, and only the operator reaches 8787 (its HTTP API).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from components.catalog import MANAGED_BY_LABELS
from components.operator_spec import NAMESPACE as OPERATOR_NAMESPACE
from components.settings import DaskSettings

COMM_PORT, DASHBOARD_PORT = 8786, 8787
# The RAPIDS images run as user `rapids`, uid 1001 (GOTCHAS.md); a numeric uid lets the
# kubelet verify runAsNonRoot.
RAPIDS_UID = 1001
POD_SECURITY_LEVEL = "restricted"

CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": RAPIDS_UID,
    # Not read-only: workers spill to local disk under their working directory.
    "readOnlyRootFilesystem": False,
}
POD_SECURITY_CONTEXT: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}

# distributed's default scheduler routes plus the HTTP API the operator uses to retire
# workers gracefully (https://github.com/dask/dask-kubernetes/issues/807); without it the operator falls back to the
# comm port, which TLS and the NetworkPolicies close to it.
SCHEDULER_HTTP_ROUTES = [
    "distributed.http.scheduler.prometheus",
    "distributed.http.scheduler.info",
    "distributed.http.scheduler.json",
    "distributed.http.health",
    "distributed.http.proxy",
    "distributed.http.statics",
    "distributed.http.scheduler.api",
]

TLS_DIR = "/etc/dask/tls"
TLS_VOLUME = "dask-tls"
TLS_FILES = ("ca.pem", "scheduler.pem", "scheduler-key.pem", "worker.pem", "worker-key.pem")


LABELS = MANAGED_BY_LABELS


def namespace(dask: DaskSettings) -> dict[str, Any]:
    """The dedicated namespace, with Pod Security Admission enforcing `restricted`."""
    psa = {
        f"pod-security.kubernetes.io/{mode}{suffix}": value
        for mode in ("enforce", "warn", "audit")
        for suffix, value in (("", POD_SECURITY_LEVEL), ("-version", "latest"))
    }
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": dask.namespace, "labels": {**LABELS, **psa}},
    }


def service_account_name(dask: DaskSettings) -> str:
    return f"{dask.name}-dask"


def service_account(dask: DaskSettings) -> dict[str, Any]:
    """Scheduler and workers need no Kubernetes API: no token is mounted."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": service_account_name(dask), "namespace": dask.namespace, "labels": LABELS},
        "automountServiceAccountToken": False,
    }


def _cluster_selector(dask: DaskSettings, component: str | None = None) -> dict[str, str]:
    selector = {"dask.org/cluster-name": dask.name}
    if component:
        selector["dask.org/component"] = component
    return selector


def _policy(dask: DaskSettings, suffix: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{dask.name}-{suffix}", "namespace": dask.namespace, "labels": LABELS},
        "spec": spec,
    }


def _namespace_peer(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def network_policies(dask: DaskSettings) -> dict[str, dict[str, Any]]:
    """NetworkPolicies keyed by a stable suffix (Dataplane V2 enforces them)."""
    clients = [_namespace_peer(ns) for ns in dask.client_namespaces]
    clients += [{"ipBlock": {"cidr": cidr}} for cidr in dask.client_cidrs]
    scheduler_ingress: list[dict[str, Any]] = [
        {"from": [_namespace_peer(OPERATOR_NAMESPACE)], "ports": [{"protocol": "TCP", "port": DASHBOARD_PORT}]}
    ]
    if clients:
        # Clients reach the comm port only (TLS when on). 8787 serves the dashboard and the
        # scheduler's HTTP API (`POST /api/v1/retire_workers`), plain and unauthenticated even
        # with TLS: the operator's namespace only. People use `kubectl port-forward`.
        scheduler_ingress.append({"from": clients, "ports": [{"protocol": "TCP", "port": COMM_PORT}]})
    return {
        "default-deny-ingress": _policy(dask, "default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}),
        "intra-cluster": _policy(
            dask,
            "intra-cluster",
            {
                "podSelector": {"matchLabels": _cluster_selector(dask)},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": _cluster_selector(dask)}}]}],
            },
        ),
        "scheduler-clients": _policy(
            dask,
            "scheduler-clients",
            {
                "podSelector": {"matchLabels": _cluster_selector(dask, "scheduler")},
                "policyTypes": ["Ingress"],
                "ingress": scheduler_ingress,
            },
        ),
    }


# What clients in `clientNamespaces` may do with the Kubernetes API in the Dask namespace: what the
# seeds' `KubeCluster.from_name` reads (the DaskCluster, its scheduler Pod and Service, worker groups:
# dask_kubernetes 2026.3.0 operator/kubecluster `_connect_cluster`, networking `wait_for_scheduler`,
# kr8s `Service.ready`), and scaling a group (patch a DaskWorkerGroup, what `conn.scale` does).
# Never delete: `KubeCluster.scale()` deletes the DaskAutoscaler before it scales (GOTCHAS), so
# for these clients it is refused and the autoscaler stays.
CLIENT_READ = ("get", "list", "watch")
CLIENT_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["kubernetes.dask.org"],
        "resources": ["daskclusters", "daskworkergroups", "daskautoscalers"],
        "verbs": list(CLIENT_READ),
    },
    {"apiGroups": ["kubernetes.dask.org"], "resources": ["daskworkergroups"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["pods", "services"], "verbs": list(CLIENT_READ)},
]


def client_role_name(dask: DaskSettings) -> str:
    return f"{dask.name}-clients"


def client_role(dask: DaskSettings) -> dict[str, Any] | None:
    """The Role client namespaces' ServiceAccounts get in the Dask namespace; None without any."""
    if not dask.client_namespaces:
        return None
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": client_role_name(dask), "namespace": dask.namespace, "labels": LABELS},
        "rules": copy.deepcopy(CLIENT_RULES),
    }


def client_role_binding(dask: DaskSettings) -> dict[str, Any] | None:
    """Binds the client Role to every ServiceAccount of each client namespace (their group)."""
    if not dask.client_namespaces:
        return None
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": client_role_name(dask), "namespace": dask.namespace, "labels": LABELS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": client_role_name(dask)},
        "subjects": [
            {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": f"system:serviceaccounts:{ns}"}
            for ns in dask.client_namespaces
        ],
    }


def _disruption_budget(dask: DaskSettings, component: str, suffix: str, max_unavailable: int) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": f"{dask.name}-{suffix}", "namespace": dask.namespace, "labels": LABELS},
        "spec": {"maxUnavailable": max_unavailable, "selector": {"matchLabels": _cluster_selector(dask, component)}},
    }


def worker_disruption_budget(dask: DaskSettings) -> dict[str, Any]:
    """At most one worker evicted at a time (node upgrades, autoscaler scale-down): the rest
    keep their data while the scheduler recomputes what the evicted one held."""
    return _disruption_budget(dask, "worker", "workers", max_unavailable=1)


def scheduler_disruption_budget(dask: DaskSettings) -> dict[str, Any]:
    """No voluntary eviction of the scheduler (node drains for upgrades, autoscaler scale-down):
    it holds the whole cluster's state. A node failure still loses it (README)."""
    return _disruption_budget(dask, "scheduler", "scheduler", max_unavailable=0)


# --- TLS -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CertSpec:
    """One certificate signed by the cluster's CA."""

    common_name: str
    dns_names: tuple[str, ...]


def tls_secret_name(dask_cluster: str) -> str:
    return f"{dask_cluster}-tls"


# What the scheduler and workers mount from the TLS Secret (DaskTls and the real-engine stand-in both write it).
TLS_SECRET_KEYS = ("ca.pem", "scheduler.pem", "scheduler-key.pem", "worker.pem", "worker-key.pem")


def tls_secret_metadata(dask_cluster: str, namespace: str) -> dict[str, Any]:
    """Name, namespace and labels of the TLS Secret of `dask_cluster`."""
    return {"name": tls_secret_name(dask_cluster), "namespace": namespace, "labels": LABELS}


def certificate_specs(dask_cluster: str, namespace: str) -> dict[str, CertSpec]:
    """Scheduler, worker and client certificates of DaskCluster `dask_cluster` in `namespace`
    (distributed checks the CA, not host names)."""
    service = f"{dask_cluster}-scheduler"
    return {
        "scheduler": CertSpec(
            f"{service}.{namespace}",
            (
                service,
                f"{service}.{namespace}",
                f"{service}.{namespace}.svc",
                f"{service}.{namespace}.svc.cluster.local",
                "localhost",  # through `kubectl port-forward`
            ),
        ),
        "worker": CertSpec(f"{dask_cluster}-worker.{namespace}", (f"{dask_cluster}-worker.{namespace}",)),
        "client": CertSpec(f"{dask_cluster}-client", (f"{dask_cluster}-client",)),
    }


def tls_env(role: str, dask: DaskSettings) -> list[dict[str, str]]:
    """The dask config, as environment variables, for a scheduler or worker with mutual TLS."""
    env = [
        {"name": "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION", "value": "True"},
        {"name": "DASK_DISTRIBUTED__COMM__TLS__CA_FILE", "value": f"{TLS_DIR}/ca.pem"},
        {"name": f"DASK_DISTRIBUTED__COMM__TLS__{role.upper()}__CERT", "value": f"{TLS_DIR}/{role}.pem"},
        {"name": f"DASK_DISTRIBUTED__COMM__TLS__{role.upper()}__KEY", "value": f"{TLS_DIR}/{role}-key.pem"},
    ]
    if role == "worker":
        # Set explicitly: the operator injects a tcp:// address only when none is given.
        env.append({"name": "DASK_SCHEDULER_ADDRESS", "value": dask.scheduler_address})
    return env


def _merge_env(container: dict[str, Any], extra: list[dict[str, str]]) -> None:
    names = {e["name"] for e in extra}
    container["env"] = [e for e in container.get("env") or [] if e["name"] not in names] + extra


def harden_pod(spec: dict[str, Any], dask: DaskSettings, role: str) -> dict[str, Any]:
    """A scheduler (`role="scheduler"`) or worker pod spec with the namespace's guard rails."""
    spec = copy.deepcopy(spec)
    spec["serviceAccountName"] = service_account_name(dask)
    spec["automountServiceAccountToken"] = False
    spec["securityContext"] = {**POD_SECURITY_CONTEXT, **(spec.get("securityContext") or {})}
    for container in spec["containers"]:
        container["securityContext"] = copy.deepcopy(CONTAINER_SECURITY_CONTEXT)
        if role == "scheduler":
            routes = "[" + ", ".join(f'"{r}"' for r in SCHEDULER_HTTP_ROUTES) + "]"
            _merge_env(container, [{"name": "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES", "value": routes}])
        if dask.tls:
            _merge_env(container, tls_env(role, dask))
            container["volumeMounts"] = [
                *(container.get("volumeMounts") or []),
                {"name": TLS_VOLUME, "mountPath": TLS_DIR, "readOnly": True},
            ]
            if role == "scheduler":
                args = list(container.get("args") or [])
                container["args"] = [*args, "--protocol", "tls"] if "--protocol" not in args else args
    if dask.tls:
        spec["volumes"] = [
            *(spec.get("volumes") or []),
            {"name": TLS_VOLUME, "secret": {"secretName": tls_secret_name(dask.name), "defaultMode": 0o440}},
        ]
        # The key files are group-readable by the pod's fsGroup only.
        spec["securityContext"]["fsGroup"] = RAPIDS_UID
    return spec


# --- metrics collectors ----------------------------------------------------------------------------
# GKE's managed collector: DaemonSet `collector` in `gmp-system`, pods labelled
# `app.kubernetes.io/name: collector`, not on the host network (GoogleCloudPlatform/prometheus-engine
# manifests/operator.yaml, GOTCHAS.md).
GMP_NAMESPACE = "gmp-system"
GMP_COLLECTOR_LABELS = {"app.kubernetes.io/name": "collector"}
# Prometheus-operator labels the pods of every Prometheus it runs `app.kubernetes.io/name: prometheus`.
PROMETHEUS_LABELS = {"app.kubernetes.io/name": "prometheus"}


def collector_peer(collection: str, prometheus_namespace: str = "monitoring") -> dict[str, Any] | None:
    """The one peer that scrapes Dask: both selectors in one peer, so both must match (AND)."""
    if collection == "gmp":
        namespace, labels = GMP_NAMESPACE, GMP_COLLECTOR_LABELS
    elif collection == "prometheus-operator":
        namespace, labels = prometheus_namespace, PROMETHEUS_LABELS
    else:
        return None
    return {**_namespace_peer(namespace), "podSelector": {"matchLabels": dict(labels)}}


def collector_network_policies(
    dask: DaskSettings, peer: dict[str, Any] | None, scheduler_port: int, worker_port: int
) -> dict[str, dict[str, Any]]:
    """Admit the metrics collector `peer` to the scheduler's `scheduler_port` and the workers'
    `worker_port` (where each serves /metrics), and nothing else. Added to the policies above
    (NetworkPolicies are a union): None -> no policy."""
    if peer is None:
        return {}
    return {
        component: _policy(
            dask,
            f"metrics-{component}",
            {
                "podSelector": {"matchLabels": _cluster_selector(dask, component)},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [peer], "ports": [{"protocol": "TCP", "port": port}]}],
            },
        )
        for component, port in (("scheduler", scheduler_port), ("worker", worker_port))
    }


def is_collector_peer(peer: dict[str, Any]) -> bool:
    """Whether `peer` is exactly a metrics collector (both selectors, nothing broader): such a
    peer may reach the scheduler's 8787, where /metrics is served with the rest of its HTTP server."""
    pods = (peer.get("podSelector") or {}).get("matchLabels")
    namespace = (peer.get("namespaceSelector") or {}).get("matchLabels")
    if set(peer) != {"podSelector", "namespaceSelector"} or not pods or not namespace:
        return False
    if pods == GMP_COLLECTOR_LABELS:
        return namespace == {"kubernetes.io/metadata.name": GMP_NAMESPACE}
    return pods == PROMETHEUS_LABELS and set(namespace) == {"kubernetes.io/metadata.name"}
