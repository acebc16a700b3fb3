"""What the API server, the scheduler and the controllers do with what the real engine sends.

Marked `real_pulumi` and `control_plane`: each scenario puts the stack's Kubernetes half up with the real
engine (tests/test_engine.py's harness) on a control plane of its own, with a broken variant as an engine
transform (tests/engine_variants.py) named in the test id. The stack as declared is judged in
tests/test_engine.py (every stack admitted, placed and destroyed); here each variant must be caught:
- a driver DaemonSet whose node affinity matches no node is admitted: only the placement check sees it;
- a destroy that orphans the driver's pods leaves them in kube-system: the leftover check sees it;
- a misspelt field of the DaskCluster is refused by the API server (server-side apply cannot build the
  typed patch), the engine fails the `up` with its message and creates nothing that waits for it; the
  offline plan's schema check refuses the same manifest before any `up`;
- a privileged scheduler passes the engine (the operator creates the pods) and Pod Security refuses its pod.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpudask.local import engine
from gpudask.local.cluster.observe import controller_refusals, leftovers, settle, stack_namespaces
from gpudask.record.recorder import run_program
from gpudask.record.view import kubernetes_manifests
from gpudask.upstream import schemas
from tests import engine_variants

pytestmark = [pytest.mark.real_pulumi, pytest.mark.control_plane]


@pytest.fixture
def up_with(tmp_path: Path) -> Iterator[Any]:
    """`up_with(stack, variant)`: the stack up by the real engine with `tests.engine_variants:<variant>`."""
    opened: list[Any] = []

    def bring_up(stack: str, variant: str) -> engine.StackUp:
        rec = run_program(stack)
        began = time.monotonic()
        ctx = engine.stack_cluster(rec, tmp_path / stack, variants=[f"tests.engine_variants:{variant}"])
        state = ctx.__enter__()
        opened.append(ctx)
        print(
            f"{stack} + {variant}: up ok={state.result.ok} in {time.monotonic() - began:.1f} s {state.result.summary}"
        )
        return state

    yield bring_up
    for ctx in reversed(opened):
        ctx.__exit__(None, None, None)


def test_a_driver_affinity_that_matches_no_node_is_caught_by_the_placement_check(up_with: Any) -> None:
    state = up_with("prod", "misspelt_driver_affinity")  # prod: driver daemonset
    assert state.result.ok, state.result.failure()  # admitted, and the DaemonSet is not awaited (skipAwait)
    placement = settle(state.cp.kube(), run_program("prod"), timeout=10)
    print("\n".join(placement.problems))
    assert "DaemonSet/kube-system/nvidia-driver-installer: no pod on GPU node gke-gpu-dask-prod-a100-00" in (
        placement.problems
    )


def test_an_orphaning_destroy_is_caught_by_the_leftover_check(up_with: Any) -> None:
    state = up_with("prod", "orphaning_driver_destroy")
    assert state.result.ok, state.result.failure()
    rec = run_program("prod")
    kube = state.cp.kube()
    settle(kube, rec, timeout=60)
    gone = state.engine.run("destroy")
    assert gone.ok, gone.failure()
    left = leftovers(kube, rec)
    print(f"prod destroy (orphan): {gone.seconds:.1f} s; left {left}")
    assert any(item.startswith("Pod/kube-system/nvidia-driver-installer-") for item in left), left


def test_a_misspelt_dask_cluster_field_is_refused_with_the_servers_message_and_by_the_plan(up_with: Any) -> None:
    state = up_with("dev", "misspelt_worker_affinity")
    result = state.result
    print("\n".join(line for line in result.output.splitlines() if "affinty" in line)[:2000])
    assert not result.ok
    assert ".spec.worker.spec.affinty: field not declared in schema" in result.output
    # What waits for the DaskCluster is not created, as the engine skips it; the guard rails before it are.
    created = {s["urn"].rsplit("::", 1)[-1] for s in result.steps if s["op"] == "create"}
    assert "dask-autoscaler" not in created and "dask-namespace" in created, sorted(created)
    kube = state.cp.kube()
    assert kube.list("kubernetes.dask.org/v1", "DaskCluster", "dask") == []
    # The offline plan refuses the same manifest against the operator's CRD schema, before any `up`.
    [cluster] = [copy.deepcopy(m) for _, m in kubernetes_manifests(run_program("dev")) if m["kind"] == "DaskCluster"]
    engine_variants.misspelt_worker_affinity(engine_variants.DASK_CLUSTER, "", cluster, None)
    findings = schemas.crd_findings(cluster)
    print(findings)
    assert any("affinty" in f for f in findings), findings


def test_a_privileged_scheduler_goes_up_and_pod_security_refuses_its_pod(up_with: Any) -> None:
    state = up_with("dev", "privileged_scheduler")
    assert state.result.ok, state.result.failure()  # the engine awaits the DaskCluster's phase, not its pods
    kube = state.cp.kube()
    namespaces = stack_namespaces(run_program("dev"))
    deadline = time.monotonic() + 120
    refusals = controller_refusals(kube, namespaces)
    while not any("privileged" in r for r in refusals) and time.monotonic() < deadline:
        time.sleep(1)
        refusals = controller_refusals(kube, namespaces)
    print("\n".join(refusals))
    assert any(
        'violates PodSecurity "restricted:latest": privileged (container "scheduler" must not set securityContext.privileged=true)'
        in r
        for r in refusals
    ), refusals
