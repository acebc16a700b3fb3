"""The whole program under Pulumi's mocks: resources, options, edges and outputs per stack."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from components import gke_spec
from components.settings import SettingsError
from gpudask.record.recorder import ProgramFailed, Recording, project_config_defaults, stack_file
from tests.conftest import EXISTING_STACKS, GKE_STACKS, STACKS, settings_for

Run = Callable[..., Recording]
CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
DAEMONSET = "kubernetes:apps/v1:DaemonSet"
RELEASE = "kubernetes:helm.sh/v3:Release"
DASK_CLUSTER = "kubernetes:kubernetes.dask.org/v1:DaskCluster"
WORKER_GROUP = "kubernetes:kubernetes.dask.org/v1:DaskWorkerGroup"
AUTOSCALER = "kubernetes:kubernetes.dask.org/v1:DaskAutoscaler"


def gpu_pools(rec: Recording) -> list:
    return [p for p in rec.of_type(NODE_POOL) if p.inputs["name"] != "system"]


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_cluster_is_private_hardened_and_its_default_pool_uses_the_node_account(recorded: Run, stack: str) -> None:
    s = settings_for(stack)
    cluster = recorded(stack).one(CLUSTER)
    i = cluster.inputs
    # The transient default pool runs as our node service account; its config is ignored
    # afterwards, or it would replace the cluster on every up (pulumi/pulumi-gcp#744).
    node_sa = recorded(stack).one("gcp:serviceaccount/account:Account").outputs["email"]
    assert i["nodeConfig"]["serviceAccount"] == node_sa
    assert i["nodeConfig"]["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert "nodeConfig" in cluster.ignore_changes
    assert i["removeDefaultNodePool"] is True
    assert i["privateClusterConfig"]["enablePrivateNodes"] is True
    assert [b["cidrBlock"] for b in i["masterAuthorizedNetworksConfig"]["cidrBlocks"]] == list(s.authorized_networks)
    assert i["workloadIdentityConfig"] == {"workloadPool": f"{s.project}.svc.id.goog"}
    assert i["releaseChannel"] == {"channel": s.release_channel}
    assert i["enableShieldedNodes"] is True and i["enableLegacyAbac"] is False
    assert i["masterAuth"]["clientCertificateConfig"]["issueClientCertificate"] is False
    assert i["datapathProvider"] == "ADVANCED_DATAPATH"
    assert i["location"] == s.location


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_protect_and_deletion_protection_follow_the_stack(recorded: Run, stack: str) -> None:
    rec, s = recorded(stack), settings_for(stack)
    cluster = rec.one(CLUSTER)
    assert cluster.inputs["deletionProtection"] is s.protect
    assert cluster.protect is s.protect
    assert all(p.protect is s.protect for p in rec.of_type(NODE_POOL))
    # What the stack file says (or Pulumi.yaml's default), not what its name suggests.
    declared = yaml.safe_load(stack_file(stack).read_text())["config"].get("gpu-dask:protect")
    assert s.protect is (declared if declared is not None else project_config_defaults()[1]["gpu-dask:protect"])


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_nodes_use_a_dedicated_service_account_and_gke_metadata(recorded: Run, stack: str) -> None:
    rec = recorded(stack)
    account = rec.one("gcp:serviceaccount/account:Account")
    email = account.outputs["email"]
    assert "compute@developer" not in email
    for pool in rec.of_type(NODE_POOL):
        config = pool.inputs["nodeConfig"]
        assert config["serviceAccount"] == email
        assert config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
        assert config["shieldedInstanceConfig"]["enableSecureBoot"] is True
    roles = {m.inputs["role"] for m in rec.of_type("gcp:projects/iAMMember:IAMMember")}
    assert "roles/editor" not in roles and "roles/logging.logWriter" in roles


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_gpu_pools_follow_their_settings(recorded: Run, stack: str) -> None:
    rec, s = recorded(stack), settings_for(stack)
    pools = {p.inputs["name"]: p for p in gpu_pools(rec)}
    scheduler = s.scheduler_pool
    expected = {**s.gpu_node_pools, **({scheduler.name: scheduler} if scheduler else {})}
    assert set(pools) == set(expected)
    for name, want in expected.items():
        pool = pools[name]
        config = pool.inputs["nodeConfig"]
        (accelerator,) = config["guestAccelerators"]
        assert accelerator["type"] == want.accelerator_type
        assert accelerator["count"] == float(want.gpus_per_node)  # numbers come back as floats
        assert accelerator["gpuDriverInstallationConfig"]["gpuDriverVersion"] == s.gke_driver_version
        assert config["machineType"] == want.machine_type and config["spot"] is want.spot
        taints = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
        if want.scheduler_only:  # the scheduler's pool: workers stay off it
            taints.append({"key": "gpu-dask/scheduler", "value": "true", "effect": "NO_SCHEDULE"})
        assert config["taints"] == taints
        assert config["imageType"] == "COS_CONTAINERD" and config["gcfsConfig"] == {"enabled": True}
        assert pool.inputs["autoscaling"]["totalMinNodeCount"] == want.min_nodes
        assert pool.inputs["autoscaling"]["totalMaxNodeCount"] == want.max_nodes
        assert set(gke_spec.NODE_COUNT_IGNORE_CHANGES) <= set(pool.ignore_changes)
        assert pool.delete_before_replace
        assert pool.parent.endswith(f"GpuNodePool::gpu-{name}")


def test_system_pool_is_on_demand_cpu(recorded: Run) -> None:
    system = next(p for p in recorded("dev").of_type(NODE_POOL) if p.inputs["name"] == "system")
    assert system.inputs["nodeConfig"]["spot"] is False
    assert "guestAccelerators" not in system.inputs["nodeConfig"]
    assert "taints" not in system.inputs["nodeConfig"]


@pytest.mark.parametrize(("driver", "version"), [("gke-default", "DEFAULT"), ("gke-latest", "LATEST")])
def test_gke_managed_driver_means_no_daemonset(recorded: Run, driver: str, version: str) -> None:
    rec = recorded("dev", overrides={"gpu-dask:driver": driver})
    assert [d for d in rec.of_type(DAEMONSET) if d.inputs["metadata"]["name"] == "nvidia-driver-installer"] == []
    for pool in gpu_pools(rec):
        assert pool.inputs["nodeConfig"]["guestAccelerators"][0]["gpuDriverInstallationConfig"] == {
            "gpuDriverVersion": version
        }


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_daemonset_driver_means_every_pool_disables_gke_install(recorded: Run, stack: str) -> None:
    rec = recorded(stack, overrides={"gpu-dask:driver": "daemonset"})
    daemonset = rec.one(DAEMONSET, "nvidia-driver-daemonset")
    assert daemonset.inputs["metadata"]["name"] == "nvidia-driver-installer"
    for pool in gpu_pools(rec):
        assert (
            pool.inputs["nodeConfig"]["guestAccelerators"][0]["gpuDriverInstallationConfig"]["gpuDriverVersion"]
            == "INSTALLATION_DISABLED"
        )


@pytest.mark.parametrize("stack", STACKS)
def test_operator_release_is_pinned(recorded: Run, stack: str) -> None:
    release = recorded(stack).one(RELEASE)
    assert release.inputs["chart"] == "dask-kubernetes-operator"
    assert release.inputs["version"] == settings_for(stack).operator_version == "2026.3.0"
    assert release.inputs["repositoryOpts"] == {"repo": "https://helm.dask.org"}
    assert release.inputs["namespace"] == "dask-operator"


@pytest.mark.parametrize("stack", STACKS)
def test_dask_cluster_waits_for_the_operator_only(recorded: Run, stack: str) -> None:
    rec = recorded(stack)
    dask_cluster, release = rec.one(DASK_CLUSTER), rec.one(RELEASE)
    waits_for = rec.ancestors_and_dependencies(dask_cluster.urn)
    assert release.urn in waits_for
    for pool in gpu_pools(rec):
        assert pool.urn not in waits_for, "an edge to the GPU pool adds minutes to pulumi up"
        assert pool.parent not in waits_for
    for driver_or_release in [*rec.of_type(DAEMONSET), release]:
        assert not any(p.urn in rec.ancestors_and_dependencies(driver_or_release.urn) for p in gpu_pools(rec))


@pytest.mark.parametrize("stack", STACKS)
def test_dask_cluster_is_replaced_when_pod_specs_change(recorded: Run, stack: str) -> None:
    rec, s = recorded(stack), settings_for(stack)
    dask_cluster = rec.one(DASK_CLUSTER)
    assert set(dask_cluster.replace_on_changes) == {"spec.scheduler", "spec.worker.spec"}
    assert dask_cluster.delete_before_replace
    assert dask_cluster.inputs["metadata"]["name"] == s.dask.name
    assert dask_cluster.inputs["spec"]["idleTimeout"] == 0
    if s.dask.autoscale:
        assert dask_cluster.ignore_changes == ["spec.worker.replicas"]
    else:
        assert dask_cluster.ignore_changes == []


def test_autoscaler_and_groups_go_with_the_cluster(recorded: Run) -> None:
    dev, prod = recorded("dev"), recorded("prod")
    autoscaler = dev.one(AUTOSCALER)
    group = prod.one(WORKER_GROUP)
    for owned, rec in ((autoscaler, dev), (group, prod)):
        cluster_urn = rec.one(DASK_CLUSTER).urn
        assert owned.replace_with == [cluster_urn]
        assert owned.deleted_with == cluster_urn
        assert cluster_urn in owned.dependencies
    assert group.replace_on_changes == ["spec.worker.spec"]
    assert prod.of_type(AUTOSCALER) == []


@pytest.mark.parametrize("stack", STACKS)
def test_stack_outputs(recorded: Run, stack: str) -> None:
    rec, s = recorded(stack), settings_for(stack)
    out = rec.outputs
    assert (
        out["schedulerAddress"]
        == f"{s.dask.protocol}://{s.dask.name}-scheduler.{s.dask.namespace}.svc.cluster.local:8786"
    )
    assert out["dashboardUrl"] == f"http://{s.dask.name}-scheduler.{s.dask.namespace}.svc.cluster.local:8787"
    assert (out["daskClusterName"], out["daskNamespace"]) == (s.dask.name, s.dask.namespace)
    if s.existing_cluster is None:
        assert (out["clusterName"], out["location"]) == (s.cluster_name, s.location)
        assert "gke-gcloud-auth-plugin" in out["kubeconfig"]
        secrets = {"kubeconfig"}
    else:  # nothing about a cluster this stack does not own
        assert {"clusterName", "location", "project", "gpuNodePools", "kubeconfig"}.isdisjoint(out)
        secrets = set()
    assert rec.secret_outputs == (secrets | {"tlsClientKeyPem"} if s.dask.tls else secrets)
    tls_outputs = {"tlsCaCertPem", "tlsClientCertPem", "tlsClientKeyPem"}
    assert (tls_outputs <= set(out)) is s.dask.tls and (tls_outputs & set(out) == set()) is (not s.dask.tls)
    assert ("internalLoadBalancerIp" in out) is (s.dask.scheduler_service == "InternalLoadBalancer")
    # Clients scale groups by these keys; each names the operator's object for the group.
    groups = out["daskWorkerGroups"]
    assert set(groups) == {"default", *s.dask.worker_groups}
    assert groups["default"]["name"] == f"{s.dask.name}-default"
    assert groups["default"]["autoscaled"] is (s.dask.autoscale is not None)
    for key in s.dask.worker_groups:
        assert groups[key]["name"] == f"{s.dask.name}-{key}"


def test_kubernetes_provider_is_built_from_stable_cluster_outputs(recorded: Run) -> None:
    rec = recorded("dev")
    provider = rec.one("pulumi:providers:kubernetes")
    cluster = rec.one(CLUSTER)
    config = provider.inputs["kubeconfig"]
    assert provider.secret_inputs == ["kubeconfig"]
    # The DNS-based endpoint: stable across cluster updates, publicly trusted (no CA embedded).
    dns = cluster.outputs["controlPlaneEndpointsConfig"]["dnsEndpointConfig"]["endpoint"]
    assert f"server: https://{dns}" in config
    assert "certificate-authority-data" not in config
    system_pool = next(p for p in rec.of_type(NODE_POOL) if p.inputs["name"] == "system")
    assert system_pool.urn in provider.dependencies
    for obj in [*rec.of_type(DAEMONSET), *rec.of_type(RELEASE), *rec.of_type(DASK_CLUSTER)]:
        assert obj.provider.startswith(provider.urn)


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_is_parented_by_a_component(recorded: Run, stack: str) -> None:
    rec = recorded(stack)
    components = {r.urn for r in rec.resources.values() if r.type.startswith("gpu-dask:")}
    for r in rec.resources.values():
        if r.type.startswith("gpu-dask:") or r.type.startswith("pulumi:providers:"):
            continue
        assert r.parent in components, f"{r.type} {r.name} is not parented"


def test_a_second_run_declares_exactly_the_same(recorded: Run) -> None:
    first = recorded("prod")
    second = recorded("prod", overrides={"gpu-dask:protect": True})  # a fresh run, same config
    assert {u: r.inputs for u, r in first.resources.items()} == {u: r.inputs for u, r in second.resources.items()}


def test_bad_config_declares_nothing(recorded: Run) -> None:
    with pytest.raises(ProgramFailed) as caught:
        recorded(
            "dev",
            overrides={
                "gpu-dask:authorizedNetworks": ["0.0.0.0/0"],
                "gpu-dask:gpuNodePools": {"a100": {"machineType": "a2-highgpu-3g"}},
            },
        )
    assert isinstance(caught.value.cause, SettingsError)
    assert len(caught.value.cause.problems) == 2
    assert caught.value.recording.resources == {}


def test_recorded_hands_out_copies(recorded: Run) -> None:
    """Editing what `recorded` returns (as plan tests do to break things) never leaks into the next test."""
    first = recorded("dev")
    first.one(CLUSTER).inputs["location"] = "edited-by-a-test"
    first.outputs.clear()
    again = recorded("dev")
    assert again.one(CLUSTER).inputs["location"] == settings_for("dev").location
    assert again.outputs


# --- existingCluster: the Kubernetes half only, onto a cluster given by kubeconfig -------------------
@pytest.mark.parametrize("stack", EXISTING_STACKS)
def test_existing_cluster_declares_no_gcp_resource(recorded: Run, stack: str) -> None:
    rec = recorded(stack)
    assert [
        r.type
        for r in rec.resources.values()
        if r.type.startswith(("gcp:", "gpu-dask:cluster:", "gpu-dask:gpu_pool:", "gpu-dask:network:"))
    ] == []
    assert rec.of_type(RELEASE) and rec.of_type(DASK_CLUSTER)


@pytest.mark.parametrize("stack", EXISTING_STACKS)
def test_existing_cluster_provider_uses_the_ambient_kubeconfig_and_the_stacks_context(
    recorded: Run, stack: str
) -> None:
    rec, s = recorded(stack), settings_for(stack)
    assert s.existing_cluster is not None
    (provider,) = rec.of_type("pulumi:providers:kubernetes")
    assert provider.name == "existing"
    # Empty, not absent: the SDK copies $KUBECONFIG (a path) into an absent kubeconfig.
    assert provider.inputs["kubeconfig"] == ""
    assert provider.inputs["context"] == s.existing_cluster.context
    assert provider.inputs["enableServerSideApply"] == "true"  # provider inputs travel as strings
    for obj in [*rec.of_type(RELEASE), *rec.of_type(DASK_CLUSTER), *rec.of_type(AUTOSCALER)]:
        assert obj.provider.startswith(provider.urn)


def test_existing_cluster_places_operator_and_scheduler_on_its_system_pool(recorded: Run) -> None:
    rec = recorded(
        "existing",
        overrides={
            "gpu-dask:existingCluster": {"context": "gke_p_z_team", "systemPool": "cpu-pool"},
            "gpu-dask:dask": {
                "name": "rapids",
                "namespace": "dask-team",
                "schedulerGpu": False,
                "workerGroups": {"cpu": {"replicas": 1}},
            },
        },
    )
    selector = {"cloud.google.com/gke-nodepool": "cpu-pool"}
    assert rec.one(RELEASE).inputs["values"]["nodeSelector"] == selector
    cluster = rec.one(DASK_CLUSTER).inputs["spec"]
    assert cluster["scheduler"]["spec"]["nodeSelector"] == selector
    assert rec.one(WORKER_GROUP).inputs["spec"]["worker"]["spec"]["nodeSelector"] == selector
    assert rec.one("pulumi:providers:kubernetes").inputs["context"] == "gke_p_z_team"


@pytest.mark.parametrize(("driver", "daemonsets"), [("daemonset", 1), ("gke-default", 0), ("gke-latest", 0)])
def test_existing_cluster_installs_the_driver_only_with_daemonset(recorded: Run, driver: str, daemonsets: int) -> None:
    rec = recorded("existing", overrides={"gpu-dask:driver": driver})
    assert len(rec.of_type(DAEMONSET)) == daemonsets
    assert rec.of_type(NODE_POOL) == []


def test_existing_cluster_can_use_the_operator_it_already_runs(recorded: Run) -> None:
    """existingCluster.installOperator: false -> no Helm release (no CRDs, ClusterRole or release
    ownership fight with the host's operator); the Dask resources still go in."""
    rec = recorded(
        "existing",
        overrides={
            "gpu-dask:existingCluster": {
                "context": "gke_my-project_us-central1-c_team-cluster",
                "systemPool": "default-pool",
                "schedulerPool": {"name": "l4-pool", "machineType": "g2-standard-4"},
                "installOperator": False,
            }
        },
    )
    assert rec.of_type(RELEASE) == []
    cluster = rec.one(DASK_CLUSTER)
    assert not [d for d in cluster.dependencies if "helm.sh" in d or "DaskOperator" in d]
    assert recorded("existing").of_type(RELEASE), "the default still installs the operator"
