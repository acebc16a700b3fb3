"""The real `pulumi up`: the Pulumi CLI and the Kubernetes provider, built from source, on the local control plane.

Marked `real_pulumi`: the pinned CLI (v3.276.0) and pulumi-resource-kubernetes (4.25.0) from
upstream/versions.toml, an Automation API inline program (gpudask/engine/program.py), the pinned control
plane with the stack's nodes (kwok), and the chart's real operator and real Dask processes behind it.
The engine and the provider are the judge of the program: every scenario has a broken variant that they
must refuse or report. The GCP half is not declared (its provider cannot be built here); pulumi-tls and
the reserved internal address are stood in, and the outputs say so (`engineStandIns`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpudask import engine
from gpudask.cluster.controlplane import ControlPlane
from gpudask.cluster.nodes import stack_nodes
from gpudask.cluster.runtime import settle_dask
from gpudask.recorder import Recording, run_program, stacks

pytestmark = pytest.mark.real_pulumi
CLUSTER_GROUP = ("kubernetes.dask.org/v1", "DaskCluster")


def _namespaced_objects(kube: Any, namespace: str) -> list[str]:
    """What is left in a namespace (Pods, Services, Deployments, Secrets other than defaults, Dask objects)."""
    left = []
    for api_version, kind in (
        ("v1", "Pod"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("kubernetes.dask.org/v1", "DaskCluster"),
        ("kubernetes.dask.org/v1", "DaskWorkerGroup"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
    ):
        try:
            items = kube.list(api_version, kind, namespace)
        except Exception:  # noqa: BLE001 - the CRD went with the release: nothing of that kind is left
            continue
        left += [f"{kind}/{item['metadata']['name']}" for item in items]
    return left


@pytest.fixture
def stack_on_control_plane(tmp_path: Path) -> Iterator[Any]:
    """`bring_up(stack)`: a fresh control plane with the stack's nodes, and the stack up by the real engine."""
    opened: list[Any] = []

    def bring_up(stack: str, rec: Recording | None = None) -> tuple[ControlPlane, engine.StackUp]:
        rec = rec or run_program(stack)
        began = time.monotonic()
        cp = ControlPlane().__enter__()
        opened.append(cp)
        nodes = stack_nodes(cp, rec)
        nodes.__enter__()
        opened.append(nodes)
        up = engine.stack_up(cp, rec, tmp_path / stack, log=print)
        state = up.__enter__()
        opened.append(up)
        print(f"{stack}: control plane, nodes and up in {time.monotonic() - began:.1f} s")
        return cp, state

    yield bring_up
    for ctx in reversed(opened):
        if isinstance(ctx, ControlPlane):
            ctx.stop()
        else:
            ctx.__exit__(None, None, None)


@pytest.mark.parametrize("stack", stacks())
def test_up_completes_then_changes_nothing_then_destroy_empties_the_namespaces(
    stack: str, stack_on_control_plane: Any
) -> None:
    cp, state = stack_on_control_plane(stack)
    up = state.result
    assert up.ok, up.failure()
    assert up.summary.get("create", 0) >= 10, up.summary
    # The engine awaited the DaskCluster until the real operator gave it a phase.
    _, problems = settle_dask(state.runtime, timeout=120)
    assert not problems, problems
    kube = cp.kube()
    name, namespace = up.outputs["daskClusterName"], up.outputs["daskNamespace"]
    cluster = kube.get(kube.path(*CLUSTER_GROUP, name, namespace))
    assert cluster["status"]["phase"] in {"Created", "Running"}
    # The address clients are given is the scheduler Service the operator made.
    service = kube.get(kube.path("v1", "Service", f"{name}-scheduler", namespace))
    assert up.outputs["schedulerAddress"].startswith(("tcp://", "tls://"))
    assert f"{service['metadata']['name']}.{namespace}" in up.outputs["schedulerAddress"]
    if "internalLoadBalancerIp" in up.outputs:
        assert up.outputs["internalLoadBalancerIp"] == engine.STAND_IN_INTERNAL_ADDRESS

    again = state.engine.run("preview", expect_no_changes=True)
    assert again.ok and not again.changes, again.failure() + f"\nchanges: {again.changes}"
    print(f"{stack}: up {up.seconds:.1f} s {up.summary}; second preview {again.seconds:.1f} s {again.summary}")

    gone = state.engine.run("destroy")
    assert gone.ok, gone.failure()
    left = _namespaced_objects(kube, namespace) + _namespaced_objects(kube, engine.OPERATOR_NAMESPACE)
    assert left == [], left
    print(f"{stack}: destroy {gone.seconds:.1f} s {gone.summary}")
