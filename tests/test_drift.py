"""The nightly drift check reports only what a human should act on. `pulumi preview --refresh`
(drift.yml) diffs the refreshed cloud against the program's inputs with ignoreChanges applied,
so a field is quiet when the program ignores it or never sets it. These tests read the
recording to prove that for everything GKE and the operator change on their own."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gpudask.plan import checks as recording_checks
from gpudask.record.recorder import Recording
from tests.conftest import GKE_STACKS, STACKS

Run = Callable[..., Recording]
# What GKE moves by itself: versions (release channel auto-upgrades), node counts (autoscaler).
GKE_OWNED = {
    recording_checks.CLUSTER: ("minMasterVersion", "nodeVersion"),
    recording_checks.NODE_POOL: ("version", "nodeCount"),
}


@pytest.mark.parametrize("stack", GKE_STACKS)  # an existing cluster's GKE objects are not ours
def test_fields_gke_changes_are_never_set_or_are_ignored(recorded: Run, stack: str) -> None:
    rec = recorded(stack)
    for type_token, fields in GKE_OWNED.items():
        for r in rec.of_type(type_token):
            for f in fields:
                assert f not in r.inputs or f in r.ignore_changes, f"{r.name}.{f} would report every upgrade"
    for pool in rec.of_type(recording_checks.NODE_POOL):
        assert {"nodeCount", "initialNodeCount"} <= set(pool.ignore_changes), pool.name
    assert "nodeConfig" in rec.one(recording_checks.CLUSTER).ignore_changes


@pytest.mark.parametrize("stack", STACKS)
def test_no_kubernetes_object_declares_status(recorded: Run, stack: str) -> None:
    for r, manifest in recording_checks.kubernetes_manifests(recorded(stack)):
        assert "status" not in manifest, f"{r.name}: status is the controller's, never the program's"


def test_the_autoscaler_owns_the_replica_count(recorded: Run) -> None:
    rec = recorded("dev")  # dev has a DaskAutoscaler
    cluster = next(r for r in rec.resources.values() if r.type.endswith(":DaskCluster"))
    assert any(r.type.endswith(":DaskAutoscaler") for r in rec.resources.values())
    assert "spec.worker.replicas" in cluster.ignore_changes
