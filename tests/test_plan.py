"""The offline plan: clean stacks plan clean; each mutation is caught at the right path."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gpudask.__main__ import main
from gpudask.plan import checks as recording_checks
from gpudask.plan import report as planning
from gpudask.record.recorder import Recorded, Recording, run_program
from tests.conftest import STACKS

Run = Callable[..., Recording]


def mutated(rec: Recording, type_suffix: str, change: Callable[[Recorded], None]) -> Recording:
    clone = copy.deepcopy(rec)
    target = next(r for r in clone.resources.values() if r.type.endswith(type_suffix))
    change(target)
    return clone


def findings(rec: Recording) -> list[str]:
    return [str(f) for f in recording_checks.all_findings(rec)]


@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stacks_plan_without_errors(recorded: Run, stack: str) -> None:
    all_found = recording_checks.all_findings(recorded(stack))
    assert [str(f) for f in all_found if f.severity == recording_checks.ERROR] == []
    warnings = [str(f) for f in all_found if f.severity == recording_checks.WARNING]
    # No shipped stack pins its image by digest yet (no registry is reachable where it was written):
    # one warning each, for the one image (issue 21).
    tag_only = [w for w in warnings if "is pinned by tag only" in w]
    assert len(tag_only) == 1, tag_only
    warnings = [w for w in warnings if w not in tag_only]
    if stack == "existing":
        # The scheduler runs on the host's L4 pool (existingCluster.schedulerPool): no CPU-scheduler
        # warning. TLS is off there and nothing shows the host enforces NetworkPolicies: a warning.
        assert len(warnings) == 1, warnings
        assert any("enforces NetworkPolicies" in w for w in warnings), warnings
    elif stack == "prod":
        # Prod installs the driver with Google's DaemonSet: no managed DCGM, said (tests/test_dashboard.py).
        assert len(warnings) == 1 and "no DCGM GPU metrics" in warnings[0], warnings
    else:
        assert warnings == []


# The existing stack without its scheduler pool: `schedulerGpu: false`, a CPU scheduler on the system pool.
EXISTING_CONTEXT = {"context": "gke_my-project_us-central1-c_team-cluster", "systemPool": "default-pool"}
CPU_SCHEDULER = {
    "gpu-dask:existingCluster": EXISTING_CONTEXT,
    "gpu-dask:dask": {"name": "rapids", "namespace": "dask-team", "schedulerGpu": False},
}


def test_a_cpu_scheduler_is_a_warning_that_fails_only_a_strict_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], recorded: Run
) -> None:
    rec = recorded("existing", overrides=CPU_SCHEDULER)
    monkeypatch.setattr("gpudask.__main__.run_program", lambda stack: rec)
    assert main(["plan", "existing", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3 warning(s), not failing the plan" in out and "the scheduler has no GPU" in out
    plan_json = json.loads((tmp_path / "plan.json").read_text())
    assert [f["severity"] for f in plan_json["findings"]] == ["warning", "warning", "warning"]
    assert "⚠️ 3 warning(s)" in (tmp_path / "comment.md").read_text()
    assert "❌" not in (tmp_path / "comment.md").read_text().split("\n", 4)[3]  # the verdict line
    assert main(["plan", "existing", "--out", str(tmp_path), "--strict"]) == 1
    assert main(["plan", "existing", "--out", str(tmp_path), "--json"]) == 0


def test_an_error_fails_the_plan_next_to_a_warning(recorded: Run) -> None:
    plan = planning.build_plan(recorded("existing"))
    assert not plan.fails() and plan.fails(strict=True)
    plan.findings.append({"resource": "x", "path": "spec", "reason": "broken", "severity": "error"})
    plan.findings.append({"resource": "y", "path": "spec", "reason": "from an older plan.json"})  # no severity
    assert plan.fails() and len(plan.errors) == 2 and len(plan.warnings) == 2
    assert plan.verdict() == "❌ 2 error(s), ⚠️ 2 warning(s)"
    lines = planning.finding_lines(plan)
    assert [line.split(" ", 2)[1] for line in lines] == ["error", "error", "warning", "warning"]


def test_typo_in_a_dask_cluster_field_is_found(recorded: Run) -> None:
    def typo(r: Recorded) -> None:
        pod = r.inputs["spec"]["worker"]["spec"]
        pod["affinty"] = pod.pop("affinity")

    found = findings(mutated(recorded("dev"), ":DaskCluster", typo))
    assert any(
        f.startswith("DaskCluster/dask/rapids: spec.worker.spec: unknown field") and "affinty" in f for f in found
    ), found


def test_worker_asking_more_gpus_than_a_node_has_is_found(recorded: Run) -> None:
    def two_gpus(r: Recorded) -> None:
        r.inputs["spec"]["worker"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "2"

    found = findings(mutated(recorded("dev"), ":DaskCluster", two_gpus))
    assert any(
        "DaskCluster/rapids workers: spec: fits no node pool" in f and "a100: requests 2 GPUs, the node has 1" in f
        for f in found
    ), found


def test_scheduler_pinned_to_the_gpu_pool_without_toleration_is_found(recorded: Run) -> None:
    def pin(r: Recorded) -> None:
        r.inputs["spec"]["scheduler"]["spec"]["nodeSelector"] = {"cloud.google.com/gke-nodepool": "a100"}
        r.inputs["spec"]["scheduler"]["spec"]["tolerations"] = []

    found = findings(mutated(recorded("dev"), ":DaskCluster", pin))
    assert any(
        "DaskCluster/rapids scheduler: spec: fits no node pool" in f
        and "a100: no toleration for taint nvidia.com/gpu=present:NoSchedule" in f
        for f in found
    ), found


def test_driver_daemonset_with_a_gke_managed_pool_is_found(recorded: Run) -> None:
    def gke_managed(r: Recorded) -> None:
        if r.inputs["name"] == "a100":
            r.inputs["nodeConfig"]["guestAccelerators"][0]["gpuDriverInstallationConfig"]["gpuDriverVersion"] = "LATEST"

    rec = copy.deepcopy(recorded("prod"))
    for r in rec.of_type(recording_checks.NODE_POOL):
        gke_managed(r)
    found = findings(rec)
    assert any(
        f.startswith("DaemonSet/nvidia-driver-installer: spec.template.spec.affinity: never schedules on GPU pool a100")
        for f in found
    ), found


def test_unknown_helm_value_is_found(recorded: Run) -> None:
    found = findings(
        mutated(recorded("dev"), "helm.sh/v3:Release", lambda r: r.inputs["values"].update(tolerationz=[]))
    )
    assert any(
        f.startswith("Release dask-kubernetes-operator: values.tolerationz: unknown chart value") for f in found
    ), found


def test_bad_gke_enum_is_found(recorded: Run) -> None:
    def bad_effect(r: Recorded) -> None:
        if r.inputs["name"] == "a100":
            r.inputs["nodeConfig"]["taints"][0]["effect"] = "NoSchedule"  # Kubernetes' spelling, not GKE's

    rec = copy.deepcopy(recorded("dev"))
    for r in rec.of_type(recording_checks.NODE_POOL):
        bad_effect(r)
    assert any("nodeConfig.taints[0].effect: 'NoSchedule' is not a GKE value" in f for f in findings(rec))


def test_scheduler_address_mismatch_is_found(recorded: Run) -> None:
    rec = copy.deepcopy(recorded("dev"))
    rec.outputs["schedulerAddress"] = "tcp://rapids-scheduler:8786"
    assert any(
        "DASK_SCHEDULER_ADDRESS: is 'tcp://rapids-scheduler.dask.svc.cluster.local:8786'" in f for f in findings(rec)
    )


def test_tls_cluster_whose_workers_get_a_tcp_address_is_found(recorded: Run) -> None:
    """TLS on, but a worker env without the explicit tls:// address: the operator would
    inject tcp://, which the scheduler refuses."""

    def drop_address(r: Recorded) -> None:
        container = r.inputs["spec"]["worker"]["spec"]["containers"][0]
        container["env"] = [e for e in container["env"] if e["name"] != "DASK_SCHEDULER_ADDRESS"]

    rec = mutated(recorded("prod"), ":DaskCluster", drop_address)
    assert rec.outputs["schedulerAddress"].startswith("tls://")
    assert any(
        "DASK_SCHEDULER_ADDRESS: is 'tcp://rapids-scheduler.dask.svc.cluster.local:8786' but the stack output "
        "schedulerAddress is 'tls://" in f
        for f in findings(rec)
    )


