"""What the scheduler and worker pods the operator builds from our specs do on a real node.

Issue 10, points 5 (memory limits and spill), 6 (one GPU per worker pod), 7 (a busy scheduler
is not killed, nor evicted voluntarily) and 10 (8787 is the operator's only). Every pod is built
by the operator's own functions (`gpudask.record.dask_operator.created_objects`), every worker command
line is parsed by distributed's own CLI and memory-limit code.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any

import pytest
from distributed import system
from distributed.cli.dask_worker import main as dask_worker_cli
from distributed.worker_memory import parse_memory_limit

from components import dask_spec, scheduler_endpoint_spec, security_spec
from components.catalog import A100_MACHINE_TYPES, CPU_MACHINE_TYPES
from components.operator_spec import NAMESPACE as OPERATOR_NAMESPACE
from components.settings import SettingsError, StackSettings
from gpudask.plan.checks import _quantity_gb
from gpudask.record.dask_operator import created_objects
from tests.conftest import STACKS, raw_config, settings_for


def _workers(s: StackSettings) -> list[dict[str, Any]]:
    groups = [dask_spec.dask_worker_group(s.dask, g) for g in s.dask.worker_groups.values()]
    objects = created_objects(dask_spec.dask_cluster(s.dask), groups)
    return [o for o in objects if o["metadata"]["labels"].get("dask.org/component") == "worker"]


def _node_vcpus(s: StackSettings, pod: dict[str, Any]) -> int:
    pool = (pod.get("nodeSelector") or {}).get(dask_spec.NODEPOOL_LABEL)
    if pool == "system" or not pod["containers"][0]["resources"]["limits"].get(dask_spec.GPU_RESOURCE):
        return CPU_MACHINE_TYPES[s.system_machine_type].vcpu
    pools = [s.gpu_node_pools[pool]] if pool else list(s.gpu_node_pools.values())
    return max(A100_MACHINE_TYPES[p.machine_type].vcpu for p in pools)


def _bytes(quantity: str) -> int:
    return round(_quantity_gb(quantity) * 1024**3)


@pytest.mark.parametrize("stack", STACKS)
def test_every_workers_dask_memory_limit_is_its_containers(stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_for(stack)
    for worker in _workers(s):
        pod = worker["spec"]["template"]["spec"]
        container = pod["containers"][0]
        limit = _bytes(container["resources"]["limits"]["memory"])
        # What distributed's CLI makes of the container's args (`dask-cuda-worker` takes the same options).
        params = dask_worker_cli.make_context(
            "dask worker", ["tcp://scheduler:8786", *_options(container["args"])]
        ).params
        # Inside the container, the cgroup limit is what Dask sees as the machine's memory; the
        # CPU count is the node's (no CPU limit is set).
        monkeypatch.setattr(system, "MEMORY_LIMIT", limit)
        dask_limit = parse_memory_limit(
            params["memory_limit"], params["nthreads"], total_cores=_node_vcpus(s, pod), logger=logging.getLogger()
        )
        assert dask_limit == limit, (worker["metadata"]["name"], params["memory_limit"], dask_limit, limit)


@pytest.mark.parametrize("stack", STACKS)
def test_workers_spill_to_a_size_limited_empty_dir_they_request(stack: str) -> None:
    s = settings_for(stack)
    for worker in _workers(s):
        pod = worker["spec"]["template"]["spec"]
        container = pod["containers"][0]
        params = dask_worker_cli.make_context(
            "dask worker", ["tcp://scheduler:8786", *_options(container["args"])]
        ).params
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == params["local_directory"])
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        size = _bytes(volume["emptyDir"]["sizeLimit"])
        assert size > 0
        resources = container["resources"]
        assert _bytes(resources["requests"]["ephemeral-storage"]) >= size
        assert _bytes(resources["limits"]["ephemeral-storage"]) >= size


@pytest.mark.parametrize("key", ["gpusPerWorker", "workerGroups"])
def test_several_gpus_per_worker_pod_are_refused_with_the_supported_layout(key: str) -> None:
    pools = {"a100": {"machineType": "a2-highgpu-4g", "maxNodes": 2}}
    dask: dict[str, Any] = {"name": "rapids", "worker": {"replicas": 2}}
    if key == "gpusPerWorker":
        dask["worker"]["gpusPerWorker"] = 2
        where = "dask.worker.gpusPerWorker: 2"
    else:
        dask["workerGroups"] = {"big": {"gpusPerWorker": 4, "replicas": 1}}
        where = "dask.workerGroups.big.gpusPerWorker: 4"
    with pytest.raises(SettingsError) as err:
        settings_for("dev", gpuNodePools=pools, dask=dask)
    line = next(p for p in err.value.problems if p.startswith(where))
    assert "<name>-0..N-1" in line and "gpusPerWorker: 1" in line


def _tolerated_block_s(probe: dict[str, Any]) -> int:
    """How long /health may hang before the kubelet restarts the container (Kubernetes
    defaults: period 10 s, timeout 1 s, failureThreshold 3)."""
    period, timeout, failures = (
        probe.get("periodSeconds", 10),
        probe.get("timeoutSeconds", 1),
        probe.get("failureThreshold", 3),
    )
    return period * (failures - 1) + timeout


@pytest.mark.parametrize("stack", STACKS)
def test_a_busy_scheduler_is_neither_killed_nor_evicted(stack: str) -> None:
    s = settings_for(stack)
    scheduler = created_objects(dask_spec.dask_cluster(s.dask))[0]
    pod = scheduler["spec"]["template"]
    liveness = pod["spec"]["containers"][0]["livenessProbe"]
    # Deserializing a large graph can block the event loop for minutes.
    assert _tolerated_block_s(liveness) >= 240, liveness
    # ... nor taken out of its Service (new clients and workers refused) while busy (issue 21, point 7).
    readiness = pod["spec"]["containers"][0]["readinessProbe"]
    assert _tolerated_block_s(readiness) >= 240, readiness
    assert pod["metadata"]["annotations"][dask_spec.SAFE_TO_EVICT_ANNOTATION] == "false"
    pdb = security_spec.scheduler_disruption_budget(s.dask)
    assert pdb["spec"]["maxUnavailable"] == 0
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    # ... and it selects no worker (workers have their own budget of one at a time).
    for worker in _workers(s):
        assert not pdb["spec"]["selector"]["matchLabels"].items() <= worker["metadata"]["labels"].items()


def _peer_matches(peer: dict[str, Any], source: dict[str, Any]) -> bool:
    if "ipBlock" in peer:
        return source.get("ip") is not None and ipaddress.ip_address(source["ip"]) in ipaddress.ip_network(
            peer["ipBlock"]["cidr"]
        )
    if "namespaceSelector" in peer and "podSelector" not in peer:
        return peer["namespaceSelector"]["matchLabels"].items() <= source.get("namespace_labels", {}).items()
    if "podSelector" in peer and "namespaceSelector" not in peer:
        same_namespace = source.get("namespace") == source.get("target_namespace")
        return same_namespace and peer["podSelector"].get("matchLabels", {}).items() <= source.get("labels", {}).items()
    return False


def reachable_ports(policies: list[dict[str, Any]], target_labels: dict[str, str], source: dict[str, Any]) -> set[int]:
    """NetworkPolicy ingress semantics: the union of what every selecting policy allows."""
    ports: set[int] = set()
    for policy in policies:
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        if not selector.items() <= target_labels.items():
            continue
        for rule in policy["spec"].get("ingress") or []:
            if not any(_peer_matches(p, source) for p in rule.get("from") or []):
                continue
            rule_ports = rule.get("ports")
            ports |= {p["port"] for p in rule_ports} if rule_ports else {8786, 8787}
    return ports


@pytest.mark.parametrize("stack", STACKS)
def test_clients_reach_only_the_comm_port_and_8787_is_the_operators(stack: str) -> None:
    s = settings_for(
        stack, dask={**_dask_raw(stack), "clientNamespaces": ["notebooks"], "clientCidrs": ["10.10.8.0/24"]}
    )
    policies = list(security_spec.network_policies(s.dask).values())
    scheduler = created_objects(dask_spec.dask_cluster(s.dask))[0]
    labels = scheduler["spec"]["template"]["metadata"]["labels"]
    ns = s.dask.namespace

    def source(namespace: str | None = None, ip: str | None = None) -> dict[str, Any]:
        meta = {"kubernetes.io/metadata.name": namespace} if namespace else {}
        return {"namespace": namespace, "namespace_labels": meta, "ip": ip, "target_namespace": ns}

    assert reachable_ports(policies, labels, source("notebooks")) == {8786}
    assert reachable_ports(policies, labels, source(ip="10.10.8.7")) == {8786}
    assert reachable_ports(policies, labels, source(OPERATOR_NAMESPACE)) == {8787}
    assert reachable_ports(policies, labels, source("default")) == set()


def _dask_raw(stack: str) -> dict[str, Any]:
    raw, _ = raw_config(stack)
    dask = raw["dask"]
    return json.loads(dask) if isinstance(dask, str) else dict(dask)


def test_an_internal_load_balancer_keeps_client_source_ips() -> None:
    s = settings_for("prod")
    assert s.dask.scheduler_service == "InternalLoadBalancer"
    service = scheduler_endpoint_spec.internal_endpoint(s.dask, "10.10.0.42")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["externalTrafficPolicy"] == "Local"


def _options(args: list[str]) -> list[str]:
    """The options after the command (`dask worker` or `dask-cuda-worker`)."""
    return args[args.index("--name") :]
