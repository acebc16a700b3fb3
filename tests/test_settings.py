"""Settings: the config contract, its defaults and every bad input it must refuse."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import replace
from typing import Any

import pytest
from google.cloud.container_v1 import types as gke
from hypothesis import given, settings
from hypothesis import strategies as st

from components.catalog import A100_40GB, A100_80GB, A100_MACHINE_TYPES, CPU_MACHINE_TYPES
from components.settings import (
    COLOCATION_MODES,
    DRIVER_MODES,
    GROUP_KEYS,
    RELEASE_CHANNELS,
    SCALAR_KEYS,
    SECTIONS,
    TOP,
    SettingsError,
    parse_settings,
)
from components.settings.keys import POOL as POOL_KEYS_DECLARED
from components.settings.reader import _Problems, _Reader
from gpudask.record.recorder import load_config
from tests.conftest import STACKS, raw_config, settings_for

POOL = {"machineType": "a2-highgpu-1g", "minNodes": 0, "maxNodes": 2, "spot": True}
IMAGE_B = "rapidsai/notebooks:26.10-cuda12-py3.12"


def _dask(**extra: Any) -> dict[str, Any]:
    return {"name": "rapids", "image": "rapidsai/base:26.10-cuda12-py3.12", **extra}


def problems_of(**overrides: Any) -> list[str]:
    raw, project = raw_config("dev", **overrides)
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, project)
    return caught.value.problems


@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_stack_parses(stack: str) -> None:
    s = settings_for(stack)
    assert s.gpu_node_pools, "a stack without GPU pools is refused"
    assert (
        s.dask.scheduler_address
        == f"{'tls' if s.dask.tls else 'tcp'}://{s.dask.name}-scheduler.{s.dask.namespace}.svc.cluster.local:8786"
    )


def test_dev_and_prod_differ_where_the_issue_asks() -> None:
    dev, prod = settings_for("dev"), settings_for("prod")
    assert dev.gpu_node_pools["a100"].machine_type == "a2-highgpu-1g"
    assert dev.gpu_node_pools["a100"].spot and dev.gpu_node_pools["a100"].min_nodes == 0
    # Dev scales to zero, so its cold start counts: GKE installs the driver (issue 15); prod keeps the seed's DaemonSet.
    assert dev.driver == "gke-latest" and dev.image_prepuller and not dev.protect
    assert prod.driver == "daemonset"
    assert prod.protect and not any(p.spot for p in prod.gpu_node_pools.values())
    assert all(p.gpus_per_node >= 2 for p in prod.gpu_node_pools.values())


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"gpuNodePools": {"a100": {**POOL, "machineType": "a2-highgpu-3g"}}},
            "gpuNodePools.a100.machineType: 'a2-highgpu-3g' is not an A100 machine type; one of a2-highgpu-1g",
        ),
        (
            {"gpuNodePools": {"a100": {**POOL, "machineType": "n1-standard-8"}}},
            "gpuNodePools.a100.machineType: 'n1-standard-8' is not an A100",
        ),
        ({"gpuNodePools": {"a100": {**POOL, "machineType": "a2-ultragpu-16g"}}}, "'a2-ultragpu-16g' is not an A100"),
        (
            {"gpuNodePools": {"a100": {**POOL, "minNodes": 3, "maxNodes": 2}}},
            "gpuNodePools.a100.minNodes: 3 is greater than maxNodes (2)",
        ),
        (
            {"gpuNodePools": {"a100": {**POOL, "minNodes": -1}}},
            "gpuNodePools.a100.minNodes: -1 must be an integer >= 0",
        ),
        (
            {"gpuNodePools": {"a100": {**POOL, "maxNodes": 0}}},
            "gpuNodePools.a100.maxNodes: 0 means this pool can never hold a node",
        ),
        ({"gpuNodePools": {"a100": {**POOL, "spot": "yes"}}}, "gpuNodePools.a100.spot: 'yes' must be true or false"),
        (
            {"gpuNodePools": {"a100": {**POOL, "machinetype": "a2-highgpu-1g"}}},
            "gpuNodePools.a100.machinetype: 'a2-highgpu-1g' is not a known key",
        ),
        (
            {"gpuNodePools": {"a100": {**POOL, "zones": ["europe-west4-a"]}}},
            "gpuNodePools.a100.zones: ['europe-west4-a'] must be omitted or [us-central1-c]",
        ),
        ({"gpuNodePools": {}}, "gpuNodePools: {} must define at least one A100 pool"),
        ({"gpuNodePools": {"System": POOL}}, "gpuNodePools.System: 'System' is not a valid pool name"),
        (
            {"dask": _dask(worker={"gpusPerWorker": 2})},
            "dask.worker.gpusPerWorker: 2 GPUs per worker exceed the largest node (1 GPUs) in pools a100",
        ),
        ({"dask": _dask(worker={"gpusPerWorker": 0})}, "dask.worker.gpusPerWorker: 0 must be an integer >= 1"),
        ({"dask": _dask(worker={"replicas": -2})}, "dask.worker.replicas: -2 must be an integer >= 0"),
        (
            {"dask": _dask(worker={"replicas": 3})},
            "dask.worker.replicas: 3 workers x 1 GPUs do not fit in maxNodes of pools a100 (room for 2)",
        ),
        (
            {"dask": _dask(worker={"replicas": 2}, colocation="required")},
            "dask.colocation: 'required' needs 2 workers x 1 GPUs = 2 GPUs on one node, but the largest node has 1",
        ),
        (
            {"dask": _dask(colocation="sometimes")},
            "dask.colocation: 'sometimes' is not allowed; one of preferred, required, none",
        ),
        ({"dask": _dask(name="Rapids_GPU")}, "dask.name: 'Rapids_GPU' is not a valid DaskCluster name"),
        ({"dask": _dask(name="r" * 54)}, "at most 53 characters"),
        ({"dask": _dask(namespace="Dask NS")}, "dask.namespace: 'Dask NS' is not a DNS-1123 label"),
        ({"dask": _dask(namespace="default")}, "dask.namespace: 'default' is shared"),
        ({"dask": _dask(namespace="dask-operator")}, "dask.namespace: 'dask-operator' is shared"),
        (
            {"dask": _dask(clientNamespaces=["Notebooks"])},
            "dask.clientNamespaces[0]: 'Notebooks' is not a DNS-1123 label",
        ),
        ({"dask": _dask(clientCidrs=["10.0.0.0/33"])}, "dask.clientCidrs[0]: '10.0.0.0/33' is not a valid CIDR"),
        (
            {"dask": _dask(clientCidrs=["0.0.0.0/0"])},
            "dask.clientCidrs[0]: '0.0.0.0/0' opens the range to the whole internet",
        ),
        ({"dask": _dask(tls="yes")}, "dask.tls: 'yes'"),
        ({"dask": _dask(image="rapidsai/base")}, "dask.image: 'rapidsai/base' has no tag"),
        ({"dask": _dask(image="rapidsai/base:latest")}, "dask.image: 'rapidsai/base:latest' uses :latest"),
        (
            {"dask": _dask(schedulerService="LoadBalancer")},
            "dask.schedulerService: 'LoadBalancer' would expose the scheduler",
        ),
        (
            {"dask": _dask(schedulerService="NodePort")},
            "dask.schedulerService: 'NodePort' is not allowed; one of ClusterIP, InternalLoadBalancer",
        ),
        ({"dask": _dask(schedulerService="InternalLoadBalancer")}, "dask.clientCidrs: [] must list the client ranges"),
        (
            {"dask": _dask(worker={"pool": "h100"})},
            "dask.worker.pool: 'h100' is not a GPU pool of this stack; one of a100",
        ),
        (
            {"dask": _dask(autoscale={"minimum": 3, "maximum": 1})},
            "dask.autoscale.minimum: 3 is greater than maximum (1)",
        ),
        (
            {"dask": _dask(workerGroups={"cpu": {"replicas": 1, "gpusPerWorker": 0, "pool": "a100"}})},
            "dask.workerGroups.cpu.pool: 'a100' CPU workers (gpusPerWorker: 0) run on the 'system' pool",
        ),
        (
            {"dask": _dask(workerGroups={"big": {"gpusPerWorker": 4}})},
            "dask.workerGroups.big.gpusPerWorker: 4 GPUs per worker exceed the largest node",
        ),
        (
            {"dask": _dask(workerGroups={"default": {"gpusPerWorker": 0}})},
            "dask.workerGroups.default: 'default' is not a valid worker group name",
        ),
        (
            {"dask": _dask(workerGroups={"gpu": {"gpusPerWorker": 1}})},
            "dask.workerGroups.gpu: 'gpu' is not a valid worker group name",
        ),
        ({"dask": _dask(wokers=2)}, "dask.wokers: 2 is not a known key"),
        (
            {"authorizedNetworks": ["0.0.0.0/0"]},
            "authorizedNetworks[0]: '0.0.0.0/0' opens the range to the whole internet",
        ),
        ({"authorizedNetworks": ["::/0"]}, "authorizedNetworks[0]: '::/0' opens the range to the whole internet"),
        ({"authorizedNetworks": ["10.0.0.300/24"]}, "authorizedNetworks[0]: '10.0.0.300/24' is not a valid CIDR"),
        ({"authorizedNetworks": ["10.0.0.1/24"]}, "authorizedNetworks[0]: '10.0.0.1/24' is not a valid CIDR"),
        ({"authorizedNetworks": []}, "authorizedNetworks: [] must list at least one CIDR"),
        (
            {"driver": "nvidia-operator"},
            "driver: 'nvidia-operator' is not allowed; one of daemonset, gke-default, gke-latest",
        ),
        (
            {"releaseChannel": "stable"},
            "releaseChannel: 'stable' is not allowed; one of RAPID, REGULAR, STABLE, EXTENDED",
        ),
        ({"operatorVersion": ">=2026.3"}, "operatorVersion: '>=2026.3' must be an exact chart version"),
        ({"location": "us-central"}, "location: 'us-central' is neither a zone"),
        ({"clusterName": "GPU"}, "clusterName: 'GPU' must be lowercase"),
        (
            {"systemMachineType": "a2-highgpu-1g"},
            "systemMachineType: 'a2-highgpu-1g' is not a supported CPU machine type",
        ),
        ({"systemMinNodes": 4}, "systemMinNodes: 4 is greater than systemMaxNodes (3)"),
        ({"podsCidr": "10.10.0.0/16"}, "podsCidr: '10.10.0.0/16' overlaps subnetCidr (10.10.0.0/20)"),
        ({"masterCidr": "172.16.0.0/24"}, "masterCidr: '172.16.0.0/24' must be a /28"),
        ({"subnetCidr": "8.8.0.0/20"}, "subnetCidr: '8.8.0.0/20' must be a private"),
        ({"protect": "maybe"}, "protect: 'maybe' must be true or false"),
        ({"location": None}, "location: None is required"),
    ],
)
def test_bad_input_names_key_value_and_what_is_allowed(overrides: dict[str, Any], expected: str) -> None:
    found = problems_of(**overrides)
    assert any(expected in p for p in found), f"expected {expected!r} among:\n" + "\n".join(found)


def test_all_problems_are_reported_at_once() -> None:
    found = problems_of(
        authorizedNetworks=["0.0.0.0/0"],
        driver="sometimes",
        gpuNodePools={"a100": {**POOL, "machineType": "a2-highgpu-3g"}},
        dask=_dask(name="BAD", image="x:latest"),
    )
    keys = {p.split(":", 1)[0] for p in found}
    assert {"authorizedNetworks[0]", "driver", "gpuNodePools.a100.machineType", "dask.name", "dask.image"} <= keys
    message = str(SettingsError(found))
    assert message.count("\n  - ") == len(found)


def test_the_default_groups_old_keys_are_refused_with_their_new_names_all_at_once() -> None:
    # The default group (`dask.worker`) reads the words of `dask.workerGroups.<name>`.
    found = problems_of(dask=_dask(workers=3, gpusPerWorker=1, workerCpu=4, workerMemoryGb=16, pool="a100", name="BAD"))
    for old, value, new in [
        ("workers", "3", "worker.replicas"),
        ("gpusPerWorker", "1", "worker.gpusPerWorker"),
        ("workerCpu", "4", "worker.cpu"),
        ("workerMemoryGb", "16", "worker.memoryGb"),
        ("pool", "'a100'", "worker.pool"),
    ]:
        assert f"dask.{old}: {value} is no longer a key: use dask.{new}" in found, found
    assert any(p.startswith("dask.name:") for p in found)  # and every other problem with them


def test_the_default_group_and_extra_groups_read_the_same_keys() -> None:
    s = settings_for(
        "dev",
        dask=_dask(
            worker={"replicas": 2, "gpusPerWorker": 1, "cpu": 3, "memoryGb": 20, "pool": "a100", "image": IMAGE_B},
            workerGroups={
                "more": {"replicas": 2, "gpusPerWorker": 1, "cpu": 3, "memoryGb": 20, "pool": "a100", "image": IMAGE_B}
            },
        ),
    )
    assert replace(s.dask.worker, name="more") == s.dask.worker_groups["more"]
    assert s.dask.image != IMAGE_B  # the scheduler keeps dask.image
    assert {"replicas", "gpusPerWorker", "cpu", "memoryGb", "spillGb", "image", "pool"} == GROUP_KEYS


def test_missing_gcp_project_is_reported() -> None:
    raw, _ = raw_config("dev")
    with pytest.raises(SettingsError, match=r"gcp:project: None is required"):
        parse_settings(raw, None)


@pytest.mark.parametrize("name", sorted(A100_MACHINE_TYPES))
def test_accelerator_type_and_count_follow_the_machine_type(name: str) -> None:
    s = settings_for("dev", gpuNodePools={"a100": {**POOL, "machineType": name}}, dask=_dask(worker={"replicas": 1}))
    pool = s.gpu_node_pools["a100"]
    family, size = name.split("-")[1], int(name.split("-")[2].rstrip("g"))
    assert pool.gpus_per_node == size
    assert pool.accelerator_type == (A100_80GB if family == "ultragpu" else A100_40GB)


def test_machine_catalog_matches_the_published_table() -> None:
    # Compute Engine A2 machine table: (GPUs, vCPU, GB).
    table = {
        "a2-highgpu-1g": (1, 12, 85), "a2-highgpu-2g": (2, 24, 170), "a2-highgpu-4g": (4, 48, 340),
        "a2-highgpu-8g": (8, 96, 680), "a2-megagpu-16g": (16, 96, 1360), "a2-ultragpu-1g": (1, 12, 170),
        "a2-ultragpu-2g": (2, 24, 340), "a2-ultragpu-4g": (4, 48, 680), "a2-ultragpu-8g": (8, 96, 1360),
    }  # fmt: skip
    assert {n: (m.gpus, m.vcpu, m.memory_gb) for n, m in A100_MACHINE_TYPES.items()} == table


def test_allocatable_follows_gkes_reservation_formula() -> None:
    e2 = CPU_MACHINE_TYPES["e2-standard-4"]  # 4 vCPU, 16 GiB
    assert e2.allocatable_cpu == pytest.approx(4 - (0.06 + 0.01 + 2 * 0.005))
    assert e2.allocatable_memory_gb == pytest.approx(16 - (1 + 0.8 + 0.8) - 0.1)
    a2 = A100_MACHINE_TYPES["a2-highgpu-1g"]  # 85 GiB: 1 + 0.8 + 0.8 + 69 * 0.06
    assert a2.allocatable_memory_gb == pytest.approx(85 - (2.6 + 69 * 0.06) - 0.1)


def test_default_worker_resources_fit_the_node() -> None:
    s = settings_for("prod")
    machine = s.gpu_node_pools["a100"].machine
    per_node = machine.gpus // s.dask.worker.gpus_per_worker
    assert s.dask.worker.cpu * per_node <= machine.allocatable_cpu - 1
    assert s.dask.worker.memory_gb * per_node <= machine.allocatable_memory_gb - 3


def test_the_pulumi_yaml_default_of_authorized_networks_is_accepted_with_existing_cluster_only() -> None:
    raw, _ = raw_config("existing")
    assert parse_settings({**raw, "authorizedNetworks": "[]"}, None).authorized_networks == ()
    raw, project = raw_config("dev")
    with pytest.raises(SettingsError) as caught:
        parse_settings({**raw, "authorizedNetworks": "[]"}, project)
    assert "authorizedNetworks: [] must list at least one CIDR" in str(caught.value)


def test_enums_are_gkes_own_names() -> None:
    assert set(DRIVER_MODES.values()) <= {e.name for e in gke.GPUDriverInstallationConfig.GPUDriverVersion}
    assert set(RELEASE_CHANNELS) <= {e.name for e in gke.ReleaseChannel.Channel}
    assert DRIVER_MODES["daemonset"] == "INSTALLATION_DISABLED"
    assert COLOCATION_MODES == ("preferred", "required", "none")


@settings(max_examples=60, deadline=None)
@given(
    machine=st.sampled_from(sorted(A100_MACHINE_TYPES)),
    max_nodes=st.integers(min_value=1, max_value=4),
    workers=st.integers(min_value=0, max_value=40),
    gpus=st.just(1),  # more than one GPU per worker pod is refused (test below)
    colocation=st.sampled_from(COLOCATION_MODES),
)
def test_settings_are_accepted_exactly_when_they_fit_the_pools(
    machine: str, max_nodes: int, workers: int, gpus: int, colocation: str
) -> None:
    pools = {"a100": {**POOL, "machineType": machine, "maxNodes": max_nodes}}
    raw, project = raw_config(
        "dev",
        gpuNodePools=pools,
        dask=_dask(worker={"replicas": workers, "gpusPerWorker": gpus}, colocation=colocation),
    )
    node_gpus = A100_MACHINE_TYPES[machine].gpus
    fits = gpus <= node_gpus and workers <= (node_gpus // gpus) * max_nodes
    fits = fits and (colocation != "required" or workers * gpus <= node_gpus)
    if not fits:
        # Refused, and only for not fitting: every problem names a key of the fit.
        with pytest.raises(SettingsError) as refused:
            parse_settings(raw, project)
        assert all(
            p.startswith(("dask.worker.gpusPerWorker", "dask.worker.replicas", "dask.colocation"))
            for p in refused.value.problems
        )
        return
    s = parse_settings(raw, project)  # a config that fits is accepted
    assert s.dask.worker.cpu >= 1


def test_prod_clients_are_inside_the_vpc_or_a_peered_network() -> None:
    s = settings_for("prod")
    reachable = [ipaddress.ip_network(c) for c in (s.network.subnet_cidr, s.network.pods_cidr, *s.network.peered_cidrs)]
    for cidr in s.dask.client_cidrs:
        assert any(ipaddress.ip_network(cidr).subnet_of(n) for n in reachable), cidr  # type: ignore[arg-type]


def test_client_ranges_no_route_reaches_are_refused() -> None:
    dask = json.loads(load_config("prod")["gpu-dask:dask"]) | {"clientCidrs": ["10.128.0.0/20"]}
    with pytest.raises(SettingsError) as raised:
        settings_for("prod", dask=dask)  # the default VPC's range, as prod listed before
    assert any(
        p.startswith("dask.clientCidrs[0]: '10.128.0.0/20' is outside the cluster's VPC") and "peeredCidrs" in p
        for p in raised.value.problems
    ), raised.value.problems
    # Listing the network it lives in as peered makes it reachable.
    settings_for("prod", dask=dask, peeredCidrs=["10.128.0.0/9"])


def test_peered_ranges_must_not_overlap_the_vpc() -> None:
    with pytest.raises(SettingsError) as raised:
        settings_for("prod", peeredCidrs=["10.10.0.0/16"])
    assert any(p.startswith("peeredCidrs[0]: '10.10.0.0/16' overlaps subnetCidr") for p in raised.value.problems)


# --- existingCluster: deploy onto a cluster this stack does not own ----------------------------
EXISTING = {"context": "gke_p_us-central1-c_team", "systemPool": "default-pool"}


def existing_problems(**overrides: Any) -> list[str]:
    raw, project = raw_config("existing", **overrides)
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, project)
    return caught.value.problems


def test_existing_cluster_needs_no_project_and_no_authorized_networks() -> None:
    raw, _ = raw_config("existing")
    s = parse_settings(raw, None)
    assert s.existing_cluster is not None
    assert s.authorized_networks == () and s.labels == {}
    assert s.system_pool == s.dask.system_pool == s.existing_cluster.system_pool


def test_existing_cluster_system_pool_defaults_to_system() -> None:
    s = settings_for("existing", existingCluster={"context": "gke_p_us-central1-c_team"}, dask={"schedulerGpu": False})
    assert s.system_pool == "system" and s.existing_cluster is not None
    assert s.existing_cluster.context == "gke_p_us-central1-c_team"


def test_a_gke_stack_has_no_existing_cluster() -> None:
    assert settings_for("dev").existing_cluster is None and settings_for("dev").system_pool == "system"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"existingCluster": {"systemPool": "default-pool"}}, "existingCluster.context: None is required"),
        (
            {"existingCluster": {**EXISTING, "kubeconfig": "~/.kube/config"}},
            "existingCluster.kubeconfig: '~/.kube/config' is no longer read: the provider would store this "
            "machine's path in the stack's state; set KUBECONFIG in the environment",
        ),
        ({"existingCluster": {**EXISTING, "cluster": "x"}}, "existingCluster.cluster: 'x' is not a known key"),
        ({"existingCluster": {**EXISTING, "systemPool": "Bad_Pool"}}, "existingCluster.systemPool: 'Bad_Pool' is not"),
        ({"existingCluster": "~/.kube/config"}, "existingCluster: '~/.kube/config' must be a map with context"),
        (
            {"authorizedNetworks": ["10.0.0.0/8"]},
            "authorizedNetworks: ['10.0.0.0/8'] has no effect with existingCluster",
        ),
        ({"labels": {"team": "a"}}, "labels: {'team': 'a'} has no effect with existingCluster"),
        (
            {"gpuNodePools": {"default-pool": POOL}},
            "gpuNodePools.default-pool: 'default-pool' is not a valid pool name",
        ),
        (
            {"dask": _dask(workerGroups={"cpu": {"gpusPerWorker": 0, "pool": "system"}})},
            "dask.workerGroups.cpu.pool: 'system' CPU workers (gpusPerWorker: 0) run on the 'default-pool' pool",
        ),
    ],
)
def test_bad_existing_cluster_config_names_key_value_and_what_is_allowed(
    overrides: dict[str, Any], expected: str
) -> None:
    found = existing_problems(**overrides)
    assert any(expected in p for p in found), f"expected {expected!r} among:\n" + "\n".join(found)


def test_operator_chart_defaults_to_the_published_repository_and_refuses_machine_paths_and_urls() -> None:
    raw, project = raw_config("dev")
    assert parse_settings({**raw, "operatorChart": ""}, project).operator_chart == ""
    chart = "charts/dask-kubernetes-operator-2026.3.0.tgz"
    assert parse_settings({**raw, "operatorChart": chart}, project).operator_chart == chart
    for bad in ("~/charts/op.tgz", "https://helm.dask.org"):
        with pytest.raises(SettingsError) as caught:
            parse_settings({**raw, "operatorChart": bad}, project)
        assert f"operatorChart: {bad!r} must be empty (the published repository) or a chart folder" in str(caught.value)


def test_a_regional_clusters_scheduler_pool_sits_where_its_gpu_is() -> None:
    """us-central1 has zones a, b, c and f; L4 (g2-standard-4) is offered in a, b and c only."""
    s = settings_for("dev", location="us-central1")
    assert s.regional and s.scheduler_pool is not None
    assert s.scheduler_pool.zones == ("us-central1-a", "us-central1-b", "us-central1-c")
    # A zonal cluster's pool stays in the cluster's zone.
    zonal = settings_for("dev").scheduler_pool
    assert zonal is not None and zonal.zones == ()


def test_the_scheduler_pools_node_locations_reach_the_node_pool(recorded: Any) -> None:
    rec = recorded("dev", overrides={"gpu-dask:location": "us-central1"})
    pool = next(p for p in rec.of_type("gcp:container/nodePool:NodePool") if p.inputs["name"] == "scheduler")
    assert pool.inputs["nodeLocations"] == ["us-central1-a", "us-central1-b", "us-central1-c"]


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def test_omitted_keys_read_as_their_declared_defaults() -> None:
    """The parser applies the defaults of components/settings/keys.py (which README and Pulumi.yaml
    print): a config that sets only what is required parses to every declared static default."""
    raw: dict[str, Any] = {k.name: k.default for k in TOP.values() if k.name in SCALAR_KEYS}
    raw |= {"gpuNodePools": {"a100": {"machineType": "a2-highgpu-1g"}}}
    raw["dask"] = {"workerGroups": {"extra": {}}, "autoscale": {"maximum": 1}}
    s = parse_settings(raw, "docs-project")
    assert s.dask.autoscale is not None
    parsed = {
        "gpuNodePools.<name>": vars(s.gpu_node_pools["a100"]),
        "dask": vars(s.dask),
        "dask.worker": vars(s.dask.worker),
        "dask.workerGroups.<group>": vars(s.dask.worker_groups["extra"]),
        "dask.autoscale": vars(s.dask.autoscale),
        "monitoring": vars(s.monitoring),
        "monitoring.alerts": vars(s.monitoring.alerts),
    }
    checked = 0
    # Top-level keys have no parser default: Pulumi applies Pulumi.yaml's (tests/test_docs.py).
    for path, section in SECTIONS.items():
        for key in section.values():
            static = key.default is not None and (key.default_doc is None or "{value}" in key.default_doc)
            if path not in parsed or not static or key.type in ("map", "object"):
                continue
            value = parsed[path][_snake(key.name)]
            assert (list(value) if isinstance(value, tuple) else value) == key.default, f"{path}.{key.name}"
            checked += 1
    assert checked >= 30, checked


def test_the_parser_reads_keys_only_as_declared() -> None:
    """Reading a key the declaration lacks, or as another type, is a bug the first parse shows."""
    r = _Reader(_Problems(), "gpuNodePools.a100.", {}, POOL_KEYS_DECLARED)
    with pytest.raises(KeyError):
        r.string("machineTyp")
    with pytest.raises(TypeError, match=r"gpuNodePools.a100.machineType is declared as string, read as integer"):
        r.integer("machineType")


def _with(section: str, key: str, value: Any) -> dict[str, Any]:
    """dev's config with `value` at `section`.`key` (one of the objects dev's stack file sets)."""
    raw, _ = raw_config("dev")
    if section == "":
        return {**raw, key: value}
    if section == "gpuNodePools.<name>":
        pools = json.loads(raw["gpuNodePools"])
        return {**raw, "gpuNodePools": {name: {**body, key: value} for name, body in pools.items()}}
    top = section.split(".")[0]
    return {**raw, top: {**json.loads(raw.get(top) or "{}"), key: value}}


@pytest.mark.parametrize(
    ("section", "key"),
    [
        (path, key.name)
        for path, section in {"": TOP, **SECTIONS}.items()
        if path in ("", "gpuNodePools.<name>", "dask", "monitoring")
        for key in section.values()
        if key.allowed
    ],
)
def test_every_declared_list_of_allowed_values_is_what_the_parser_accepts(section: str, key: str) -> None:
    """The `accepts` column of README's reference is the parser's rule: a value outside the declared
    list is refused with key and value; each listed value passes that key's check."""
    declared = ({"": TOP, **SECTIONS}[section])[key]
    path = f"{section.replace('<name>', 'a100')}.{key}".lstrip(".")
    with pytest.raises(SettingsError) as caught:
        parse_settings(_with(section, key, "not-a-value"), "gpu-dask-dev")
    assert any(p.startswith(f"{path}: 'not-a-value' ") for p in caught.value.problems), caught.value.problems
    for value in declared.allowed:  # another rule may object to a combination; the list never does
        refused = [p for p in _problems(_with(section, key, value)) if p.startswith(f"{path}: {value!r} is not")]
        assert refused == [], refused


def _problems(raw: dict[str, Any]) -> list[str]:
    try:
        parse_settings(raw, "gpu-dask-dev")
    except SettingsError as refused:
        return refused.problems
    return []
