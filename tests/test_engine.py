"""The real `pulumi up`: the Pulumi CLI and the Kubernetes provider, built from source, on the local control plane.

Marked `real_pulumi`: the pinned CLI (v3.276.0) and pulumi-resource-kubernetes (4.25.0) from
upstream/versions.toml, an Automation API inline program (gpudask/local/engine/program.py), the pinned control
plane with the stack's nodes (kwok), and the chart's real operator and real Dask processes behind it.
The engine and the provider are the judge of the program: every scenario has a broken variant that they
must refuse or report. The GCP half is not declared (its provider cannot be built here); pulumi-tls and
the reserved internal address are stood in, and the outputs say so (`engineStandIns`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpudask.local import engine
from gpudask.local.cluster.controlplane import ControlPlane
from gpudask.local.cluster.observe import DRIVER_DAEMONSET, leftovers, settle
from gpudask.local.cluster.runtime import settle_dask
from gpudask.record.recorder import Recording, run_program, stacks
from gpudask.record.view import kubernetes_manifests, recorded_settings

pytestmark = pytest.mark.real_pulumi
CLUSTER_GROUP = ("kubernetes.dask.org/v1", "DaskCluster")
CLUSTER_TYPE = "kubernetes:kubernetes.dask.org/v1:DaskCluster"


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

    def bring_up(stack: str, rec: Recording | None = None, **flags: Any) -> tuple[ControlPlane, engine.StackUp]:
        ctx = engine.stack_cluster(rec or run_program(stack), tmp_path / stack, log=print, **flags)
        state = ctx.__enter__()
        opened.append(ctx)
        return state.cp, state

    yield bring_up
    for ctx in reversed(opened):
        ctx.__exit__(None, None, None)


@pytest.mark.parametrize("stack", stacks())
def test_up_completes_then_changes_nothing_then_destroy_empties_the_namespaces(
    stack: str, stack_on_control_plane: Any
) -> None:
    rec = run_program(stack)
    cp, state = stack_on_control_plane(stack, rec)
    up = state.result
    assert up.ok, up.failure()
    assert up.summary.get("create", 0) >= 10, up.summary
    # The engine awaited the DaskCluster until the real operator gave it a phase.
    _, problems = settle_dask(state.runtime, timeout=120)
    assert not problems, problems
    kube = cp.kube()
    # Everything else runs where it should: the operator on the system pool, the driver on every GPU node.
    placement = settle(kube, rec, timeout=60)
    assert not placement.problems, placement.problems
    for place in placement.pods:
        print("  " + place.line)
    system_pool = recorded_settings(rec).system_pool  # existingCluster.systemPool: the cluster's own name
    operator = [p for p in placement.pods if p.namespace == engine.OPERATOR_NAMESPACE]
    assert len(operator) == 1 and operator[0].pool == system_pool and operator[0].ready
    if any(
        m["kind"] == "DaemonSet" and m["metadata"]["name"] == DRIVER_DAEMONSET for _, m in kubernetes_manifests(rec)
    ):
        drivers = [p for p in placement.pods if p.name.startswith("nvidia-driver-installer-")]
        # Every GPU node, the scheduler's small GPU included, gets the driver.
        assert drivers and {p.pool for p in drivers} == {"a100", "scheduler"}
        assert len({p.node for p in drivers}) == len(drivers)
    # The engine created in dependency order: the namespace and the operator before the DaskCluster.
    created = [s["urn"].rsplit("::", 1)[-1] for s in up.steps if s["op"] == "create"]
    assert created.index("dask-namespace") < created.index("dask-cluster"), created
    if "dask-operator-release" in created:  # a stack may use an operator its cluster already has
        assert created.index("dask-operator-release") < created.index("dask-cluster"), created
    name, namespace = up.outputs["daskClusterName"], up.outputs["daskNamespace"]
    cluster = kube.get(kube.path(*CLUSTER_GROUP, name, namespace))
    assert cluster["status"]["phase"]  # any phase: the operator has accepted it (which value is racy, #968)
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
    assert leftovers(kube, rec) == []  # the stack's namespaces gone, and no driver pod left in kube-system
    print(f"{stack}: destroy {gone.seconds:.1f} s {gone.summary}")


def _other_image(image: str) -> str:
    """The same image under another digest or tag: what a user's image bump looks like to the program."""
    if "@sha256:" in image:
        head, digest = image.split("@sha256:")
        return f"{head}@sha256:{'0' if digest[0] != '0' else '1'}{digest[1:]}"
    repo, _, tag = image.rpartition(":")
    return f"{repo}:{tag}-rebuilt"


