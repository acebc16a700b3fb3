"""The stack's objects against the real API server, scheduler and controllers (scenarios a, f, g of issue 12).

(a) a fresh apply of every stack: everything admitted, the operator and the driver where they belong,
    nothing Pending that should run; (f) destroy in Pulumi's reverse order leaves the namespaces empty;
the orphaning destroy is the broken variant the leftover check must catch. (g) mutated manifests are
refused by the API server and reported with its message.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from gpudask.local.cluster.apply import ApplyReport, Step, apply_stack, destroy_stack, steps
from gpudask.local.cluster.controlplane import ControlPlane
from gpudask.local.cluster.nodes import pools, stack_nodes
from gpudask.local.cluster.observe import leftovers, settle
from gpudask.record.recorder import Recording, run_program, stacks
from gpudask.record.view import recorded_settings


def _run(rec: Recording, transform: Any = None, then: Any = None) -> tuple[ApplyReport, Any]:
    # A control plane of its own, not tests/conftest.py's shared one: a stack applies cluster-wide
    # objects (CRDs, ClusterRoles, kwok nodes for its pools, its fixed namespaces), and (f) counts
    # what is left in them.
    started = time.monotonic()
    with ControlPlane() as cp, stack_nodes(cp, rec):
        up = time.monotonic() - started
        report = apply_stack(cp, rec, transform=transform)
        result = then(cp) if then else None
    print(
        f"{rec.stack}: control plane + nodes {up:.1f} s, apply {report.seconds:.1f} s "
        f"({len(report.outcomes)} objects), whole scenario {time.monotonic() - started:.1f} s"
    )
    return report, result


@pytest.mark.control_plane
@pytest.mark.parametrize("stack", stacks())
def test_a_fresh_apply_is_admitted_and_everything_runs_where_it_should(stack: str) -> None:
    rec = run_program(stack)
    report, placement = _run(rec, then=lambda cp: settle(cp.kube(), rec, timeout=60))
    assert not report.failures, report.failures
    assert not report.warnings, report.warnings
    assert not placement.problems, placement.problems
    for place in placement.pods:
        print("  " + place.line)
    operator = [p for p in placement.pods if p.namespace == "dask-operator"]
    system_pool = recorded_settings(rec).system_pool  # existingCluster.systemPool: the cluster's own name
    assert len(operator) == 1 and operator[0].pool == system_pool and operator[0].ready
    # Nodes of every pool, whether the stack creates it or describes a cluster's own (existingCluster).
    assert {p.name for p in pools(rec)} >= {
        system_pool,
        *(p.name for p in recorded_settings(rec).gpu_node_pools.values()),
    }
    if any(s.what == "DaemonSet/kube-system/nvidia-driver-installer" for s in steps(rec)):  # driver: daemonset
        drivers = [p for p in placement.pods if p.name.startswith("nvidia-driver-installer-")]
        # Every GPU node, the scheduler's small GPU included, gets the driver.
        assert drivers and {p.pool for p in drivers} == {"a100", "scheduler"}
        assert len({p.node for p in drivers}) == len(drivers)


def _break_driver_affinity(step: Step) -> None:
    if step.manifest and step.manifest["kind"] == "DaemonSet":
        terms = step.manifest["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        for term in terms:
            for expression in term["matchExpressions"]:
                if expression["key"] == "cloud.google.com/gke-accelerator":
                    expression["key"] = "cloud.google.com/gke-acelerator"  # a typo: admitted, matches no node


@pytest.mark.control_plane
def test_a_broken_driver_affinity_is_caught_by_the_placement_check() -> None:
    rec = run_program("prod")  # driver: daemonset
    report, placement = _run(rec, transform=_break_driver_affinity, then=lambda cp: settle(cp.kube(), rec, timeout=5))
    assert not report.failures  # the API server admits it: only the placement shows the mistake
    assert (
        "DaemonSet/kube-system/nvidia-driver-installer: no pod on GPU node gke-gpu-dask-prod-a100-00"
        in placement.problems
    )


@pytest.mark.control_plane
@pytest.mark.parametrize("stack", stacks())
def test_f_destroy_in_reverse_order_leaves_the_namespaces_empty(stack: str) -> None:
    rec = run_program(stack)

    def destroy(cp: ControlPlane) -> tuple[list[str], list[str], float]:
        settle(cp.kube(), rec, timeout=60)
        problems, seconds = destroy_stack(cp, rec)
        return problems, leftovers(cp.kube(), rec), seconds

    report, (problems, left, seconds) = _run(rec, then=destroy)
    print(f"{stack}: destroy {seconds:.1f} s")
    assert not report.failures and not problems and not left, (problems, left)


@pytest.mark.control_plane
def test_f_an_orphaning_destroy_is_caught_by_the_leftover_check() -> None:
    rec = run_program("prod")  # its driver DaemonSet's pods live in kube-system, which is never deleted

    def destroy(cp: ControlPlane) -> list[str]:
        settle(cp.kube(), rec, timeout=60)
        destroy_stack(cp, rec, propagation="Orphan")  # the DaemonSet's pods are left behind
        return leftovers(cp.kube(), rec)

    _, left = _run(rec, then=destroy)
    assert any(item.startswith("Pod/kube-system/nvidia-driver-installer-") for item in left), left


def _misspell_worker_affinity(step: Step) -> None:
    if step.manifest and step.manifest["kind"] == "DaskCluster":
        spec = step.manifest["spec"]["worker"]["spec"]
        spec["affinty"] = spec.pop("affinity", {})


@pytest.mark.control_plane
def test_g_a_misspelt_crd_field_is_refused_with_the_servers_message() -> None:
    rec = run_program("dev")
    report, _ = _run(rec, transform=_misspell_worker_affinity)
    failures = dict(report.failures)
    print(failures)
    assert ".spec.worker.spec.affinty: field not declared in schema" in failures["DaskCluster/dask/rapids"]
    # What waits for the DaskCluster is skipped, as Pulumi skips it; everything else went in.
    assert failures["DaskAutoscaler/dask/rapids"] == "not applied: it waits for dask-cluster, which failed"
    others = {what: message for what, message in failures.items() if what != "DaskCluster/dask/rapids"}
    assert all(message.startswith("not applied: it waits for") for message in others.values()), others
    # The namespace, its guard-rail policies and the operator went in; only what is declared after the
    # DaskCluster (the metrics collector's policies and PodMonitorings, the prepuller) waits for it.
    refused_guard_rails = [
        what
        for what in failures
        if what.startswith(("Namespace/", "helm release"))
        or (what.startswith("NetworkPolicy/") and "-metrics-" not in what)
    ]
    assert refused_guard_rails == []


def _privileged_worker(step: Step) -> None:
    if step.manifest and step.manifest["kind"] == "DaskCluster":
        step.manifest["spec"]["worker"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}


def _operator_stand_in(cp: ControlPlane, rec: Recording) -> tuple[ApplyReport, list[str]]:
    from gpudask.local.cluster.apply import apply_operator_objects

    report = apply_operator_objects(cp)
    return report, settle(cp.kube(), rec, timeout=20).problems


@pytest.mark.control_plane
@pytest.mark.parametrize("mutate", [False, True], ids=["as-declared", "privileged-worker"])
def test_g_a_pod_security_violation_is_refused_and_reported(mutate: bool) -> None:
    rec = run_program("dev")
    _, (built, problems) = _run(
        rec, transform=_privileged_worker if mutate else None, then=lambda cp: _operator_stand_in(cp, rec)
    )
    refusals = [p for p in problems if "FailedCreate" in p or "forbidden" in p]
    if not mutate:  # the stack's own pod specs pass Pod Security "restricted"
        assert not built.warnings and not refusals, (built.warnings, refusals)
        return
    assert any('would violate PodSecurity "restricted:latest": privileged' in w for _, w in built.warnings), (
        built.warnings
    )
    assert any(
        'is forbidden: violates PodSecurity "restricted:latest": privileged (container "worker" must not set securityContext.privileged=true)'
        in p
        for p in refusals
    ), problems
