"""Each component built on its own under the mocks, from hand-made narrow args (no stack
settings, no `__main__.py`): what it creates, with which key inputs and options, under which
parent, and what it registers as outputs."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_gcp as gcp
import pytest

from components.cluster import NODE_ROLES, PROJECT_APIS, GkeCluster, GkeClusterArgs
from components.dask_cluster import GpuDaskCluster, GpuDaskClusterArgs
from components.dask_tls import DaskTls, DaskTlsArgs
from components.driver import NvidiaDriverInstaller
from components.gpu_pool import GpuNodePool, GpuNodePoolArgs
from components.network import Network, NetworkArgs
from components.operator import DaskOperator, DaskOperatorArgs
from components.prepuller import ImagePrepuller, ImagePrepullerArgs
from components.settings import AutoscaleSettings, DaskSettings, GpuPoolSettings, WorkerGroupSettings
from gpudask.record.recorder import Recorded, Recording, record
from tests.conftest import STACKS

Run = Callable[..., Recording]

IMAGE = "rapidsai/base:26.10-cuda12-py3.12"


def built(build: Callable[[], object]) -> Recording:
    return record(build, stack="unit")


def named(rec: Recording, name: str) -> Recorded:
    (found,) = [r for r in rec.resources.values() if r.name == name]
    return found


def children(rec: Recording, parent: Recorded) -> dict[str, Recorded]:
    return {r.name: r for r in rec.resources.values() if r.parent == parent.urn}


# --- Network -------------------------------------------------------------------------------------
def test_network_builds_a_vpc_a_subnet_with_pod_and_service_ranges_and_nat_for_it() -> None:
    args = NetworkArgs(
        project="p-1",
        region="europe-west4",
        name_prefix="team",
        subnet_cidr="10.1.0.0/20",
        pods_cidr="10.2.0.0/16",
        services_cidr="10.3.0.0/20",
    )
    made: dict[str, Network] = {}
    rec = built(lambda: made.setdefault("net", Network("net", args)))
    network = named(rec, "net")
    kids = children(rec, network)
    assert set(kids) == {"net-vpc", "net-subnet", "net-router", "net-nat"}
    vpc, subnet, router, nat = (kids[f"net-{k}"] for k in ("vpc", "subnet", "router", "nat"))
    assert vpc.inputs["name"] == "team-vpc" and vpc.inputs["autoCreateSubnetworks"] is False
    assert subnet.inputs["name"] == "team-nodes" and subnet.inputs["region"] == "europe-west4"
    assert subnet.inputs["network"] == vpc.id and subnet.inputs["ipCidrRange"] == "10.1.0.0/20"
    assert subnet.inputs["privateIpGoogleAccess"] is True
    ranges = {r["rangeName"]: r["ipCidrRange"] for r in subnet.inputs["secondaryIpRanges"]}
    assert ranges == {made["net"].pods_range: "10.2.0.0/16", made["net"].services_range: "10.3.0.0/20"}
    assert router.inputs["network"] == vpc.id and router.inputs["region"] == "europe-west4"
    assert nat.inputs["router"] == "team-router" and nat.inputs["region"] == "europe-west4"
    assert nat.inputs["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
    assert {r.inputs["project"] for r in kids.values()} == {"p-1"}
    assert network.registered_outputs == {"vpc": vpc.id, "subnet": subnet.id}


# --- GKE cluster ---------------------------------------------------------------------------------
def _cluster_args(location: str = "europe-west4-b", **changes: Any) -> GkeClusterArgs:
    values: dict[str, Any] = {
        "project": "p-1",
        "location": location,
        "cluster_name": "team",
        "network_id": "projects/p-1/global/networks/shared",
        "subnet_id": "projects/p-1/regions/europe-west4/subnetworks/shared-nodes",
        "pods_range": "pod-ips",
        "services_range": "svc-ips",
        "master_cidr": "172.16.9.0/28",
        "authorized_networks": ("192.0.2.0/24",),
        "release_channel": "REGULAR",
        "system_machine_type": "e2-standard-8",
        "system_min_nodes": 2,
        "system_max_nodes": 5,
        "protect": True,
        "labels": {"team": "ml"},
    }
    return GkeClusterArgs(**(values | changes))


def _built_cluster(args: GkeClusterArgs) -> tuple[Recording, Recorded, dict[str, Recorded]]:
    rec = built(lambda: GkeCluster("gke", args))
    gke = named(rec, "gke")
    return rec, gke, children(rec, gke)


def test_gke_cluster_uses_the_given_network_and_ranges_and_adds_a_protected_system_pool() -> None:
    _, gke, kids = _built_cluster(_cluster_args())
    role_members = {f"gke-nodes-{key}" for key in NODE_ROLES}
    apis = {f"gke-api-{key}" for key in PROJECT_APIS}
    assert set(kids) == {"gke-nodes", "gke-cluster", "gke-system-pool", *role_members, *apis}
    cluster, pool, account = kids["gke-cluster"], kids["gke-system-pool"], kids["gke-nodes"]
    i = cluster.inputs
    assert (i["name"], i["project"], i["location"]) == ("team", "p-1", "europe-west4-b")
    assert i["network"] == "projects/p-1/global/networks/shared"
    assert i["subnetwork"] == "projects/p-1/regions/europe-west4/subnetworks/shared-nodes"
    assert i["ipAllocationPolicy"] == {"clusterSecondaryRangeName": "pod-ips", "servicesSecondaryRangeName": "svc-ips"}
    assert i["privateClusterConfig"]["masterIpv4CidrBlock"] == "172.16.9.0/28"
    assert [b["cidrBlock"] for b in i["masterAuthorizedNetworksConfig"]["cidrBlocks"]] == ["192.0.2.0/24"]
    assert i["releaseChannel"] == {"channel": "REGULAR"}
    assert i["resourceLabels"] == {"app": "gpu-dask", "team": "ml"}
    assert i["deletionProtection"] is True and cluster.protect and pool.protect
    assert i["nodeConfig"]["serviceAccount"] == account.outputs["email"]
    assert account.inputs["accountId"] == "team-nodes"
    # The transient default pool's nodes get their roles first.
    assert {r.urn for r in kids.values() if r.name in role_members} <= set(cluster.dependencies)
    # The system pool: fixed name, counts from the args, waits for the node roles and APIs.
    p = pool.inputs
    assert p["name"] == "system" and p["cluster"] == cluster.id and p["location"] == "europe-west4-b"
    assert p["initialNodeCount"] == 2.0  # zonal: the minimum
    assert (p["autoscaling"]["totalMinNodeCount"], p["autoscaling"]["totalMaxNodeCount"]) == (2.0, 5.0)
    assert p["nodeConfig"]["machineType"] == "e2-standard-8"
    assert p["nodeConfig"]["resourceLabels"] == {"app": "gpu-dask", "team": "ml"}
    assert {r.urn for r in kids.values() if r.name in role_members | apis} <= set(pool.dependencies)
    assert pool.delete_before_replace and set(pool.ignore_changes) == {"nodeCount", "initialNodeCount"}
    outputs = gke.registered_outputs or {}
    assert set(outputs) == {"name", "endpoint", "dnsEndpoint", "kubeconfig"}
    assert outputs["name"] == "team"
    assert "current-context: gke_p-1_europe-west4-b_team" in outputs["kubeconfig"]
    assert outputs["dnsEndpoint"] in outputs["kubeconfig"]


def test_gke_cluster_without_protection_or_labels_and_in_a_region() -> None:
    args = _cluster_args(location="europe-west4", protect=False)
    args = GkeClusterArgs(**{f: getattr(args, f) for f in args.__dataclass_fields__ if f != "labels"})
    _, _, kids = _built_cluster(args)
    cluster, pool = kids["gke-cluster"], kids["gke-system-pool"]
    assert cluster.inputs["deletionProtection"] is False and not cluster.protect and not pool.protect
    assert cluster.inputs["resourceLabels"] == {"app": "gpu-dask"}  # labels omitted
    assert pool.inputs["initialNodeCount"] == 1.0  # per zone in a region: one, not the minimum


# --- GPU node pool -------------------------------------------------------------------------------
def _pool(**changes: Any) -> GpuPoolSettings:
    values: dict[str, Any] = {
        "name": "big",
        "machine_type": "a2-ultragpu-2g",
        "min_nodes": 1,
        "max_nodes": 3,
        "spot": True,
        "disk_size_gb": 250,
        "zones": ("europe-west4-a",),
    }
    return GpuPoolSettings(**(values | changes))


def _built_pool(location: str, pool: GpuPoolSettings, **changes: Any) -> tuple[Recorded, Recorded, list[Recorded]]:
    def build() -> None:
        before = [gcp.projects.Service(f"api-{n}", service=f"s{n}.googleapis.com") for n in range(2)]
        values: dict[str, Any] = {
            "project": "p-1",
            "location": location,
            "cluster_id": "projects/p-1/locations/x/clusters/team",
            "service_account": "nodes@p-1.iam.gserviceaccount.com",
            "pool": pool,
            "driver_version": "INSTALLATION_DISABLED",
            "protect": True,
            "after": before,
        }
        GpuNodePool("gpu-big", GpuNodePoolArgs(**(values | changes)))

    rec = built(build)
    owner = named(rec, "gpu-big")
    (node_pool,) = children(rec, owner).values()
    return owner, node_pool, [r for r in rec.resources.values() if r.name.startswith("api-")]


def test_gpu_node_pool_follows_its_machine_type_driver_mode_and_waits_for_what_it_is_given() -> None:
    owner, node_pool, before = _built_pool("europe-west4-b", _pool(), labels={"team": "ml"}, image_streaming=False)
    i = node_pool.inputs
    assert node_pool.name == "gpu-big-pool" and i["name"] == "big" and i["project"] == "p-1"
    assert i["cluster"] == "projects/p-1/locations/x/clusters/team" and i["location"] == "europe-west4-b"
    assert i["nodeLocations"] == ["europe-west4-a"] and i["initialNodeCount"] == 1.0
    assert (i["autoscaling"]["totalMinNodeCount"], i["autoscaling"]["totalMaxNodeCount"]) == (1.0, 3.0)
    assert i["upgradeSettings"]["maxSurge"] == 0.0  # no extra A100 during upgrades
    config = i["nodeConfig"]
    (accelerator,) = config["guestAccelerators"]
    assert (accelerator["type"], accelerator["count"]) == ("nvidia-a100-80gb", 2.0)
    assert accelerator["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "INSTALLATION_DISABLED"}
    assert config["serviceAccount"] == "nodes@p-1.iam.gserviceaccount.com"
    assert config["spot"] is True and config["diskSizeGb"] == 250.0
    assert config["gcfsConfig"] == {"enabled": False}
    assert config["resourceLabels"] == {"app": "gpu-dask", "team": "ml"}
    assert [t["key"] for t in config["taints"]] == ["nvidia.com/gpu"]
    assert node_pool.protect and node_pool.delete_before_replace
    assert set(node_pool.ignore_changes) == {"nodeCount", "initialNodeCount"}
    assert set(node_pool.dependencies) == {r.urn for r in before}
    assert owner.registered_outputs == {"name": "big"}


def test_gpu_node_pool_defaults_and_a_regional_scheduler_pool() -> None:
    pool = _pool(zones=(), scheduler_only=True)
    _, node_pool, _ = _built_pool("europe-west4", pool, protect=False, after=())
    i = node_pool.inputs
    assert "initialNodeCount" not in i and "nodeLocations" not in i  # regional, GKE picks the zones
    assert i["nodeConfig"]["gcfsConfig"] == {"enabled": True}  # image streaming omitted -> on
    assert i["nodeConfig"]["resourceLabels"] == {"app": "gpu-dask"}  # labels omitted
    assert [t["key"] for t in i["nodeConfig"]["taints"]] == ["nvidia.com/gpu", "gpu-dask/scheduler"]
    assert not node_pool.protect and node_pool.dependencies == []


# --- NVIDIA driver installer ---------------------------------------------------------------------
def test_driver_installer_is_one_unawaited_daemonset_in_kube_system() -> None:
    rec = built(lambda: NvidiaDriverInstaller("nvidia-driver"))
    owner = named(rec, "nvidia-driver")
    (daemonset,) = children(rec, owner).values()
    assert daemonset.type == "kubernetes:apps/v1:DaemonSet" and daemonset.name == "nvidia-driver-daemonset"
    meta = daemonset.inputs["metadata"]
    assert (meta["name"], meta["namespace"]) == ("nvidia-driver-installer", "kube-system")
    assert meta["annotations"]["pulumi.com/skipAwait"] == "true"
    assert owner.registered_outputs == {"name": "nvidia-driver-installer"}


# --- Dask operator -------------------------------------------------------------------------------
def test_operator_installs_the_given_chart_version_onto_the_given_pool() -> None:
    rec = built(lambda: DaskOperator("op", DaskOperatorArgs(version="2026.1.0", node_pool="cpu-pool")))
    owner = named(rec, "op")
    kids = children(rec, owner)
    assert set(kids) == {"op-namespace", "op-plugin", "op-release"}
    release = kids["op-release"].inputs
    # The plugin's ConfigMap, in the operator's namespace, before the release whose pod mounts it.
    plugin = kids["op-plugin"]
    assert plugin.inputs["metadata"]["namespace"] == "dask-operator"
    assert plugin.urn in kids["op-release"].dependencies
    mounted = {v["configMap"]["name"] for v in release["values"]["volumes"] if "configMap" in v}
    assert mounted == {plugin.inputs["metadata"]["name"]}
    assert release["version"] == "2026.1.0" and release["chart"] == "dask-kubernetes-operator"
    assert release["namespace"] == kids["op-namespace"].inputs["metadata"]["name"] == "dask-operator"
    assert release["values"]["nodeSelector"] == {"cloud.google.com/gke-nodepool": "cpu-pool"}
    assert release["skipCrds"] is False and release["atomic"] is True
    assert owner.registered_outputs == {"version": "2026.1.0"}


# --- Dask TLS ------------------------------------------------------------------------------------
def test_dask_tls_signs_three_certificates_with_one_ca_and_puts_the_servers_in_a_secret() -> None:
    def build() -> None:
        namespace = pulumi.CustomResource("test:index:Namespace", "ns")
        DaskTls("tls", DaskTlsArgs(dask_cluster="gpus", namespace="team-dask", after=[namespace]))

    rec = built(build)
    owner = named(rec, "tls")
    kids = children(rec, owner)
    roles = ("scheduler", "worker", "client")
    assert set(kids) == {
        "tls-ca-key",
        "tls-ca",
        "tls-secret",
        *(f"tls-{role}-{kind}" for role in roles for kind in ("key", "csr", "cert")),
    }
    assert kids["tls-ca"].inputs["isCaCertificate"] is True
    assert kids["tls-ca"].inputs["subject"]["commonName"] == "gpus Dask CA"
    for role in roles:
        cert = kids[f"tls-{role}-cert"].inputs
        assert cert["caCertPem"] == kids["tls-ca"].outputs["certPem"]
        assert cert["certRequestPem"] == kids[f"tls-{role}-csr"].outputs["certRequestPem"]
    assert "gpus-scheduler.team-dask.svc.cluster.local" in kids["tls-scheduler-csr"].inputs["dnsNames"]
    secret = kids["tls-secret"]
    assert secret.inputs["metadata"]["name"] == "gpus-tls" and secret.inputs["metadata"]["namespace"] == "team-dask"
    assert set(secret.inputs["stringData"]) == {
        "ca.pem",
        "scheduler.pem",
        "scheduler-key.pem",
        "worker.pem",
        "worker-key.pem",
    }
    assert named(rec, "ns").urn in secret.dependencies
    assert set(owner.registered_outputs or {}) == {"caCertPem", "clientCertPem", "clientKeyPem"}


# --- the Dask cluster ----------------------------------------------------------------------------
def _dask(**changes: Any) -> DaskSettings:
    values: dict[str, Any] = {
        "name": "gpus",
        "namespace": "team-dask",
        "image": IMAGE,
        "worker": WorkerGroupSettings("gpus-default", 2, 1, 4.0, 30.0, IMAGE, None),
        "colocation": "preferred",
        "scheduler_gpu": False,
        "scheduler_machine_type": "g2-standard-4",
        "scheduler_spot": False,
        "scheduler_service": "ClusterIP",
        "scheduler_cpu": 1.0,
        "scheduler_memory_gb": 4.0,
        "client_cidrs": (),
        "client_namespaces": ("notebooks",),
        "tls": False,
        "worker_groups": {},
        "autoscale": None,
    }
    return DaskSettings(**(values | changes))


def test_dask_cluster_guards_its_namespace_before_the_cluster_and_owns_groups_and_autoscaler() -> None:
    group = WorkerGroupSettings("cpu", 2, 0, 1.0, 4.0, IMAGE, None)
    dask = _dask(worker_groups={"cpu": group}, autoscale=AutoscaleSettings(0, 3), tls=True)
    rec = built(lambda: GpuDaskCluster("dask", GpuDaskClusterArgs(dask)))
    owner = named(rec, "dask")
    kids = children(rec, owner)
    guards = {"dask-namespace", "dask-service-account", "dask-workers-pdb", "dask-scheduler-pdb"}
    guards |= {"dask-client-role", "dask-client-role-binding"}  # clientNamespaces: notebooks
    policies = {name for name in kids if name.startswith("dask-netpol-")}
    assert policies and guards | policies | {"dask-tls", "dask-cluster", "dask-group-cpu", "dask-autoscaler"} == set(
        kids
    )
    assert kids["dask-namespace"].inputs["metadata"]["name"] == "team-dask"
    cluster = kids["dask-cluster"]
    assert cluster.inputs["metadata"] == {**cluster.inputs["metadata"], "name": "gpus", "namespace": "team-dask"}
    assert cluster.inputs["spec"]["worker"]["replicas"] == 0.0  # the autoscaler's minimum
    # Nothing runs in the namespace before its service account, policies and TLS Secret exist.
    tls_secret = named(rec, "dask-tls-secret")
    waited = {kids[n].urn for n in ("dask-namespace", "dask-service-account", *policies)} | {tls_secret.urn}
    assert waited <= set(cluster.dependencies)
    assert cluster.delete_before_replace and cluster.ignore_changes == ["spec.worker.replicas"]
    for owned in (kids["dask-group-cpu"], kids["dask-autoscaler"]):
        assert owned.deleted_with == cluster.urn and owned.replace_with == [cluster.urn]
    assert kids["dask-autoscaler"].inputs["spec"] == {"cluster": "gpus", "minimum": 0.0, "maximum": 3.0}
    outputs = owner.registered_outputs or {}
    assert outputs["schedulerAddress"] == "tls://gpus-scheduler.team-dask.svc.cluster.local:8786"
    assert outputs["dashboardUrl"] == "http://gpus-scheduler.team-dask.svc.cluster.local:8787"
    assert {"tlsCaCertPem", "tlsClientCertPem"} <= set(outputs)


def test_dask_cluster_without_groups_autoscaler_or_tls() -> None:
    rec = built(lambda: GpuDaskCluster("dask", GpuDaskClusterArgs(_dask())))
    owner = named(rec, "dask")
    kids = children(rec, owner)
    assert not [n for n in kids if n.startswith(("dask-group-", "dask-autoscaler", "dask-tls"))]
    assert kids["dask-cluster"].ignore_changes == []  # Pulumi owns `workers` without an autoscaler
    assert kids["dask-cluster"].inputs["spec"]["worker"]["replicas"] == 2.0
    assert owner.registered_outputs == {
        "schedulerAddress": "tcp://gpus-scheduler.team-dask.svc.cluster.local:8786",
        "dashboardUrl": "http://gpus-scheduler.team-dask.svc.cluster.local:8787",
    }


# --- image prepuller -----------------------------------------------------------------------------
@pytest.mark.parametrize("images", [(IMAGE,), (IMAGE, "nvcr.io/nvidia/pytorch:25.01-py3")])
def test_image_prepuller_pulls_each_given_image_in_the_given_namespace(images: tuple[str, ...]) -> None:
    args = ImagePrepullerArgs(dask_cluster="gpus", namespace="team-dask", images=images)
    rec = built(lambda: ImagePrepuller("prepull", args))
    owner = named(rec, "prepull")
    (daemonset,) = children(rec, owner).values()
    meta = daemonset.inputs["metadata"]
    assert (meta["name"], meta["namespace"]) == ("gpus-image-prepuller", "team-dask")
    assert meta["annotations"] == {"pulumi.com/skipAwait": "true"}
    containers = daemonset.inputs["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == list(images)
    assert owner.registered_outputs == {"name": "gpus-image-prepuller"}


# --- type tokens and the aliases to the old ones ---------------------------------------------------
# Frozen: a token is part of the URN of its component and of every child (tests/test_urns.py holds
# the URNs). Class name -> (its token, the token deployed stacks had before the 2026-11-23 rename).
FROZEN_TYPES = {
    "GkeCluster": ("gpu-dask:cluster:GkeCluster", "gpu-dask:gke:Cluster"),
    "GpuDaskCluster": ("gpu-dask:dask_cluster:GpuDaskCluster", "gpu-dask:dask:GpuDaskCluster"),
    "DaskTls": ("gpu-dask:dask_tls:DaskTls", "gpu-dask:dask:DaskTls"),
    "NvidiaDriverInstaller": ("gpu-dask:driver:NvidiaDriverInstaller", "gpu-dask:gpu:NvidiaDriverInstaller"),
    "GpuNodePool": ("gpu-dask:gpu_pool:GpuNodePool", "gpu-dask:gke:GpuNodePool"),
    "Network": ("gpu-dask:network:Network", "gpu-dask:gcp:Network"),
    "DaskOperator": ("gpu-dask:operator:DaskOperator", "gpu-dask:dask:Operator"),
    "ImagePrepuller": ("gpu-dask:prepuller:ImagePrepuller", "gpu-dask:gpu:ImagePrepuller"),
    # Added after the rename: no old type, no alias.
    "DaskMetrics": ("gpu-dask:metrics:DaskMetrics", None),
    "DaskDashboard": ("gpu-dask:dashboard:DaskDashboard", None),
}


def component_classes() -> dict[str, type[pulumi.ComponentResource]]:
    """Every ComponentResource class defined under components/ (subpackages too): name -> class."""
    import components

    found: dict[str, type[pulumi.ComponentResource]] = {}
    for info in pkgutil.walk_packages(components.__path__, "components."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            is_component = isinstance(value, type) and issubclass(value, pulumi.ComponentResource)
            if is_component and value.__module__ == module.__name__:
                found[value.__name__] = value
    return found


def _ours(aliases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The provider SDKs add aliases of their own (e.g. kubernetes:extensions/v1beta1:DaemonSet).
    return [a for a in aliases if a.get("spec", {}).get("type", "").startswith("gpu-dask:")]


def test_every_component_class_carries_its_frozen_tokens() -> None:
    classes = component_classes()
    assert set(classes) == set(FROZEN_TYPES), "a new component needs its token frozen here"
    for name, cls in classes.items():
        assert (vars(cls).get("TYPE_TOKEN"), vars(cls).get("OLD_TYPE_TOKEN")) == FROZEN_TYPES[name], name


@pytest.mark.parametrize("stack", STACKS)
def test_components_register_their_frozen_type_and_alias_their_old_one(recorded: Run, stack: str) -> None:
    by_token = {token: old for token, old in FROZEN_TYPES.values()}
    for r in recorded(stack).resources.values():
        if not r.type.startswith("gpu-dask:"):
            # Children inherit the parent's alias in the engine; an alias of their own is a mistake.
            assert _ours(r.aliases) == [], r.urn
            continue
        assert r.type in by_token, f"{r.urn}: {r.type} is no frozen token"
        old = by_token[r.type]
        assert _ours(r.aliases) == ([{"spec": {"type": old}}] if old else []), r.urn


def test_every_component_is_in_some_stack(recorded: Run) -> None:
    seen = {r.type for stack in STACKS for r in recorded(stack).resources.values() if r.type.startswith("gpu-dask:")}
    assert seen == {token for token, _ in FROZEN_TYPES.values()}  # so the test above saw each of them


def test_a_callers_aliases_are_kept_beside_the_old_type() -> None:
    opts = pulumi.ResourceOptions(aliases=[pulumi.Alias(name="dask-kubernetes-operator")])
    rec = built(lambda: DaskOperator("op", DaskOperatorArgs(version="2026.1.0", node_pool="system"), opts))
    assert named(rec, "op").aliases == [
        {"spec": {"name": "dask-kubernetes-operator"}},
        {"spec": {"type": "gpu-dask:dask:Operator"}},
    ]
