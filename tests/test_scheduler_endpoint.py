"""The stack owns its client endpoint: a Service of its own on a reserved internal address.

Under Pulumi's mocks (the recorder): the address, the Service and the export. What the real
engine must show (the address and the Service surviving a DaskCluster replacement on a
control plane) is the lead's real_pulumi test; see /work/notes/issue-22.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from components import dask_spec, scheduler_endpoint_spec
from components.dask_cluster import GpuDaskCluster, GpuDaskClusterArgs
from gpudask.plan import report as planning
from gpudask.record.dask_operator import created_objects
from gpudask.record.recorder import Recording, load_config, record
from tests.conftest import STACKS, settings_for

Run = Callable[..., Recording]
ADDRESS = "gcp:compute/address:Address"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
SERVICE = "kubernetes:core/v1:Service"
DASK_CLUSTER = "kubernetes:kubernetes.dask.org/v1:DaskCluster"


def _registered(rec: Recording) -> dict[str, Any]:
    return rec.one("gpu-dask:dask_cluster:GpuDaskCluster").registered_outputs or {}


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_prod_reserves_an_internal_address_in_its_own_subnet(recorded: Run) -> None:
    rec, s = recorded("prod"), settings_for("prod")
    assert s.dask.scheduler_service == "InternalLoadBalancer"
    address = rec.one(ADDRESS)
    subnet = rec.one(SUBNET)
    assert address.inputs["addressType"] == "INTERNAL"
    assert address.inputs["purpose"] == "GCE_ENDPOINT"
    assert address.inputs["subnetwork"] == subnet.id
    assert address.inputs["region"] == subnet.inputs["region"] == s.region
    assert address.inputs["project"] == s.project


@pytest.mark.parametrize("stack", STACKS)
def test_only_stacks_with_an_internal_load_balancer_reserve_an_address(recorded: Run, stack: str) -> None:
    rec, s = recorded(stack), settings_for(stack)
    wants = s.dask.scheduler_service == "InternalLoadBalancer" and s.existing_cluster is None
    assert len(rec.of_type(ADDRESS)) == (1 if wants else 0)


def test_the_stacks_own_service_serves_the_scheduler_on_the_reserved_address(recorded: Run) -> None:
    rec, s = recorded("prod"), settings_for("prod")
    address = rec.one(ADDRESS).outputs["address"]
    services = [r for r in rec.of_type(SERVICE)]
    # No read of the operator's Service anywhere (it does not exist when the program runs).
    assert [r.name for r in services if r.read] == []
    (service,) = services
    spec, meta = service.inputs["spec"], service.inputs["metadata"]
    assert spec["type"] == "LoadBalancer"
    assert spec["loadBalancerIP"] == address
    assert meta["annotations"]["networking.gke.io/load-balancer-type"] == "Internal"
    assert spec["loadBalancerSourceRanges"] == list(s.dask.client_cidrs)
    assert spec["externalTrafficPolicy"] == "Local"
    assert meta["namespace"] == s.dask.namespace
    # The export is the reserved address itself, not whatever the Service reports.
    assert rec.outputs["internalLoadBalancerIp"] == address
    assert _registered(rec)["internalLoadBalancerIp"] == address


def test_the_service_selects_the_scheduler_pod_the_operator_builds_and_nothing_else() -> None:
    s = settings_for("prod")
    service = scheduler_endpoint_spec.internal_endpoint(s.dask, "10.10.0.42")
    groups = [dask_spec.dask_worker_group(s.dask, g) for g in s.dask.worker_groups.values()]
    objects = created_objects(dask_spec.dask_cluster(s.dask), groups)
    pods = {
        obj["metadata"]["name"]: obj["spec"]["template"]["metadata"]["labels"]
        for obj in objects
        if obj["kind"] == "Deployment"
    }
    selected = sorted(name for name, labels in pods.items() if _selects(service["spec"]["selector"], labels))
    assert selected == [f"{s.dask.name}-scheduler"], pods
    # Its ports are the scheduler container's named ports.
    (scheduler,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] in selected]
    container_ports = {p["name"] for p in scheduler["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports
    assert {p["port"] for p in service["spec"]["ports"]} == {8786, 8787}
    # The operator's handle_scheduler_service_status watches Services labelled
    # dask.org/component=scheduler and writes their load balancer state into the DaskCluster
    # phase: the stack's Service must not look like the operator's.
    assert not [k for k in service["metadata"]["labels"] if k.startswith("dask.org/")]
    assert service["metadata"]["name"] != f"{s.dask.name}-scheduler"


@pytest.mark.parametrize("stack", STACKS)
def test_the_operators_scheduler_service_stays_cluster_ip(stack: str) -> None:
    s = settings_for(stack)
    cluster = dask_spec.dask_cluster(s.dask)
    service = next(o for o in created_objects(cluster) if o["kind"] == "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert "networking.gke.io/load-balancer-type" not in (service["metadata"].get("annotations") or {})
    assert "loadBalancerSourceRanges" not in service["spec"]


def test_a_dask_cluster_replacement_leaves_the_address_and_the_service_alone(recorded: Run) -> None:
    base = recorded("prod")
    dask = json.loads(load_config("prod")["gpu-dask:dask"])
    dask["image"] = dask["image"].replace("26.10", "26.12")
    head = recorded("prod", overrides={"gpu-dask:dask": dask})
    diff = planning.diff_plans(planning.build_plan(base).to_json(), planning.build_plan(head).to_json())
    cluster_key = f"{DASK_CLUSTER}::dask-cluster"
    assert cluster_key in diff.replaced()
    service = head.one(SERVICE)
    assert f"{SERVICE}::{service.name}" not in diff.changed
    assert f"{ADDRESS}::{head.one(ADDRESS).name}" not in diff.changed
    # Tied to the cluster only by ordering: nothing makes the engine replace or delete it with it.
    cluster_urn = head.one(DASK_CLUSTER).urn
    assert service.replace_with == [] and service.deleted_with in (None, "")
    assert cluster_urn in service.dependencies
    assert head.outputs["internalLoadBalancerIp"] == base.outputs["internalLoadBalancerIp"]


def _component_alone(address: Any) -> Recording:
    s = settings_for("prod")

    def build() -> None:
        GpuDaskCluster("dask", GpuDaskClusterArgs(s.dask, internal_address=address))

    return record(build)


def test_the_kubernetes_half_declares_the_service_with_a_stand_in_address_and_no_gcp() -> None:
    rec = _component_alone("192.0.2.10")
    assert [r.type for r in rec.resources.values() if r.type.startswith("gcp:")] == []
    service = rec.one(SERVICE)
    assert service.inputs["spec"]["loadBalancerIP"] == "192.0.2.10"
    assert _registered(rec)["internalLoadBalancerIp"] == "192.0.2.10"


def test_without_a_reserved_address_the_ip_comes_from_the_services_own_status() -> None:
    rec = _component_alone(None)
    service = rec.one(SERVICE)
    assert "loadBalancerIP" not in service.inputs["spec"]
    ingress = service.outputs["status"]["loadBalancer"]["ingress"][0]["ip"]
    assert _registered(rec)["internalLoadBalancerIp"] == ingress