def _image_bump(engine_: engine.Engine) -> dict[str, Any]:
    config = engine_.stack_config(engine_.checkout)["config"]
    dask = dict(config["gpu-dask:dask"])
    dask["image"] = _other_image(str(dask["image"]))
    return {"gpu-dask:dask": dask}


@pytest.mark.parametrize("variant", ["as-declared", "no_replace_on_changes"])
def test_a_worker_image_change_replaces_the_dask_cluster_and_nothing_old_is_left(
    variant: str, stack_on_control_plane: Any
) -> None:
    """As declared: the engine previews a replacement (replaceOnChanges) and `up` leaves nothing of the old
    cluster. Broken variant `no_replace_on_changes`: the engine previews an in-place update (#895)."""
    variants = [] if variant == "as-declared" else [f"tests.engine_variants:{variant}"]
    cp, state = stack_on_control_plane("dev")
    assert state.result.ok, state.result.failure()
    kube = cp.kube()
    name, namespace = state.result.outputs["daskClusterName"], state.result.outputs["daskNamespace"]
    old_uid = kube.get(kube.path(*CLUSTER_GROUP, name, namespace))["metadata"]["uid"]
    bump = _image_bump(state.engine)
    preview = state.engine.run("preview", config=bump, variants=variants)
    assert preview.ok, preview.failure()
    cluster = [s for s in preview.steps if s["type"] == CLUSTER_TYPE]
    print(f"dev image bump ({variant}): preview {preview.seconds:.1f} s {preview.summary}: {cluster}")
    ops = {s["op"] for s in cluster}
    if variant != "as-declared":
        assert ops == {"update"}, cluster  # the operator would ignore it: the old scheduler keeps running
        return
    assert "replace" in ops or "delete-replaced" in ops, cluster
    up = state.engine.run("up", config=bump)
    assert up.ok, up.failure()
    new = kube.get(kube.path(*CLUSTER_GROUP, name, namespace))
    assert new["metadata"]["uid"] != old_uid
    assert new["spec"]["worker"]["spec"]["containers"][0]["image"] == bump["gpu-dask:dask"]["image"]
    deadline = time.monotonic() + 120
    left = _owned_by(kube, namespace, old_uid)
    while left and time.monotonic() < deadline:
        time.sleep(1)
        left = _owned_by(kube, namespace, old_uid)
    assert left == [], f"still owned by the old DaskCluster after 120 s: {left}"
    print(f"dev image bump: up {up.seconds:.1f} s {up.summary}")