def test_invalid_kubernetes_field_is_found(recorded: Run) -> None:
    def bad(r: Recorded) -> None:
        r.inputs["spec"]["template"]["spec"]["hostNetwork"] = "yes"

    found = findings(mutated(recorded("prod"), ":DaemonSet", bad))
    assert any(
        f.startswith("DaemonSet/kube-system/nvidia-driver-installer: spec.template.spec.hostNetwork:") for f in found
    ), found


def test_diff_dev_to_prod_lists_the_expected_differences(recorded: Run) -> None:
    dev = planning.build_plan(recorded("dev")).to_json()
    prod = planning.build_plan(recorded("prod")).to_json()
    diff = planning.diff_plans(dev, prod)
    assert "kubernetes:kubernetes.dask.org/v1:DaskWorkerGroup::dask-group-cpu" in diff.added
    assert "kubernetes:core/v1:Service::dask-scheduler-ilb" in diff.added
    assert "gcp:compute/address:Address::network-scheduler-address" in diff.added
    assert "kubernetes:kubernetes.dask.org/v1:DaskAutoscaler::dask-autoscaler" in diff.removed
    pool = dict((c[0], c) for c in diff.changed["gcp:container/nodePool:NodePool::gpu-a100-pool"])
    # machineType is updated in place and GKE recreates the nodes; spot is ForceNew.
    assert pool["inputs.nodeConfig.machineType"][1:] == ("a2-highgpu-1g", "a2-highgpu-2g", "node-roll")
    assert pool["inputs.nodeConfig.spot"][1:] == (True, False, "replace")
    assert pool["inputs.autoscaling.totalMaxNodeCount"][1:] == (2.0, 4.0, "update")
    assert "kubernetes:kubernetes.dask.org/v1:DaskCluster::dask-cluster" in diff.replaced()
    text = diff.markdown()
    assert "🔁 replace `gcp:container/nodePool:NodePool::gpu-a100-pool`" in text
    assert "`inputs.autoscaling.totalMaxNodeCount`: `2.0` → `4.0`" in text


