"""The stack's objects against the real API server, scheduler and controllers (scenarios a, f, g of issue 12).

(a) a fresh apply of every stack: everything admitted, the operator and the driver where they belong,
    nothing Pending that should run; (f) destroy in Pulumi's reverse order leaves the namespaces empty;
the orphaning destroy is the broken variant the leftover check must catch. (g) is not landed yet.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from gpudask.cluster.apply import ApplyReport, apply_stack, destroy_stack, steps
from gpudask.cluster.controlplane import ControlPlane
from gpudask.cluster.nodes import stack_nodes
from gpudask.cluster.observe import leftovers, settle
from gpudask.recorder import Recording, run_program, stacks


def _stacks_with_node_pools() -> list[str]:
    """Stacks that create their GKE cluster: an `existingCluster` stack declares no node pools to shape."""
    import yaml

    from gpudask.recorder import stack_file

    return [
        s
        for s in stacks()
        if "gpu-dask:existingCluster" not in (yaml.safe_load(stack_file(s).read_text()) or {}).get("config", {})
    ]


def _run(rec: Recording, transform: Any = None, then: Any = None) -> tuple[ApplyReport, Any]:
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
@pytest.mark.parametrize("stack", _stacks_with_node_pools())
def test_a_fresh_apply_is_admitted_and_everything_runs_where_it_should(stack: str) -> None:
    rec = run_program(stack)
    report, placement = _run(rec, then=lambda cp: settle(cp.kube(), rec, timeout=60))
    assert not report.failures, report.failures
    assert not report.warnings, report.warnings
    assert not placement.problems, placement.problems
    for place in placement.pods:
        print("  " + place.line)
    operator = [p for p in placement.pods if p.namespace == "dask-operator"]
    assert len(operator) == 1 and operator[0].pool == "system" and operator[0].ready
    if any(s.what == "DaemonSet/kube-system/nvidia-driver-installer" for s in steps(rec)):  # driver: daemonset
        drivers = [p for p in placement.pods if p.name.startswith("nvidia-driver-installer-")]
        # Every GPU node, the scheduler's small GPU included, gets the driver.
        assert drivers and {p.pool for p in drivers} == {"a100", "scheduler"}
        assert len({p.node for p in drivers}) == len(drivers)


@pytest.mark.control_plane
@pytest.mark.parametrize("stack", _stacks_with_node_pools())
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