def _owned_by(kube: Any, namespace: str, owner_uid: str) -> list[str]:
    """Objects in `namespace` whose ownerReferences chain leads to `owner_uid`."""
    owners = {owner_uid}
    found: list[str] = []
    for api_version, kind in (
        ("kubernetes.dask.org/v1", "DaskWorkerGroup"),
        ("kubernetes.dask.org/v1", "DaskAutoscaler"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("apps/v1", "ReplicaSet"),
        ("v1", "Pod"),
    ):
        for item in kube.list(api_version, kind, namespace):
            meta = item["metadata"]
            if any(ref["uid"] in owners for ref in meta.get("ownerReferences") or []):
                owners.add(meta["uid"])
                found.append(f"{kind}/{meta['name']}")
    return found


def test_a_timestamped_input_makes_the_second_preview_fail(stack_on_control_plane: Any) -> None:
    """The idempotence check catches a program that differs on every run (broken variant `stamp_deploy_time`)."""
    _, state = stack_on_control_plane("existing")
    assert state.result.ok, state.result.failure()
    again = state.engine.run("preview", expect_no_changes=True, variants=["tests.engine_variants:stamp_deploy_time"])
    assert not again.ok and again.changes.get("update", 0) >= 1, again.summary
    print(f"existing + stamp_deploy_time: second preview refused ({again.summary})")


def _checkout_copy(target: Path) -> Path:
    """The project's files (no venv, caches or build output), as a CI checkout of a branch holds them."""
    ignore = shutil.ignore_patterns(".git", ".venv*", "build", "__pycache__", ".pytest_cache", ".ruff_cache", "venv")
    shutil.copytree(engine.PROJECT_DIR, target, ignore=ignore, symlinks=True)
    return target


def test_the_pr_diff_shows_the_engines_replacement_of_the_dask_cluster(tmp_path: Path) -> None:
    """`gpudask engine-diff` as the PR workflow runs it: the base's Kubernetes half up, the PR previewed
    against it. The PR bumps dev's image: the provider's verdict is a replacement of the DaskCluster."""
    from gpudask.local.engine.diff import engine_diff

    base = _checkout_copy(tmp_path / "base")
    head = _checkout_copy(tmp_path / "head")
    stack_file = head / "stacks" / "Pulumi.dev.yaml"
    doc = yaml.safe_load(stack_file.read_text())
    doc["config"]["gpu-dask:dask"]["image"] = _other_image(doc["config"]["gpu-dask:dask"]["image"])
    stack_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    began = time.monotonic()
    base_up, preview = engine_diff("dev", base, tmp_path / "out", head_checkout=head, log=print)
    text = (tmp_path / "out" / "engine.md").read_text()
    print(text, f"\nengine-diff dev: {time.monotonic() - began:.1f} s", sep="\n")
    assert base_up is not None and base_up.ok, base_up.failure() if base_up else "no base"
    assert preview.ok, preview.failure()
    assert "| **replace** | `dask-cluster` | `kubernetes:kubernetes.dask.org/v1:DaskCluster`" in text
    assert "`dask-namespace`" not in text  # unchanged objects are counted, not listed


SEEDS_SCALE = """
from dask_kubernetes.operator import KubeCluster
cluster = KubeCluster.from_name({name!r}, namespace={namespace!r}, shutdown_on_close=False)
cluster.scale({n}, worker_group={group!r})
print("scaled", flush=True)
cluster.close()
"""


def test_scaling_with_the_seeds_client_then_up_without_and_with_refresh(stack_on_control_plane: Any) -> None:
    """The seeds' `KubeCluster.from_name(...).scale(n)` deletes the DaskAutoscaler (dask-kubernetes' `_scale`)
    and sets the group's replicas. What the README says the next `up` does: without `--refresh` the engine
    compares with its state and changes nothing (the autoscaler stays deleted); with `--refresh` it sees
    the deletion and recreates the autoscaler."""
    cp, state = stack_on_control_plane("dev")
    assert state.result.ok, state.result.failure()
    kube = cp.kube()
    name, namespace = state.result.outputs["daskClusterName"], state.result.outputs["daskNamespace"]
    autoscaler = kube.path("kubernetes.dask.org/v1", "DaskAutoscaler", name, namespace)
    assert kube.get(autoscaler)["metadata"]["name"] == name
    env = {**os.environ, "KUBECONFIG": str(state.engine.stack_kubeconfig())}
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", SEEDS_SCALE.format(name=name, namespace=namespace, n=1, group="default")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    print(
        f"seeds' from_name + scale(1): exit {done.returncode} in {time.monotonic() - began:.1f} s", done.stderr[-2000:]
    )
    assert done.returncode == 0 and "scaled" in done.stdout, done.stderr[-3000:]
    group = kube.get(kube.path("kubernetes.dask.org/v1", "DaskWorkerGroup", f"{name}-default", namespace))
    assert group["spec"]["worker"]["replicas"] == 1
    # kopf's finalizer holds the deletion until the operator has handled it.
    autoscaler_obj: dict[str, Any] = {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
    }
    deadline = time.monotonic() + 60
    while kube.exists(autoscaler_obj) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not kube.exists(autoscaler_obj), "the seeds' scale() left the DaskAutoscaler (dask-kubernetes deletes it)"

    plain = state.engine.run("preview")
    assert plain.ok and not plain.changes, plain.failure() + f"\n{plain.summary}"
    refreshed = state.engine.run("up", refresh=True)
    assert refreshed.ok, refreshed.failure()
    assert refreshed.summary.get("create") == 1, refreshed.summary
    assert kube.get(autoscaler)["metadata"]["name"] == name
    print(f"dev after scale: preview {plain.summary}; up --refresh {refreshed.summary} in {refreshed.seconds:.1f} s")