def test_a_max_nodes_change_is_an_in_place_update(recorded: Run) -> None:
    base = planning.build_plan(recorded("dev")).to_json()
    head = copy.deepcopy(base)
    pool = next(r for r in head["resources"] if r["key"] == "gcp:container/nodePool:NodePool::gpu-a100-pool")
    pool["inputs"]["autoscaling"]["totalMaxNodeCount"] = 5.0
    diff = planning.diff_plans(base, head)
    assert diff.changed == {
        "gcp:container/nodePool:NodePool::gpu-a100-pool": [("inputs.autoscaling.totalMaxNodeCount", 2.0, 5.0, "update")]
    }
    assert diff.replaced() == []


def test_a_type_renamed_through_an_alias_is_neither_removed_nor_added(recorded: Run) -> None:
    """The base plan as it was before the 2026-11-23 type rename: each component under its old
    type (the alias of the head's component), nothing else different."""
    head = planning.build_plan(recorded("prod")).to_json()
    base = copy.deepcopy(head)
    renamed = {}
    for r in base["resources"]:
        old = [a for a in r["aliases"] if a.startswith("gpu-dask:")]
        if old:
            renamed[old[0]] = r["key"]
            r["key"], r["aliases"] = old[0], []
    assert len(renamed) == 8
    diff = planning.diff_plans(base, head)
    assert (diff.added, diff.removed, diff.changed, diff.renamed) == ([], [], {}, renamed)
    assert "rename `gpu-dask:gke:Cluster::gke` → `gpu-dask:cluster:GkeCluster::gke`" in diff.markdown()
    # A field changed on a renamed component is still reported, under its new key.
    tls = next(r for r in head["resources"] if r["key"] == "gpu-dask:dask_tls:DaskTls::dask-tls")
    tls["options"]["protect"] = True
    assert list(planning.diff_plans(base, head).changed) == ["gpu-dask:dask_tls:DaskTls::dask-tls"]


def test_cost_table_prices_pools_and_idle(recorded: Run) -> None:
    plan = planning.build_plan(recorded("dev"))
    costs = {c.pool: c for c in plan.costs}
    assert costs["a100"].machine_hourly == pytest.approx(1.29) and costs["a100"].min_nodes == 0
    assert costs["system"].machine_hourly == pytest.approx(0.134)
    # Dev's workers belong to an autoscaler with minimum 0: the GPU pool is empty when idle.
    assert costs["a100"].idle_nodes == 0
    # The scheduler's spot L4 node (g2-standard-4, 100 GB pd-ssd) runs whenever the cluster does.
    assert costs["scheduler"].idle_nodes == 1
    scheduler_node = 0.28 + 100 * 0.17 / 730
    nat = 2 * 0.0014 + 0.005  # Cloud NAT: 2 idle nodes use the gateway, plus its IP
    assert plan.idle_hourly == pytest.approx(0.10 + 0.134 + 100 * 0.10 / 730 + scheduler_node + nat, abs=0.001)


