"""A GPU scheduler on an existing cluster's own small-GPU pool (issue 22, point 4).

With `existingCluster` the stack creates no pool; `existingCluster.schedulerPool` names the host's
L4/T4 pool (GKE name, machine type, its own taints). The DaskCluster's scheduler requests a GPU,
selects that pool and tolerates its taints; the plan's node models and the kwok nodes of
`rehearse --cluster` are built from the same key, and must agree with each other and with where the
scheduler fits. Before this, `schedulerGpu: true` was refused with existingCluster and the
scheduler ran without a GPU (dask-cudf graphs fail there).
"""

from __future__ import annotations

from typing import Any

import pytest

from components.settings import SettingsError, parse_settings
from gpudask.local.cluster.nodes import node_objects, pools
from gpudask.plan import checks
from gpudask.record.recorder import Recording
from tests.conftest import manifests_of, raw_config, recording

CONTEXT = {"context": "gke_my-project_us-central1-c_team-cluster", "systemPool": "default-pool"}


def _scheduler(rec: Recording) -> dict[str, Any]:
    return manifests_of(rec, "DaskCluster")[0]["spec"]["scheduler"]["spec"]


def test_the_scheduler_runs_with_a_gpu_on_the_pool_the_key_names() -> None:
    rec = recording("existing")
    assert not rec.of_type("gcp:container/nodePool:NodePool")  # nothing is created
    spec = _scheduler(rec)
    assert spec["nodeSelector"] == {"cloud.google.com/gke-nodepool": "l4-pool"}
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    tolerations = {(t["key"], t.get("value"), t["effect"]) for t in spec["tolerations"]}
    assert ("team/dedicated", "dask", "NoSchedule") in tolerations  # the host's own taint
    assert ("nvidia.com/gpu", "present", "NoSchedule") in tolerations  # GKE's GPU taint
    # No "the scheduler has no GPU" warning any more.
    assert not [f for f in checks.all_findings(rec) if "the scheduler has no GPU" in str(f)]


def _plan_nodes(rec: Recording) -> dict[str, tuple[dict[str, str], set[tuple[str, str, str]], int, int]]:
    return {
        n.name: (n.node_labels, {(t["key"], t["value"], t["effect"]) for t in n.taints}, n.gpus, n.max_nodes)
        for n in checks.node_models(rec)
    }


def _local_nodes(rec: Recording) -> dict[str, tuple[dict[str, str], set[tuple[str, str, str]], int, int]]:
    objects = node_objects(pools(rec), "team-cluster", "v1.34.4")
    found: dict[str, tuple[dict[str, str], set[tuple[str, str, str]], int, int]] = {}
    for node in objects:
        labels = node["metadata"]["labels"]
        pool = labels["cloud.google.com/gke-nodepool"]
        taints = {(t["key"], t["value"], t["effect"]) for t in node["spec"].get("taints") or []}
        gpus = int(node["status"]["capacity"].get("nvidia.com/gpu", 0))
        count = found[pool][3] + 1 if pool in found else 1
        found[pool] = (labels, taints, gpus, count)
    return found


def test_the_plan_and_the_local_nodes_agree_on_the_scheduler_pool() -> None:
    """The plan's scheduling check and `rehearse --cluster`'s kwok nodes read the same key: same
    pools, same GKE labels the plan models, same taints, GPUs and node count, and the scheduler
    fits exactly the scheduler pool in the plan's model."""
    rec = recording("existing")
    plan, local = _plan_nodes(rec), _local_nodes(rec)
    assert set(plan) == set(local) == {"default-pool", "a100", "l4-pool"}
    for pool, (labels, taints, gpus, max_nodes) in plan.items():
        local_labels, local_taints, local_gpus, count = local[pool]
        assert {k: local_labels.get(k) for k in labels} == labels, pool
        assert (local_taints, local_gpus, count) == (taints, gpus, max_nodes), pool
    assert plan["l4-pool"][0]["cloud.google.com/gke-accelerator"] == "nvidia-l4"
    scheduler = checks.PodModel("scheduler", _scheduler(rec), 1)
    fits = {n.name for n in checks.node_models(rec) if checks.why_not(scheduler, n) is None}
    assert fits == {"l4-pool"}


def test_a_taint_the_key_does_not_list_keeps_the_scheduler_off_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toleration comes from the key: were the host's taint not tolerated, the plan says so."""
    rec = recording("existing")
    spec = _scheduler(rec)
    spec["tolerations"] = [t for t in spec["tolerations"] if t["key"] != "team/dedicated"]
    found = [str(f) for f in checks.scheduling_findings(rec)]
    assert any("scheduler" in f and "fits no node pool" in f and "team/dedicated" in f for f in found), found


def _problems(existing: dict[str, Any], dask: dict[str, Any]) -> list[str]:
    raw, project = raw_config("existing", existingCluster=existing, dask={"name": "rapids", **dask})
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, project)
    return caught.value.problems


def test_without_a_scheduler_pool_a_gpu_scheduler_is_refused_and_says_what_to_set() -> None:
    (problem,) = _problems(CONTEXT, {})
    assert problem.startswith("dask.schedulerGpu: True needs a small-GPU pool")
    assert "existingCluster.schedulerPool" in problem


def test_bad_scheduler_pool_keys_are_all_reported_at_once() -> None:
    pool = {"name": "default-pool", "machineType": "a2-highgpu-1g", "taints": ["team/dedicated=dask", "k=v:Never"]}
    problems = _problems({**CONTEXT, "schedulerPool": pool}, {"schedulerMachineType": "g2-standard-4"})
    expected = [
        "existingCluster.schedulerPool.name: 'default-pool' is not a GKE node pool name",
        "existingCluster.schedulerPool.machineType: 'a2-highgpu-1g' must say what the pool's nodes are",
        "existingCluster.schedulerPool.taints[0]: 'team/dedicated=dask' is not a taint",
        "existingCluster.schedulerPool.taints[1]: 'k=v:Never' is not a taint",
        "dask.schedulerMachineType: 'g2-standard-4' describes the pool this stack creates",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    contradiction = _problems(
        {**CONTEXT, "schedulerPool": {"name": "l4", "machineType": "g2-standard-4"}}, {"schedulerGpu": False}
    )
    assert contradiction == [
        "dask.schedulerGpu: False contradicts existingCluster.schedulerPool (l4): remove one of them"
    ]