def test_the_cli_refuses_a_stack_file_that_misses_a_key_pulumi_yaml_requires(tmp_path: Path) -> None:
    """Every `up` above passes the CLI's own validation of the stack file against Pulumi.yaml's schema.
    Broken variant: Pulumi.yaml as it was before issue 25 (`authorizedNetworks` without a default), which
    the CLI refuses for the existing stack before the program runs (so no cluster is needed)."""
    old = _checkout_copy(tmp_path / "before-issue-25")
    project = yaml.safe_load((old / "Pulumi.yaml").read_text())
    del project["config"]["authorizedNetworks"]["default"]
    (old / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    nowhere = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "nowhere", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "nobody", "user": {}}],
        "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "nobody"}}],
        "current-context": "nowhere",
    }
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(nowhere))
    refused = engine.Engine("existing", kubeconfig, tmp_path / "work", checkout=old).run("preview", timeout=300)
    print(f"before issue 25: {refused.error[:300]}")
    assert not refused.ok
    assert "Stack 'existing' is missing configuration value 'authorizedNetworks'" in refused.error + refused.output


@pytest.mark.parametrize("variant", ["as-declared", "read_operator_service_as_before"])
def test_prods_internal_address_is_the_stacks_own_and_survives_a_dask_cluster_replacement(
    variant: str, stack_on_control_plane: Any
) -> None:
    """prod's client endpoint is a Service of the stack's own on the reserved address (stood in): `up` exports
    that address, and a DaskCluster replacement (an image bump) leaves the Service and the address alone.
    Broken variant `read_operator_service_as_before`: the read of the operator's Service the stack made before."""
    hooks = [] if variant == "as-declared" else [f"tests.engine_variants:{variant}"]
    cp, state = stack_on_control_plane("prod", hooks=hooks)
    up = state.result
    print(
        f"prod ({variant}): up ok={up.ok} {up.summary}",
        [line for line in up.output.splitlines() if "error" in line.lower()][:4],
    )
    # The defect, whichever way the race goes: the engine fails the read (the operator has not made the
    # Service yet: what a first `pulumi up` of prod did) or the stack reads an object the operator owns
    # and replaces with every DaskCluster. The stack as declared does neither.
    reads = up.ops("read")
    if variant != "as-declared":
        assert not up.ok or reads, "the read of the operator's Service went unnoticed"
        if not up.ok:
            assert "resource 'dask/rapids-scheduler' does not exist" in up.output
        return
    assert reads == [], reads
    assert up.ok, up.failure()
    assert up.outputs["internalLoadBalancerIp"] == engine.STAND_IN_INTERNAL_ADDRESS
    kube = cp.kube()
    namespace = up.outputs["daskNamespace"]
    service_path = kube.path("v1", "Service", f"{up.outputs['daskClusterName']}-scheduler-ilb", namespace)
    before = kube.get(service_path)
    assert before["spec"]["loadBalancerIP"] == engine.STAND_IN_INTERNAL_ADDRESS
    bump = _image_bump(state.engine)
    replaced = state.engine.run("up", config=bump)
    assert replaced.ok, replaced.failure()
    ops = {s["urn"].rsplit("::", 1)[-1]: s["op"] for s in replaced.steps if s["op"] != "same"}
    print(f"prod image bump: up {replaced.seconds:.1f} s {replaced.summary}: {ops}")
    assert "dask-scheduler-ilb" not in ops and ops.get("dask-cluster") in {"replace", "create-replacement"}
    after = kube.get(service_path)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert replaced.outputs["internalLoadBalancerIp"] == up.outputs["internalLoadBalancerIp"]
    # The same Service selects the new cluster's scheduler pod.
    selector = ",".join(f"{k}={v}" for k, v in after["spec"]["selector"].items())
    deadline = time.monotonic() + 120
    pods = kube.list("v1", "Pod", namespace, labelSelector=selector)
    while time.monotonic() < deadline and not any(p["metadata"].get("deletionTimestamp") is None for p in pods):
        time.sleep(1)
        pods = kube.list("v1", "Pod", namespace, labelSelector=selector)
    images = {c["image"] for p in pods if not p["metadata"].get("deletionTimestamp") for c in p["spec"]["containers"]}
    assert bump["gpu-dask:dask"]["image"] in images, images