def test_prod_idle_and_full_cost_recomputed_by_hand(recorded: Run) -> None:
    """Prod: 4 one-GPU workers that no autoscaler owns, on a2-highgpu-2g (2 GPUs) nodes, so 2
    nodes run all the time, each with a 300 GB pd-ssd boot disk; one e2-standard-8 system node
    (scheduler, operator, CPU workers) with 100 GB pd-balanced; the cluster fee. Prices:
    components/prices.yaml (A100 $3.67/GPU-hour, e2-standard-8 $0.268/h, pd-ssd $0.17 and
    pd-balanced $0.10 per GB-month of 730 hours, fee $0.10/h)."""
    plan = planning.build_plan(recorded("prod"))
    gpu_node = 2 * 3.67 + 300 * 0.17 / 730
    system_node = 0.268 + 100 * 0.10 / 730
    scheduler_node = 0.71 + 100 * 0.17 / 730  # on-demand L4 (g2-standard-4), always up
    ilb = 0.025  # the scheduler's internal load balancer: one forwarding rule
    idle = 2 * gpu_node + 1 * system_node + scheduler_node + 0.10 + (4 * 0.0014 + 0.005) + ilb
    full = 4 * gpu_node + 3 * system_node + scheduler_node + 0.10 + (8 * 0.0014 + 0.005) + ilb
    costs = {c.pool: c for c in plan.costs}
    assert (costs["a100"].idle_nodes, costs["system"].idle_nodes) == (2, 1)
    assert plan.idle_hourly == pytest.approx(idle, abs=0.001)
    assert plan.max_hourly == pytest.approx(full, abs=0.001)


def test_replicas_without_an_autoscaler_hold_nodes_above_the_minimum(recorded: Run) -> None:
    rec = copy.deepcopy(recorded("prod"))
    cluster = next(r for r in rec.resources.values() if r.type.endswith(":DaskCluster"))
    cluster.inputs["spec"]["worker"]["replicas"] = 7  # 7 one-GPU workers on 2-GPU nodes
    assert planning.idle_nodes(rec)["a100"] == 4


def test_quotas_per_region_on_demand_and_spot_at_max_nodes(recorded: Run) -> None:
    dev = {(q["region"], q["metric"]): q["count"] for q in planning.build_plan(recorded("dev")).quotas}
    assert dev[("us-central1", "PREEMPTIBLE_NVIDIA_A100_GPUS")] == 2  # spot a2-highgpu-1g x 2
    assert dev[("us-central1", "PREEMPTIBLE_CPUS or A2_CPUS")] == 24
    assert dev[("us-central1", "PREEMPTIBLE_NVIDIA_L4_GPUS")] == 1  # the scheduler's spot L4
    assert dev[("global", "GPUS_ALL_REGIONS")] == 3
    prod = {(q["region"], q["metric"]): q["count"] for q in planning.build_plan(recorded("prod")).quotas}
    assert prod[("us-central1", "NVIDIA_A100_GPUS")] == 8  # on-demand a2-highgpu-2g x 4
    assert prod[("us-central1", "A2_CPUS")] == 96
    assert prod[("us-central1", "CPUS")] == 24  # e2-standard-8 x 3
    assert prod[("us-central1", "NVIDIA_L4_GPUS")] == 1 and prod[("us-central1", "G2_CPUS")] == 4  # scheduler
    assert prod[("us-central1", "SSD_TOTAL_GB")] == 4 * 300 + 3 * 100 + 100
    assert prod[("global", "GPUS_ALL_REGIONS")] == 9


def test_80gb_pools_need_their_own_quota(recorded: Run) -> None:
    rec = copy.deepcopy(recorded("prod"))
    pool = next(p for p in rec.of_type(recording_checks.NODE_POOL) if p.inputs["name"] == "a100")
    pool.inputs["nodeConfig"]["machineType"] = "a2-ultragpu-2g"
    pool.inputs["nodeConfig"]["guestAccelerators"][0]["type"] = "nvidia-a100-80gb"
    metrics = {q["metric"]: q["count"] for q in planning.quotas.needed(rec)}
    assert metrics["NVIDIA_A100_80GB_GPUS"] == 8 and "NVIDIA_A100_GPUS" not in metrics


