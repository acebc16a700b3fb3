"""Broken variants the real engine runs (gpudask/local/engine/program.py loads them by `tests.engine_variants:<name>`).

A transform variant edits one resource's inputs as the engine sees them (camelCase, resolved) or its options,
and returns True when it changed something; a hook variant declares something more after the Kubernetes half.
Each is named in the test id that uses it and in that test's output.
"""

from __future__ import annotations

import time
from typing import Any

DASK_CLUSTER = "kubernetes:kubernetes.dask.org/v1:DaskCluster"


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
