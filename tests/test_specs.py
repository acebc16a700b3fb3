"""Pure builders, checked without the Pulumi runtime against upstream schemas and code."""

from __future__ import annotations

from typing import Any, cast

import pytest
from google.cloud.container_v1 import types as gke

from components import catalog, dask_spec, driver_spec, gke_spec, prepuller_spec, scheduler_endpoint_spec
from components.kubeconfig import kubeconfig
from components.operator_spec import operator_values
from components.settings import GpuPoolSettings, StackSettings
from gpudask.record.dask_operator import created_objects
from gpudask.upstream.schemas import crd_findings, helm_value_findings, kubernetes_findings
from tests.conftest import GKE_STACKS, STACKS, settings_for


def _gpu_node_config(s: StackSettings, pool: GpuPoolSettings) -> dict[str, Any]:
    return dict(
        gke_spec.gpu_node_config(
            pool,
            "nodes@example.iam.gserviceaccount.com",
            driver_version=s.gke_driver_version,
            image_streaming=s.image_streaming,
            labels=s.labels,
        )
    )


def _bodies(stack: str, **overrides: Any) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    s = settings_for(stack, **overrides)
    groups = [dask_spec.dask_worker_group(s.dask, g) for g in s.dask.worker_groups.values()]
    return s, dask_spec.dask_cluster(s.dask), groups


@pytest.mark.parametrize("stack", STACKS)
def test_dask_resources_match_the_operator_crds_strictly(stack: str) -> None:
    s, cluster, groups = _bodies(stack)
    assert crd_findings(cluster) == []
    for group in groups:
        assert crd_findings(group) == []
    autoscaler = dask_spec.dask_autoscaler(s.dask)
    if autoscaler:
        assert crd_findings(autoscaler) == []


def test_crd_check_catches_a_misspelt_field() -> None:
    _, cluster, _ = _bodies("dev")
    cluster["spec"]["worker"]["spec"]["affinty"] = cluster["spec"]["worker"]["spec"].pop("affinity")
    findings = crd_findings(cluster)
    assert any(f.startswith("spec.worker.spec: unknown field") and "affinty" in f for f in findings), findings