def test_cli_writes_plan_manifests_and_summary(tmp_path: Path) -> None:
    assert main(["plan", "dev", "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "plan.json").read_text())
    assert document["outputs"]["kubeconfig"] == "[secret]"
    assert document["outputs"]["schedulerAddress"] == "tcp://rapids-scheduler.dask.svc.cluster.local:8786"
    manifests = sorted(p.name for p in (tmp_path / "manifests").glob("*.yaml"))
    assert any("daskcluster-dask-rapids" in m for m in manifests)
    assert any("daemonset-dask-rapids-image-prepuller" in m for m in manifests)
    summary = (tmp_path / "summary.md").read_text()
    assert "```mermaid" in summary and "## Cost" in summary and "is pinned by tag only" in summary


def test_cli_exit_code_2_on_missing_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "no-such-stack", "--out", str(tmp_path)]) == 2
    assert "no stack file" in capsys.readouterr().out


def test_cli_exit_code_2_on_bad_config_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = {"gpu-dask:authorizedNetworks": ["0.0.0.0/0"], "gpu-dask:driver": "nvidia"}
    monkeypatch.setattr("gpudask.__main__.run_program", functools.partial(run_program, overrides=bad))
    assert main(["plan", "dev", "--out", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "authorizedNetworks[0]: '0.0.0.0/0'" in out and "driver: 'nvidia' is not allowed" in out
    assert not (tmp_path / "plan.json").exists()


def test_cli_exit_code_1_with_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recorded: Run) -> None:
    broken = mutated(recorded("dev"), "helm.sh/v3:Release", lambda r: r.inputs["values"].update(tolerationz=[]))
    monkeypatch.setattr("gpudask.__main__.run_program", lambda stack: broken)
    assert main(["plan", "dev", "--out", str(tmp_path)]) == 1
    assert "tolerationz" in (tmp_path / "summary.md").read_text()


def test_the_plan_says_which_engine_judged_it(recorded: Run) -> None:
    plan = planning.build_plan(recorded("dev"))
    engine = plan.to_json()["engine"]
    assert engine["name"] == planning.ENGINE_MOCKS
    # Both judges named: mocks for the GCP half, the real engine for the Kubernetes half.
    assert "pulumi.runtime.Mocks" in engine["note"] and "the GCP half" in engine["note"]
    assert "the Kubernetes half is judged by the real engine and provider in `gpudask engine-diff`" in engine["note"]
    assert f"Judged by {plan.engine_note}." in planning.pr_comment(plan, None)
    assert f"Judged by: {plan.engine_note}." in planning.summary_markdown(plan)


def test_existing_cluster_plan_prices_nothing_and_schedules_on_the_described_pools(recorded: Run) -> None:
    rec = recorded("existing")
    plan = planning.build_plan(rec)
    assert plan.costs == [] and plan.cluster_fee_hour == 0.0 and "existingCluster" in plan.prices_note
    nodes = {n.name: n for n in recording_checks.node_models(rec)}
    assert set(nodes) == {"default-pool", "a100", "l4-pool"}
    assert nodes["a100"].gpus == 1 and nodes["a100"].max_nodes == 2
    # driver gke-default: GKE labels the nodes, so Google's DaemonSet could not land there.
    assert nodes["a100"].node_labels["cloud.google.com/gke-gpu-driver-version"] == "default"
    with_daemonset = run_program("existing", overrides={"gpu-dask:driver": "daemonset"})
    assert (
        "cloud.google.com/gke-gpu-driver-version"
        not in {n.name: n for n in recording_checks.node_models(with_daemonset)}["a100"].node_labels
    )


def test_existing_cluster_scheduler_on_a_pool_too_small_is_found(recorded: Run) -> None:
    """The described system pool is what the scheduler must fit: an e2-standard-2 cannot hold 8 CPUs."""
    dask = {"name": "rapids", "namespace": "dask-team", "schedulerCpu": 8, "schedulerGpu": False}
    rec = recorded(
        "existing",
        overrides={**CPU_SCHEDULER, "gpu-dask:dask": dask, "gpu-dask:systemMachineType": "e2-standard-2"},
    )
    assert any("fits no node pool" in f and "default-pool" in f for f in findings(rec)), findings(rec)


def test_nat_load_balancer_and_secondary_disks_are_priced(recorded: Run) -> None:
    """Prices from components/prices.yaml (Cloud NAT and load balancing pricing pages, read 2026-12-03)."""
    prod = planning.build_plan(recorded("prod"))
    extras = {e.item: e for e in prod.extras}
    assert set(extras) == {"Cloud NAT", "internal load balancer"}
    assert extras["internal load balancer"].idle_hourly == pytest.approx(0.025)
    # Each cold GPU node pulls the ~14 GiB image through NAT at $0.045/GiB.
    assert prod.per_cold_node == pytest.approx(14 * 0.045)
    assert "internal load balancer" not in {e.item for e in planning.build_plan(recorded("dev")).extras}
    pools = {
        "a100": {
            "machineType": "a2-highgpu-1g",
            "minNodes": 0,
            "maxNodes": 2,
            "spot": True,
            "secondaryBootDiskImage": "projects/gpu-dask-dev/global/images/rapids-cache",
        }
    }
    cached = planning.build_plan(recorded("dev", overrides={"gpu-dask:gpuNodePools": pools}))
    a100 = next(c for c in cached.costs if c.pool == "a100")
    assert a100.secondary_disk_hourly == pytest.approx(50 * 0.10 / 730, abs=1e-4)
    assert a100.hourly == pytest.approx(a100.machine_hourly + a100.disk_hourly + a100.secondary_disk_hourly)


def test_existing_cluster_without_tls_warns_until_policies_are_said_to_be_enforced(recorded: Run) -> None:
    def warned(overrides: dict[str, object] | None = None) -> bool:
        found = recording_checks.all_findings(
            recorded("existing", overrides=overrides) if overrides else recorded("existing")
        )
        return any("enforces NetworkPolicies" in str(f) for f in found)

    existing = {**EXISTING_CONTEXT, "schedulerPool": {"name": "l4-pool", "machineType": "g2-standard-4"}}
    assert warned()
    assert not warned({"gpu-dask:existingCluster": {**existing, "networkPoliciesEnforced": True}})
    assert not warned({"gpu-dask:dask": {"name": "rapids", "namespace": "dask-team", "tls": True}})
    assert not any("enforces NetworkPolicies" in str(f) for f in recording_checks.all_findings(recorded("dev")))


def _probe(pool: str, cpu: float, memory_gb: float) -> recording_checks.PodModel:
    resources = {"requests": {"cpu": f"{cpu:.3f}", "memory": f"{memory_gb:.3f}Gi"}}
    spec = {
        "nodeSelector": {"cloud.google.com/gke-nodepool": pool},
        "tolerations": [{"operator": "Exists"}],
        "containers": [{"resources": resources}],
    }
    return recording_checks.PodModel("probe", spec, 1)


@pytest.mark.parametrize("stack", ["prod", "existing"])
def test_a_pod_fits_a_node_only_within_the_room_gkes_daemonsets_leave(recorded: Run, stack: str) -> None:
    """GKE's DaemonSets (kube-proxy, logging, device plugin, driver installer) take part of each node's
    allocatable: a pod asking for the whole allocatable CPU or memory never schedules, one asking for
    what is left does."""
    for node in recording_checks.node_models(recorded(stack)):
        machine = node.machine
        assert (
            recording_checks.why_not(_probe(node.name, node.room_cpu - 0.01, node.room_memory_gb - 0.01), node) is None
        )
        whole_cpu = recording_checks.why_not(_probe(node.name, machine.allocatable_cpu, 1), node)
        whole_memory = recording_checks.why_not(_probe(node.name, 1, machine.allocatable_memory_gb), node)
        assert whole_cpu and "CPU, the node has" in whole_cpu, (node.name, whole_cpu)
        assert whole_memory and "GiB, the node has" in whole_memory, (node.name, whole_memory)


def test_an_image_pinned_by_digest_plans_without_the_tag_warning(recorded: Run) -> None:
    """`dask.image` takes `<tag>@sha256:<digest>`: settings accept it, every Dask pod runs it, the
    plan's tag-only warning goes; the tag stays for people and for versions.skew."""
    import json as _json

    from tests.conftest import raw_config

    raw = raw_config("dev")[0]["dask"]
    dask = _json.loads(raw) if isinstance(raw, str) else dict(raw)
    pinned = dask["image"] + "@sha256:" + "0" * 64  # a made-up digest: only the form is checked here
    rec = recorded("dev", overrides={"gpu-dask:dask": _json.dumps({**dask, "image": pinned})})
    found = [str(f) for f in recording_checks.all_findings(rec)]
    assert not [f for f in found if "pinned by tag only" in f], found
    images = {
        c["image"]
        for _, m in recording_checks.kubernetes_manifests(rec)
        if m["kind"] == "DaskCluster"
        for c in m["spec"]["scheduler"]["spec"]["containers"] + m["spec"]["worker"]["spec"]["containers"]
    }
    assert images == {pinned}, images
