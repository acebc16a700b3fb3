"""Broken variants the real engine runs (gpudask/local/engine/program.py loads them by `tests.engine_variants:<name>`).

A transform variant edits one resource's inputs as the engine sees them (camelCase, resolved) or its options,
and returns True when it changed something; a hook variant declares something more after the Kubernetes half.
Each is named in the test id that uses it and in that test's output.
"""

from __future__ import annotations

import time
from typing import Any

DASK_CLUSTER = "kubernetes:kubernetes.dask.org/v1:DaskCluster"
DASK_WORKER_GROUP = "kubernetes:kubernetes.dask.org/v1:DaskWorkerGroup"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def drop_scheduler_tolerations(type_: str, _name: str, props: dict[str, Any], _opts: Any) -> bool:
    """The scheduler then fits no node of the stack's pools (they are all tainted but the system pool's)."""
    if type_ != DASK_CLUSTER:
        return False
    return props["spec"]["scheduler"]["spec"].pop("tolerations", None) is not None


def no_replace_on_changes(type_: str, _name: str, _props: dict[str, Any], opts: Any) -> bool:
    """The DaskCluster without `replaceOnChanges`: a pod-spec change becomes an in-place update (#895)."""
    if type_ != DASK_CLUSTER or not opts.replace_on_changes:
        return False
    opts.replace_on_changes = None
    return True


def stamp_deploy_time(type_: str, _name: str, props: dict[str, Any], _opts: Any) -> bool:
    """A classic: an annotation with the time of the run, so no two `up`s agree."""
    if type_ != "kubernetes:core/v1:Namespace":
        return False
    props.setdefault("metadata", {}).setdefault("annotations", {})["example.com/deployed-at"] = str(time.time())
    return True


def read_operator_service_as_before(settings: Any, dask: Any, provider: Any) -> None:
    """The read the stack made before it owned its Service: the operator's scheduler Service, read once the
    DaskCluster has an id; the operator creates it after it writes the phase the engine awaits."""
    import pulumi
    import pulumi_kubernetes as k8s

    name, namespace = settings.dask.name, settings.dask.namespace
    service_id = dask.dask_cluster.id.apply(lambda _: f"{namespace}/{name}-scheduler")
    service = k8s.core.v1.Service.get(
        "dask-scheduler-service", service_id, opts=pulumi.ResourceOptions(parent=dask, provider=provider)
    )
    pulumi.export("operatorServiceClusterIp", service.spec.cluster_ip)


def _without_preload(props: dict[str, Any]) -> None:
    container = props["spec"]["scheduler"]["spec"]["containers"][0]
    args = container.get("args") or []
    while "--preload" in args:
        at = args.index("--preload")
        del args[at : at + 2]


def without_operator_plugin(type_: str, _name: str, props: dict[str, Any], _opts: Any) -> bool:
    """The operator's Helm release without the stack's scale-down plugin (issue 21): the stock
    operator chooses which workers a scale-down removes."""
    if type_ != HELM_RELEASE:
        return False
    from components import operator_plugin_spec

    plugin = operator_plugin_spec.chart_values()
    values = props.get("values") or {}
    before = {key: list(values.get(key) or []) for key in plugin}
    for key, entries in plugin.items():
        values[key] = [entry for entry in values.get(key) or [] if entry not in entries]
    return any(values[key] != before[key] for key in plugin)


def before_issue_10(type_: str, name: str, props: dict[str, Any], opts: Any) -> bool:
    """The stack as it was before issue 10: the scheduler without the preload that refuses the
    operator's count-only retirement (dask/dask-kubernetes#914), and (as before issue 21) the
    operator without the plugin, which would choose the scaled group's own workers."""
    if type_ == DASK_CLUSTER:
        _without_preload(props)
        return True
    return without_operator_plugin(type_, name, props, opts)


def before_issue_10_one_worker(type_: str, name: str, props: dict[str, Any], opts: Any) -> bool:
    """`before_issue_10`, and the default group starting at one worker, above the autoscaler's minimum (#817)."""
    if not before_issue_10(type_, name, props, opts):
        return False
    if type_ == DASK_CLUSTER:
        props["spec"]["worker"]["replicas"] = 1
    return True


def _without_prestop(type_: str, props: dict[str, Any]) -> bool:
    if type_ not in (DASK_CLUSTER, DASK_WORKER_GROUP):
        return False
    for container in props["spec"]["worker"]["spec"]["containers"]:
        container.pop("lifecycle", None)
    return True


def without_plugin_or_prestop(type_: str, name: str, props: dict[str, Any], opts: Any) -> bool:
    """No plugin, and every worker container without its preStop hook: a scale-down deletes
    Deployments the stock operator names and the kubelet goes straight to SIGTERM."""
    return _without_prestop(type_, props) or without_operator_plugin(type_, name, props, opts)


def misspelt_worker_affinity(type_: str, _name: str, props: dict[str, Any], _opts: Any) -> bool:
    """`affinity` typed as `affinty` in the DaskCluster's worker pod spec."""
    if type_ != DASK_CLUSTER:
        return False
    spec = props["spec"]["worker"]["spec"]
    spec["affinty"] = spec.pop("affinity", {})
    return True


def privileged_scheduler(type_: str, _name: str, props: dict[str, Any], _opts: Any) -> bool:
    """The scheduler container privileged (the scheduler always runs; dev's GPU group rests at zero workers):
    Pod Security "restricted" must refuse its pod."""
    if type_ != DASK_CLUSTER:
        return False
    props["spec"]["scheduler"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    return True


def misspelt_driver_affinity(type_: str, _name: str, props: dict[str, Any], _opts: Any) -> bool:
    """The driver DaemonSet's accelerator key misspelt: admitted, matches no node."""
    if type_ != DAEMON_SET:
        return False
    terms = props["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    for term in terms:
        for expression in term["matchExpressions"]:
            if expression["key"] == "cloud.google.com/gke-accelerator":
                expression["key"] = "cloud.google.com/gke-acelerator"
    return True


def orphaning_driver_destroy(type_: str, _name: str, props: dict[str, Any], _opts: Any) -> bool:
    """The driver DaemonSet deleted with `orphan` propagation (the provider's pulumi.com/deletionPropagationPolicy):
    its pods outlive it in kube-system, which is never deleted."""
    if type_ != DAEMON_SET:
        return False
    annotations = props.setdefault("metadata", {}).setdefault("annotations", {})
    annotations["pulumi.com/deletionPropagationPolicy"] = "orphan"
    return True