@pytest.mark.parametrize("stack", STACKS)
def test_what_the_operator_builds_is_valid_kubernetes(stack: str) -> None:
    s, cluster, groups = _bodies(stack)
    objects = created_objects(cluster, groups)
    assert [o["kind"] for o in objects[:2]] == ["Deployment", "Service"]
    for obj in objects:
        assert kubernetes_findings(obj) == [], obj["metadata"]["name"]
    for worker in objects[2:]:
        env = {e["name"]: e["value"] for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
        # The stack output clients use is exactly the address workers are given.
        assert env["DASK_SCHEDULER_ADDRESS"] == s.dask.scheduler_address
        assert env["DASK_WORKER_NAME"] == worker["metadata"]["name"]


def test_the_default_group_runs_its_own_image_and_the_scheduler_keeps_dask_image() -> None:
    image = "rapidsai/notebooks:26.10-cuda12-py3.12"
    s, cluster, _ = _bodies("dev", dask={"name": "rapids", "worker": {"image": image}})
    assert cluster["spec"]["worker"]["spec"]["containers"][0]["image"] == image
    assert cluster["spec"]["scheduler"]["spec"]["containers"][0]["image"] == s.dask.image != image
    assert prepuller_spec.worker_images(s.dask) == [image]  # GPU nodes pull what their workers run


def test_gpu_workers_run_dask_cuda_with_gpu_resources_and_limits() -> None:
    _s, cluster, _ = _bodies("dev", dask={"name": "rapids", "worker": {"replicas": 2, "gpusPerWorker": 1}})
    container = cluster["spec"]["worker"]["spec"]["containers"][0]
    assert container["args"][:3] == ["dask-cuda-worker", "--name", "$(DASK_WORKER_NAME)"]
    args = container["args"]
    assert args[args.index("--nthreads") + 1] == "1"
    assert args[args.index("--resources") + 1] == "GPU=1"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["limits"]["memory"] == container["resources"]["requests"]["memory"]
    assert cluster["spec"]["worker"]["replicas"] == 2
    assert cluster["spec"]["idleTimeout"] == 0


@pytest.mark.parametrize(
    ("mode", "key"),
    [
        ("preferred", "preferredDuringSchedulingIgnoredDuringExecution"),
        ("required", "requiredDuringSchedulingIgnoredDuringExecution"),
    ],
)
def test_colocation_selects_only_this_clusters_workers(mode: str, key: str) -> None:
    _s, cluster, _ = _bodies("dev", dask={"name": "rapids", "worker": {"replicas": 1}, "colocation": mode})
    rules = cluster["spec"]["worker"]["spec"]["affinity"]["podAffinity"][key]
    term = rules[0]["podAffinityTerm"] if mode == "preferred" else rules[0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    selector = term["labelSelector"]["matchLabels"]
    # The selector matches the labels the operator gives this cluster's workers ...
    worker = created_objects(cluster)[2]
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    # ... and not a worker of another DaskCluster (the seed's selector matched every Dask worker).
    other = created_objects(dask_spec.dask_cluster(settings_for("dev", dask={"name": "other"}).dask))[2]
    assert not selector.items() <= other["spec"]["template"]["metadata"]["labels"].items()


def test_no_colocation_means_no_affinity() -> None:
    _, cluster, _ = _bodies("dev", dask={"name": "rapids", "colocation": "none"})
    assert "affinity" not in cluster["spec"]["worker"]["spec"]


def test_a_cpu_scheduler_on_the_system_pool_with_probes_ports_and_args() -> None:
    _, cluster, _ = _bodies("dev", dask={"name": "rapids", "schedulerGpu": False})
    scheduler = cluster["spec"]["scheduler"]
    pod = scheduler["spec"]
    container = pod["containers"][0]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-nodepool": "system"}
    assert "tolerations" not in pod
    assert isinstance(container["args"], list) and container["args"][:2] == ["dask", "scheduler"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"port": "http-dashboard", "path": "/health"}
    assert {(p["name"], p["containerPort"]) for p in container["ports"]} == {
        ("tcp-comm", 8786),
        ("http-dashboard", 8787),
    }
    assert {(p["name"], p["port"]) for p in scheduler["service"]["ports"]} == {
        ("tcp-comm", 8786),
        ("http-dashboard", 8787),
    }
    assert scheduler["service"]["type"] == "ClusterIP"


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_the_scheduler_gets_its_own_small_gpu_by_default(stack: str) -> None:
    s, cluster, _ = _bodies(stack)
    pod = cluster["spec"]["scheduler"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert dask_spec.GPU_TOLERATION in pod["tolerations"] and dask_spec.SCHEDULER_TOLERATION in pod["tolerations"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-nodepool": "scheduler"}
    pool = s.scheduler_pool
    assert pool is not None and pool.accelerator_type in ("nvidia-l4", "nvidia-tesla-t4")
    assert pool.spot == any(p.spot for p in s.gpu_node_pools.values())  # spot where the stack is
    config = _gpu_node_config(s, pool)
    assert gke_spec.SCHEDULER_TAINT in cast(list[Any], config.get("taints"))
    # Workers never tolerate the scheduler pool's taint, so they never take its GPU.
    worker = cluster["spec"]["worker"]["spec"]
    assert dask_spec.SCHEDULER_TOLERATION not in worker.get("tolerations", [])


def _tolerates(tolerations: list[dict[str, Any]], taint: Any) -> bool:
    """Whether a pod with these tolerations may run on a node with this GKE node-pool taint."""
    effect = catalog.TAINT_EFFECTS[taint["effect"]]
    for t in tolerations:
        if t.get("effect") not in (None, "", effect):
            continue
        if t.get("operator") == "Exists" and t.get("key") in (None, "", taint["key"]):
            return True
        if t.get("operator", "Equal") == "Equal" and (t.get("key"), t.get("value")) == (taint["key"], taint["value"]):
            return True
    return False


def test_gpu_scheduler_requests_a_gpu_and_tolerates_the_taint() -> None:
    _, cluster, _ = _bodies("dev", dask={"name": "rapids", "schedulerGpu": True})
    pod = cluster["spec"]["scheduler"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # It tolerates the taint the GPU pools really carry (Kubernetes matching rules).
    s = settings_for("dev")
    config: dict[str, Any] = dict(_gpu_node_config(s, s.gpu_node_pools["a100"]))
    taints = config["taints"]
    assert taints and all(_tolerates(pod["tolerations"], taint) for taint in taints)
    assert pod.get("nodeSelector", {}).get("cloud.google.com/gke-nodepool") != "system"


def test_internal_load_balancer_is_annotated_and_source_restricted() -> None:
    # The stack's own Service (tests/test_scheduler_endpoint.py); the operator's stays ClusterIP.
    s, cluster, _ = _bodies("prod")
    assert created_objects(cluster)[1]["spec"]["type"] == "ClusterIP"
    service = scheduler_endpoint_spec.internal_endpoint(s.dask, "10.10.0.42")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["loadBalancerSourceRanges"] == list(s.dask.client_cidrs)
    assert service["metadata"]["annotations"]["networking.gke.io/load-balancer-type"] == "Internal"


def test_cpu_worker_group_runs_dask_worker_on_the_system_pool() -> None:
    s, _, groups = _bodies("prod")
    (group,) = groups
    pod = group["spec"]["worker"]["spec"]
    assert group["metadata"]["name"] == f"{s.dask.name}-cpu" and group["spec"]["cluster"] == s.dask.name
    assert pod["containers"][0]["args"][:2] == ["dask", "worker"]
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-nodepool": "system"}
    assert "affinity" not in pod


def test_autoscaler_targets_the_cluster() -> None:
    s, _, _ = _bodies("dev")
    assert dask_spec.dask_autoscaler(s.dask) == {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskAutoscaler",
        "metadata": {"name": "rapids", "namespace": "dask"},
        "spec": {"cluster": "rapids", "minimum": 0, "maximum": 2},
    }


def test_driver_daemonset_matches_googles_cos_installer() -> None:
    ds = driver_spec.driver_daemonset()
    assert kubernetes_findings(ds) == []
    assert (ds["metadata"]["name"], ds["metadata"]["namespace"]) == ("nvidia-driver-installer", "kube-system")
    pod = ds["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "cloud.google.com/gke-accelerator", "operator": "Exists"},
                {"key": "cloud.google.com/gke-gpu-driver-version", "operator": "DoesNotExist"},
                {"key": "cloud.google.com/gke-confidential-nodes-instance-type", "operator": "DoesNotExist"},
            ]
        }
    ]
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["priorityClassName"] == "system-node-critical"
    installer = pod["initContainers"][0]
    assert installer["image"] == "cos-nvidia-installer:fixed" and installer["imagePullPolicy"] == "Never"
    assert {v["hostPath"]["path"] for v in pod["volumes"]} >= {"/home/kubernetes/bin/nvidia", "/dev"}


@pytest.mark.parametrize("stack", STACKS)
def test_operator_values_are_known_to_the_chart(stack: str) -> None:
    values = operator_values(settings_for(stack).system_pool)
    assert helm_value_findings(values) == []
    assert values["nodeSelector"] == {"cloud.google.com/gke-nodepool": settings_for(stack).system_pool}
    assert values["resources"]["requests"]["memory"]


def test_helm_value_check_catches_an_unknown_key() -> None:
    assert len(helm_value_findings({"nodeSelector": {}, "tolerationz": []})) == 1
    assert "tolerationz: unknown chart value" in helm_value_findings({"tolerationz": []})[0]
    assert helm_value_findings({"image": {"tagg": "x"}})[0].startswith("image.tagg: unknown chart value")


@pytest.mark.parametrize("driver", ["daemonset", "gke-default", "gke-latest"])
def test_gpu_node_config_sets_the_driver_mode_and_the_taint(driver: str) -> None:
    s = settings_for("dev", driver=driver)
    config: dict[str, Any] = dict(_gpu_node_config(s, s.gpu_node_pools["a100"]))
    (accelerator,) = config["guest_accelerators"]
    assert accelerator["type"] == "nvidia-tesla-a100" and accelerator["count"] == 1
    version = accelerator["gpu_driver_installation_config"]["gpu_driver_version"]
    assert version == {"daemonset": "INSTALLATION_DISABLED", "gke-default": "DEFAULT", "gke-latest": "LATEST"}[driver]
    assert config["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert config["taints"][0]["effect"] in {e.name for e in gke.NodeTaint.Effect}
    assert config["image_type"] == "COS_CONTAINERD" and config["spot"] is True
    assert config["gcfs_config"] == {"enabled": True}
    assert config["workload_metadata_config"] == {"mode": "GKE_METADATA"}
    assert config["workload_metadata_config"]["mode"] in {e.name for e in gke.WorkloadMetadataConfig.Mode}


def test_kubeconfig_uses_the_auth_plugin_and_no_static_credentials() -> None:
    text = kubeconfig("ctx", "203.0.113.10", "Q0E=")
    assert "server: https://203.0.113.10" in text and "certificate-authority-data: Q0E=" in text
    assert "command: gke-gcloud-auth-plugin" in text
    assert "--use_application_default_credentials" in text
    assert "token" not in text and "client-key" not in text


@pytest.mark.parametrize("stack", STACKS)
def test_a_cpu_group_makes_unannotated_work_gpu_work(stack: str) -> None:
    """Issue 21, point 2: with a CPU group on the scheduler, the scheduler's env gives unannotated
    tasks the GPU restriction (the preload reads it) and CPU workers offer `CPU`; without one, nothing."""
    from components import scheduler_preload

    s = settings_for(stack)
    container = dask_spec.dask_cluster(s.dask)["spec"]["scheduler"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    cpu_groups = [g for g in s.dask.worker_groups.values() if g.gpus_per_worker == 0]
    if cpu_groups:
        assert env.get(scheduler_preload.DEFAULT_RESOURCES_ENV) == '{"GPU": 1}', env
    else:
        assert scheduler_preload.DEFAULT_RESOURCES_ENV not in env, env
    for group in cpu_groups:
        args = dask_spec.dask_worker_group(s.dask, group)["spec"]["worker"]["spec"]["containers"][0]["args"]
        assert args[args.index("--resources") + 1] == f"CPU={max(int(group.cpu), 1)}", args


# --- spill sized to the data (issue 21, point 4) ----------------------------------------------------
def _quantity_gib(value: str) -> float:
    assert value.endswith("Mi"), value
    return int(value[:-2]) / 1024


def _worker_specs(stack: str) -> list[tuple[str, dict[str, Any], Any]]:
    s = settings_for(stack)
    specs = [("default", dask_spec.dask_cluster(s.dask)["spec"]["worker"]["spec"], s.dask.worker)]
    for name, group in s.dask.worker_groups.items():
        specs.append((name, dask_spec.dask_worker_group(s.dask, group)["spec"]["worker"]["spec"], group))
    return specs


@pytest.mark.parametrize("stack", STACKS)
def test_a_worker_stops_spilling_before_its_disk_evicts_it(stack: str) -> None:
    """The kubelet evicts a pod whose emptyDir passes its sizeLimit or whose ephemeral storage passes
    its limit. Dask's spill stops at `max-spill` (read from the worker's env as dask config); P2P
    shuffle shards and logs need the rest. A worker then holds its memory and as much again."""
    import dask.config

    for group, spec, settings in _worker_specs(stack):
        container = spec["containers"][0]
        env = {e["name"]: e["value"] for e in container.get("env") or [] if "value" in e}
        with dask.config.set(dask.config.collect_env(env)):
            max_spill = dask.config.get("distributed.worker.memory.max-spill")
        assert max_spill, f"{stack}/{group}: max-spill is off: the worker spills until the kubelet evicts it"
        [spill] = [v for v in spec["volumes"] if v["name"] == dask_spec.SPILL_VOLUME]
        size_limit = _quantity_gib(spill["emptyDir"]["sizeLimit"])
        limits = container["resources"]["limits"]
        ephemeral = _quantity_gib(limits["ephemeral-storage"])
        max_spill_gib = int(max_spill) / 1024**3
        assert max_spill_gib <= size_limit / 2, (stack, group, max_spill_gib, size_limit)  # the rest: P2P shuffle
        assert size_limit < ephemeral, f"{stack}/{group}: logs and the writable layer push the pod over its limit"
        memory = _quantity_gib(limits["memory"])
        assert memory + max_spill_gib >= min(1.45 * memory, memory + settings.spill_disk_gb / 2 - 1), (
            f"{stack}/{group}: a worker holds only {memory + max_spill_gib:.0f} GiB with {memory:.0f} GiB of memory"
        )


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_every_gpu_nodes_workers_fit_its_allocatable_ephemeral_storage(stack: str) -> None:
    """GKE reserves part of the boot disk (catalog.allocatable_ephemeral_storage_gb); workers whose
    ephemeral-storage requests do not fit one node leave GPUs idle (a pod stays Pending)."""
    s = settings_for(stack)
    for group, spec, settings in _worker_specs(stack):
        if not settings.gpus_per_worker:
            continue
        request = _quantity_gib(spec["containers"][0]["resources"]["requests"]["ephemeral-storage"])
        for pool in s.gpu_node_pools.values():
            if pool.scheduler_only or not pool.machine_type:
                continue
            per_node = pool.gpus_per_node // settings.gpus_per_worker
            room = catalog.allocatable_ephemeral_storage_gb(pool.disk_size_gb)
            assert per_node * request <= room, (
                f"{stack}/{group}: {per_node} workers x {request:.1f} GiB ephemeral storage > {room:.1f} GiB "
                f"allocatable on a {pool.machine_type} node with a {pool.disk_size_gb} GB disk"
            )


def test_allocatable_ephemeral_storage_matches_gkes_example() -> None:
    # GKE docs "Plan GKE Standard node sizes": a 100 GB boot disk, allocatable 47060071478 bytes.
    assert abs(catalog.allocatable_ephemeral_storage_gb(100) - 47060071478 / 1024**3) < 0.1


@pytest.mark.parametrize("stack", STACKS)
def test_the_prestop_grace_covers_moving_what_a_worker_holds(stack: str) -> None:
    """Retirement moves a worker's memory and its spilled data; the hook's deadline (and the grace
    after it) is sized to that at the stated rates, within the cluster autoscaler's 10 minutes."""
    for group, spec, settings in _worker_specs(stack):
        command = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
        namespace: dict[str, Any] = {"__name__": "rendered_prestop"}
        exec(compile(command[2], "<preStop>", "exec"), namespace)
        deadline = namespace["DEADLINE_S"]
        spilled = dask_spec.max_spill_bytes(settings.spill_disk_gb) / 1024**3
        needed = settings.memory_gb / dask_spec.RETIRE_MEMORY_GB_PER_S + spilled / dask_spec.RETIRE_DISK_GB_PER_S
        assert deadline >= min(needed, dask_spec.RETIRE_MAX_S), f"{stack}/{group}: {deadline} s < {needed:.0f} s"
        assert spec["terminationGracePeriodSeconds"] <= 600, spec["terminationGracePeriodSeconds"]
        assert spec["terminationGracePeriodSeconds"] >= deadline + 2


def test_a_spill_disk_that_does_not_fit_the_node_is_refused() -> None:
    from components.settings import SettingsError

    with pytest.raises(SettingsError) as err:
        settings_for("prod", dask={**_prod_dask(), "worker": {"replicas": 4, "spillGb": 150}})
    assert "dask.worker.spillGb: 150" in str(err.value) and "diskSizeGb" in str(err.value), err.value


def _prod_dask() -> dict[str, Any]:
    import json

    from tests.conftest import raw_config

    raw = raw_config("prod")[0]["dask"]
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def test_the_operators_rpc_fallbacks_give_up_quickly() -> None:
    """The NetworkPolicy drops the operator's packets to 8786: each RPC fallback waits its connect timeout."""
    import dask.config
    from dask.utils import parse_timedelta

    from components.operator_spec import operator_values

    env = {e["name"]: e["value"] for e in operator_values("system")["extraEnv"]}
    with dask.config.set(dask.config.collect_env(env)):
        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"))
    assert timeout is not None and timeout <= 5, f"the operator waits {timeout} s per dropped RPC"


def test_readme_states_prods_retire_deadline() -> None:
    from pathlib import Path

    s = settings_for("prod")
    deadline = dask_spec.retire_deadline_s(s.dask.worker.memory_gb, s.dask.worker.spill_disk_gb)
    text = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert f"prod's A100 workers {deadline} s" in text, deadline
