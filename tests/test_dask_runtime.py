"""The real operator and real Dask processes behind the pods, against the local control plane.

Marked `control_plane` and `real_pulumi`: the pinned Kubernetes binaries and kwok, the stack's Kubernetes
half up by the real Pulumi engine (CLI and Kubernetes provider built from source; broken variants are
engine transforms named in the test id, tests/engine_variants.py), the pinned dask-kubernetes controller
under `kopf run` as the chart's ServiceAccount, and a kubelet stand-in running each Dask pod's container
command as a local process. Each scenario prints its timings and fails against a deliberately broken variant.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from components.dask_spec import WAIT_FOR_ANNOTATION
from gpudask.local.cluster.runtime import DASK_API, DaskRuntime, wait_for_met
from gpudask.local.engine import stack_cluster
from gpudask.local.rehearse import dask_cluster_and_groups
from gpudask.record.recorder import Recording, run_program, stack_file
from gpudask.record.view import whole_numbers
from tests import engine_variants

pytestmark = [pytest.mark.control_plane, pytest.mark.real_pulumi]

# Seconds a worker pod spends in ContainerCreating (the image pull of a fresh GPU node, minutes
# on GKE): long enough that the autoscaler acts before the worker connects. Scenarios change it.
WORKER_PULL_S = 40.0
PULL_S = {"worker": WORKER_PULL_S}
OLD_CONDITION = "jsonpath={.status.phase}=Running"  # what the stack waited on before issue 10
RACE_REPETITIONS = 20
STUCK_AFTER_S = 8.0  # a phase not Running this long after the plan's condition is met stays so (Running comes in < 1 s)


@pytest.fixture
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Recording, DaskRuntime]]:
    """dev on a control plane of its own for each test: what one scenario leaves behind (20 race
    clusters, the operator's port-forward threads) must not decide the next one."""
    rec = run_program("dev")
    began = time.monotonic()
    with stack_cluster(rec, tmp_path_factory.mktemp("dev"), log=print, pull_s=_pull) as state:
        assert state.result.ok, state.result.failure()
        runtime = state.runtime
        # The stack's own scheduler takes the scheduler pool's one GPU before (b)'s extra clusters
        # are created; theirs then wait for a GPU, which the status race does not need.
        runtime.wait("the stack's scheduler pod Ready", lambda: scheduler_ready(runtime), 120)
        print(
            f"dev up in {time.monotonic() - began:.1f} s; operator answered its liveness probe "
            f"{runtime.operator.start_s:.1f} s after start"
        )
        yield rec, runtime


def _pull(pod: Mapping[str, Any]) -> float:
    return PULL_S.get((pod["metadata"].get("labels") or {}).get("dask.org/component", ""), 0.0)


def _cluster_body(rec: Recording) -> dict[str, Any]:
    cluster, _ = dask_cluster_and_groups(rec)
    return whole_numbers(copy.deepcopy(cluster))


# --- (b) the condition `pulumi up` waits for -----------------------------------------------------
def test_b_waitfor_condition_is_reached_every_time_and_the_old_one_is_not(
    dev: tuple[Recording, DaskRuntime],
) -> None:
    rec, rt = dev
    body = _cluster_body(rec)
    condition = body["metadata"]["annotations"][WAIT_FOR_ANNOTATION]
    assert condition != OLD_CONDITION, "the plan still waits on .status.phase=Running (dask/dask-kubernetes#968)"
    # The race is between two operator handlers (the create handler's final `Pending` patch and
    # the scheduler Service's status handler); no process needs to start for it, so the pods of
    # these clusters stay in the image-pull stand-in until their cluster is deleted.
    PULL_S["scheduler"] = 600.0
    began = time.monotonic()
    rows: list[tuple[str, float, bool, str]] = []
    try:
        rows = _race(rt, body, condition)
    finally:
        PULL_S.pop("scheduler")
    print(f"\n{RACE_REPETITIONS} creations in {time.monotonic() - began:.0f} s; plan's condition: {condition}")
    for name, seconds, old_met, phase in rows:
        print(
            f"  {name}: plan's condition met after {seconds:.2f} s; "
            f".status.phase=Running {'met' if old_met else 'NEVER met'} (phase {phase})"
        )
    stuck = [r for r in rows if not r[2]]
    print(f"old condition missed in {len(stuck)}/{RACE_REPETITIONS} creations")
    # The broken variant: waiting on Running would have hung `pulumi up` at least once.
    assert stuck, "the status race (dask/dask-kubernetes#968) never showed; raise RACE_REPETITIONS"


def _race(rt: DaskRuntime, body: dict[str, Any], condition: str) -> list[tuple[str, float, bool, str]]:
    rows = []
    for index in range(RACE_REPETITIONS):
        name = f"race-{index:02d}"
        item = copy.deepcopy(body)
        item["metadata"]["name"] = name
        rt.kube.apply(item, "race")
        seconds = rt.wait(
            f"{name}: {condition}", lambda n=name: wait_for_met(condition, rt.get("DaskCluster", n) or {}), 60
        )
        deadline = time.monotonic() + STUCK_AFTER_S
        old_met = False
        while time.monotonic() < deadline and not old_met:
            old_met = wait_for_met(OLD_CONDITION, rt.get("DaskCluster", name) or {})
            time.sleep(0.3)
        phase = ((rt.get("DaskCluster", name) or {}).get("status") or {}).get("phase", "")
        rows.append((name, seconds, old_met, phase))
        rt.kube.delete(item)

    def race_left() -> list[str]:
        clusters = [c["metadata"]["name"] for c in rt.list(DASK_API, "DaskCluster")]
        pods = [p["metadata"]["name"] for p in rt.list("v1", "Pod")]
        return [n for n in clusters + pods if n.startswith("race-")]

    # Gone before the next scenario: a leftover race pod could take the scheduler pool's GPU.
    rt.wait("the race clusters and their pods gone", lambda: not race_left(), 180)
    return rows


# --- (e) a pod-spec change replaces the DaskCluster ---------------------------------------------
REVISION_ENV = "GPUDASK_REVISION"


def _with_revision(body: dict[str, Any], revision: str) -> dict[str, Any]:
    """The cluster with a pod-spec change (an env var on the scheduler and worker containers)."""
    changed = copy.deepcopy(body)
    for pod in (changed["spec"]["scheduler"]["spec"], changed["spec"]["worker"]["spec"]):
        env = pod["containers"][0].setdefault("env", [])
        env[:] = [e for e in env if e["name"] != REVISION_ENV] + [{"name": REVISION_ENV, "value": revision}]
    return changed


def _owned_by(rt: DaskRuntime, uids: set[str]) -> list[str]:
    """Objects in the namespace whose owner chain reaches one of `uids`."""
    kinds = [
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        ("v1", "Pod"),
        ("v1", "Service"),
        ("kubernetes.dask.org/v1", "DaskWorkerGroup"),
        ("kubernetes.dask.org/v1", "DaskAutoscaler"),
    ]
    objects = [(kind, o) for api, kind in kinds for o in rt.list(api, kind)]
    by_uid = {o["metadata"]["uid"]: o for _, o in objects}
    found = []
    for kind, obj in objects:
        todo, seen = [obj], set()
        while todo:
            current = todo.pop()
            for ref in current["metadata"].get("ownerReferences") or []:
                if ref["uid"] in uids:
                    found.append(f"{kind}/{obj['metadata']['name']}")
                    todo = []
                    break
                if ref["uid"] in by_uid and ref["uid"] not in seen:
                    seen.add(ref["uid"])
                    todo.append(by_uid[ref["uid"]])
    return found


def replace_cluster(rt: DaskRuntime, new: dict[str, Any], how: str) -> dict[str, Any]:
    """Roll a pod-spec change out as Pulumi does (`replace`: replaceOnChanges +
    deleteBeforeReplace: delete, wait until gone, create) or as an in-place update would
    (`update`: what Pulumi does without replaceOnChanges). Returns what was measured."""
    name = new["metadata"]["name"]
    old = rt.get("DaskCluster", name)
    assert old is not None
    old_pods = {b.name for b in rt.kubelet.pods.values()}
    began = time.monotonic()
    if how == "replace":
        rt.kube.delete(new, propagation="Foreground")  # pulumi-kubernetes' default propagation
        # Bounded by the operator: a handler that reaches for the scheduler Service after it is gone blocks
        # the operator's event loop for up to 200 s (networking.is_comm_open, GOTCHAS.md), holding the
        # DaskAutoscaler's finalizer and so the foreground deletion.
        rt.wait(f"DaskCluster {name} deleted", lambda: rt.get("DaskCluster", name) is None, 420)
    deleted_s = time.monotonic() - began
    rt.kube.apply(new, "pulumi")
    condition = new["metadata"]["annotations"][WAIT_FOR_ANNOTATION]
    rt.wait(f"{name}: {condition}", lambda: wait_for_met(condition, rt.get("DaskCluster", name) or {}), 120)
    revision = next(
        e["value"] for e in new["spec"]["scheduler"]["spec"]["containers"][0]["env"] if e["name"] == REVISION_ENV
    )

    def scheduler_runs_new_spec() -> bool:
        return any(
            b.component == "scheduler" and b.env.get(REVISION_ENV) == revision and b.ready
            for b in rt.kubelet.pods.values()
        )

    new_running = True
    try:
        rt.wait("a Ready scheduler pod running the new spec", scheduler_runs_new_spec, 45)
    except Exception:  # noqa: BLE001 -- the in-place variant never gets there; reported below
        new_running = False
    return {
        "seconds": time.monotonic() - began,
        "deleted_s": deleted_s,
        "left_owned": _owned_by(rt, {old["metadata"]["uid"]}) if how == "replace" else [],
        "old_processes": sorted(old_pods & {b.name for b in rt.kubelet.pods.values()}),
        "new_spec_running": new_running,
    }


@pytest.mark.parametrize("how", ["replace", "update"])
def test_e_pod_spec_change_replaces_the_cluster_and_nothing_old_is_left(
    dev: tuple[Recording, DaskRuntime], how: str
) -> None:
    rec, rt = dev
    body = _cluster_body(rec)
    name = body["metadata"]["name"]
    condition = body["metadata"]["annotations"][WAIT_FOR_ANNOTATION]
    if rt.get("DaskCluster", name) is None:
        rt.kube.apply(body, "pulumi")
    rt.wait(f"{name}: {condition}", lambda: wait_for_met(condition, rt.get("DaskCluster", name) or {}), 120)
    rt.wait(
        "a Ready scheduler pod",
        lambda: any(b.component == "scheduler" and b.ready for b in rt.kubelet.pods.values()),
        120,
    )
    measured = replace_cluster(rt, _with_revision(body, f"{how}-{time.time():.0f}"), how)
    print(
        f"\n{how}: {measured['seconds']:.1f} s (old cluster gone after {measured['deleted_s']:.1f} s); "
        f"left owned by the old cluster: {measured['left_owned']}; old pods still running: {measured['old_processes']}; "
        f"new spec running: {measured['new_spec_running']}"
    )
    problems = []
    if measured["left_owned"]:
        problems.append(f"objects of the old cluster survived: {measured['left_owned']}")
    if measured["old_processes"]:
        problems.append(f"old pods still run: {measured['old_processes']}")
    if not measured["new_spec_running"]:
        problems.append("the pod-spec change never reached a running scheduler (dask/dask-kubernetes#895)")
    if how == "replace":
        assert not problems, problems
    else:  # the broken variant: an in-place update is ignored by the operator
        assert any("#895" in p for p in problems), problems


# --- shared by (c) and (d) ------------------------------------------------------------------------
def _plan_objects(rec: Recording, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    from gpudask.record.view import kubernetes_manifests

    return [whole_numbers(copy.deepcopy(m)) for _, m in kubernetes_manifests(rec) if m["kind"] in kinds]


def as_variant_renders(body: dict[str, Any], variant: str | None) -> dict[str, Any]:
    """The DaskCluster manifest as the engine variant `tests.engine_variants:<variant>` renders it."""
    rendered = copy.deepcopy(body)
    if variant:
        getattr(engine_variants, variant)(engine_variants.DASK_CLUSTER, "", rendered, None)
    return rendered


PLUGIN_LINE = "gpu-dask plugin:"  # components/operator_plugin.py logs each choice it makes
SCALING_LINES = ("Retired workers", "Workers to close", "falling back to LIFO", "Scaled worker group", PLUGIN_LINE)


def plugin_choices(rt: DaskRuntime) -> list[str]:
    """The scale-down choices the stack's operator plugin made (none: the stock operator chose)."""
    return [line for line in rt.operator.log_text().splitlines() if f"{PLUGIN_LINE} " in line and "scales down" in line]


def scaling_log(rt: DaskRuntime) -> list[str]:
    """The operator's own lines about scaling decisions (how it chose which workers to retire)."""
    return [line for line in rt.operator.log_text().splitlines() if any(s in line for s in SCALING_LINES)]


def drained(rt: DaskRuntime, group: str, minimum: int, timeout: float) -> tuple[bool, float, list[str]]:
    """Whether the group reaches `minimum` replicas with at most that many worker Deployments
    within `timeout`; (reached, seconds, Deployments left)."""
    began = time.monotonic()
    while True:
        wg = rt.get("DaskWorkerGroup", group) or {}
        replicas = int(((wg.get("spec") or {}).get("worker") or {}).get("replicas", -1))
        left = rt.worker_deployments(group)
        if replicas == minimum and len(left) <= minimum:
            return True, time.monotonic() - began, left
        if time.monotonic() - began > timeout:
            return False, time.monotonic() - began, left
        time.sleep(1)


@contextlib.contextmanager
def fresh_stack(
    stack: str,
    folder: Path,
    variant: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Iterator[tuple[Recording, DaskRuntime]]:
    """A control plane of its own with the stack up by the real engine (through the engine variant
    `tests.engine_variants:<variant>` when given), the operator and the Dask pods."""
    rec = run_program(stack, overrides=overrides)
    began = time.monotonic()
    variants = [f"tests.engine_variants:{variant}"] if variant else []
    with stack_cluster(rec, folder, pull_s=_pull, variants=variants, config=overrides) as state:
        assert state.result.ok, state.result.failure()
        print(f"\n{stack} up in {time.monotonic() - began:.1f} s" + (f" (engine variant {variant})" if variant else ""))
        yield rec, state.runtime


def scheduler_ready(rt: DaskRuntime) -> bool:
    return any(b.component == "scheduler" and b.ready for b in rt.kubelet.pods.values())


# --- (c) scale to zero ----------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["plan", "before-issue-10"])
def test_c_gpu_group_scales_up_for_work_and_drains_to_its_minimum(tmp_path: Path, variant: str) -> None:
    """The worker's image pull outlasts the autoscaler's first decision, as on a fresh A100 node.
    Before issue 10 the default group started at 1 and the scheduler could not retire a worker that
    had not connected yet: the operator kept its Deployment, and the GPU node, forever (#817)."""
    from distributed import Client

    with fresh_stack("dev", tmp_path, None if variant == "plan" else "before_issue_10_one_worker") as (rec, rt):
        body = _cluster_body(rec)
        name = body["metadata"]["name"]
        [autoscaler] = _plan_objects(rec, ("DaskAutoscaler",))
        minimum, group = int(autoscaler["spec"]["minimum"]), f"{name}-default"
        began = time.monotonic()
        rt.wait("a Ready scheduler pod", lambda: scheduler_ready(rt), 120)
        at_rest, rest_s, rest_left = drained(rt, group, minimum, 90)
        print(f"{variant}: at rest, {group} drained={at_rest} after {rest_s:.0f} s; worker Deployments {rest_left}")
        print("\n".join(scaling_log(rt)[-6:]))
        if variant != "plan":  # the broken variant: the never-connected worker keeps its Deployment
            assert not plugin_choices(rt), f"the variant's operator ran the stack's plugin: {plugin_choices(rt)}"
            assert not at_rest, "the variant without issue 10's fixes drained too: the scenario cannot see #817"
            return
        assert at_rest, f"never-connected worker kept its Deployment (dask/dask-kubernetes#817): {rest_left}"
        with Client(address := rt.scheduler_address(name), security=rt.client_security(address), timeout=30) as client:
            work_began = time.monotonic()
            futures = client.map(time.sleep, [1.0] * 10, pure=False)
            client.gather(futures, errors="raise")
            work_s = time.monotonic() - work_began
            peak = len(client.scheduler_info(n_workers=-1)["workers"])
            del futures
        print(f"{variant}: 10 tasks ran in {work_s:.0f} s (image pull {PULL_S['worker']:.0f} s) on {peak} worker(s)")
        assert peak >= 1
        ok, drain_s, left = drained(rt, group, minimum, 240)
        print(
            f"{variant}: after the work, drained={ok} in {drain_s:.0f} s; left {left}; total {time.monotonic() - began:.0f} s"
        )
        print("\n".join(scaling_log(rt)[-4:]))
        assert ok, f"{group} did not drain to {minimum}: worker Deployments left {left}"
        assert plugin_choices(rt), "the GPU group drained without the stack's operator plugin choosing its workers"


# --- (d) scaling one group never retires another's workers ------------------------------------------
def _group_workers(client: Any, group: str) -> list[str]:
    return sorted(
        w["name"] for w in client.scheduler_info(n_workers=-1)["workers"].values() if w["name"].startswith(group)
    )


def _without_tls(stack: str) -> dict[str, Any]:
    """The stack's `gpu-dask:dask` with `tls: false`. With TLS, the operator's RPC fallback speaks
    plain TCP to the TLS port; on a real network the scheduler's close reaches it at once and it
    goes on to its group-by-label path, but through the harness's port-forward (kr8s -> API
    server -> kwok) the close never arrives and the call hangs (see GOTCHAS). Everything else of
    the stack's shape (two groups, their sizes, the preload, the preStop hook) is unchanged."""
    config = yaml.safe_load(stack_file(stack).read_text())["config"]
    return {"gpu-dask:dask": {**config["gpu-dask:dask"], "tls": False}}


def _prestop_lines(rt: DaskRuntime) -> list[str]:
    return [line for line in rt.kubelet.log if " deleted: " in line or ": preStop hook " in line]


# The stack (plan) and what it was without each of its parts that protect a scale-down of one group:
# the scheduler's preload (issue 10), the operator plugin (issue 21), the workers' preStop hook (issue 24).
D_VARIANTS = {
    "plan": None,
    "before-issue-10": "before_issue_10",
    "without-plugin": "without_operator_plugin",
    "without-plugin-or-prestop": "without_plugin_or_prestop",
}


@pytest.mark.parametrize("variant", list(D_VARIANTS))
def test_d_scaling_the_gpu_group_leaves_the_cpu_group_alone(tmp_path: Path, variant: str) -> None:
    """GPU workers hold results (as after a persisted dask-cudf frame); CPU workers are idle and
    empty: exactly the workers a count-only retirement picks first (#914). With the stack's
    operator plugin, the operator retires the GPU group's own workers through the scheduler,
    their data moved first. Without it (the plugin's fallback when the scheduler's API does not
    answer), the preload refuses the count-only retirement, the operator deletes Deployments of
    the group by name, and the results survive only because the kubelet (stand-in) runs the
    rendered preStop hook within the rendered grace: scattered data cannot be recomputed, so a
    worker stopped without retiring loses it (issue 24)."""
    from distributed import Client, wait

    engine_variant = D_VARIANTS[variant]
    PULL_S["worker"] = 0.0
    try:
        with fresh_stack("prod", tmp_path, engine_variant, overrides=_without_tls("prod")) as (rec, rt):
            body = _cluster_body(rec)
            name = body["metadata"]["name"]
            [cpu_group] = _plan_objects(rec, ("DaskWorkerGroup",))
            cpu = cpu_group["metadata"]["name"]
            gpu_replicas = int(body["spec"]["worker"]["replicas"])
            expected = gpu_replicas + int(cpu_group["spec"]["worker"]["replicas"])
            began = time.monotonic()
            rt.wait("a Ready scheduler pod", lambda: scheduler_ready(rt), 120)
            with Client(
                address := rt.scheduler_address(name), security=rt.client_security(address), timeout=60
            ) as client:
                client.wait_for_workers(expected, timeout=180)
                up_s = time.monotonic() - began
                held = client.map(lambda i: bytes(2_000_000) + bytes([i]), range(gpu_replicas), resources={"GPU": 1})
                wait(held)
                # One result on every GPU worker that only its worker has (no task can recompute it).
                gpu_addresses = [
                    a
                    for a, w in client.scheduler_info(n_workers=-1)["workers"].items()
                    if w["name"].startswith(f"{name}-default")
                ]
                scattered = [
                    cast(Any, client.scatter(bytes(1_000_000) + address.encode(), workers=[address], broadcast=False))
                    for address in gpu_addresses
                ]
                wait(scattered)
                cpu_before, cpu_workers_before = rt.worker_deployments(cpu), _group_workers(client, cpu)
                scale_began = time.monotonic()
                patched = as_variant_renders(body, engine_variant)
                patched["spec"]["worker"]["replicas"] = gpu_replicas - 2
                rt.kube.apply(patched, "pulumi")
                rt.wait(
                    "the GPU group's scale-down to finish",
                    lambda: (
                        len(rt.worker_deployments(f"{name}-default")) <= gpu_replicas - 2
                        or len(rt.worker_deployments(cpu)) < len(cpu_before)
                    ),
                    180,
                )
                time.sleep(5)  # let a wrongly retired worker's Deployment go too
                cpu_after, cpu_workers_after = rt.worker_deployments(cpu), _group_workers(client, cpu)
                # Pods of the GPU Deployments the scale-down deleted finish (preStop, grace). Without the preload
                # (before issue 10) the CPU group's are deleted instead and every GPU Deployment stays.
                rt.wait(
                    "the deleted GPU workers' pods gone (their preStop and grace over)",
                    lambda: (
                        len([b for b in rt.kubelet.pods.values() if b.group == f"{name}-default"])
                        <= len(rt.worker_deployments(f"{name}-default"))
                    ),
                    180,
                )
                # Data lost with its only worker is forgotten: its future is cancelled.
                kept = [f for f in scattered if not f.cancelled()]
                holders = cast(dict[str, Any], client.who_has(kept)) if kept else {}
                survived = [f.key for f in kept if holders.get(f.key)]
                del held, scattered
            print(
                f"{variant}: {expected} workers up in {up_s:.0f} s; GPU group {gpu_replicas}->{gpu_replicas - 2} "
                f"in {time.monotonic() - scale_began:.0f} s; CPU Deployments {cpu_before} -> {cpu_after}; "
                f"CPU workers {cpu_workers_before} -> {cpu_workers_after}"
            )
            print("\n".join(scaling_log(rt)[-4:]))
            chosen_by_plugin = plugin_choices(rt)
            print(
                f"{variant}: results only a GPU worker held, still held after the scale-down: {len(survived)}/{gpu_replicas}"
            )
            print("\n".join(_prestop_lines(rt)))
    finally:
        PULL_S["worker"] = WORKER_PULL_S
    untouched = cpu_after == cpu_before and cpu_workers_after == cpu_workers_before
    if variant == "plan":  # the plugin arrives by the ConfigMap the stack mounts, as on GKE (issue 21)
        assert chosen_by_plugin, "the operator scaled the GPU group down without the stack's plugin choosing"
    else:
        assert not chosen_by_plugin, f"the variant's operator ran the stack's plugin: {chosen_by_plugin}"
    if variant == "without-plugin-or-prestop":
        assert len(survived) < gpu_replicas, (
            "the variant without the plugin and the preStop hook kept every result: the scenario cannot see a "
            "worker stopped unretired"
        )
        return
    if variant in ("plan", "without-plugin"):
        assert untouched, "scaling the GPU group retired CPU workers (dask/dask-kubernetes#914)"
        assert len(survived) == gpu_replicas, (
            f"only {len(survived)}/{gpu_replicas} results survived the scale-down: the retired GPU workers were "
            "neither retired through the scheduler nor through their preStop hook within their grace"
        )
    else:
        assert not untouched, "the variant without issue 10's preload kept the CPU group: the scenario cannot see #914"
