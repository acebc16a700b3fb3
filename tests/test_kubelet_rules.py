"""What the kubelet would do with every pod spec the stacks render (issue 24).

The rules are the kubelet's own (kubernetes v1.34.4, read 2026-12-03, cited in
gpudask/local/cluster/kubelet.py and GOTCHAS.md "What the kubelet decides from a pod spec"), applied
to the rendered specs: the stack's own Deployments and DaemonSets and the Deployments the
pinned operator builds from the DaskCluster. The same rules run in the control plane's kubelet
stand-in (tests/test_dask_runtime.py scenario (d) runs the rendered preStop hook within the
rendered grace).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gpudask.local.cluster import kubelet
from gpudask.plan import checks as recording_checks
from gpudask.record import dask_operator
from gpudask.record.recorder import Recording
from tests.conftest import STACKS

Run = Callable[..., Recording]
Pod = tuple[str, dict[str, Any]]  # (what renders it, pod spec)
WORKLOADS = ("Deployment", "DaemonSet", "StatefulSet", "Job")


def _pods(rec: Recording) -> Iterator[Pod]:
    """Every pod spec the stack renders: its workloads' templates, then the Dask pods the
    operator builds (one per worker Deployment)."""
    manifests = [m for _, m in recording_checks.kubernetes_manifests(rec)]
    for m in manifests:
        if m["kind"] in WORKLOADS:
            yield f"{m['kind']} {m['metadata'].get('name')}", m["spec"]["template"]["spec"]
    clusters = [m for m in manifests if m["kind"] == "DaskCluster"]
    groups = [m for m in manifests if m["kind"] == "DaskWorkerGroup"]
    for cluster in clusters:
        for built in dask_operator.created_objects(cluster, groups):
            if built["kind"] == "Deployment":
                yield f"operator-built Deployment {built['metadata']['name']}", built["spec"]["template"]["spec"]


def _keys(rec: Recording) -> Callable[[str, str], list[str]]:
    data: dict[tuple[str, str], list[str]] = {}
    for _, m in recording_checks.kubernetes_manifests(rec):
        if m["kind"] in ("Secret", "ConfigMap"):
            kind = "secret" if m["kind"] == "Secret" else "configMap"
            names = {*(m.get("data") or {}), *(m.get("stringData") or {}), *(m.get("binaryData") or {})}
            data[(kind, str(m["metadata"].get("name")))] = sorted(names)

    def keys(kind: str, name: str) -> list[str]:
        assert (kind, name) in data, f"a pod mounts {kind} {name}, which the stack does not declare"
        return data[(kind, name)]

    return keys


def _worker_pods(rec: Recording) -> list[Pod]:
    return [
        (what, spec)
        for what, spec in _pods(rec)
        if what.startswith("operator-built") and any(c["name"] == "worker" for c in spec["containers"])
    ]


# --- Secret and projected volume files ----------------------------------------------------------
def _spec(pod_context: dict[str, Any], volume: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    container = {
        "name": "c",
        "securityContext": {"runAsUser": 1001},
        "volumeMounts": [{"name": "v", "mountPath": "/m"}],
    }
    return {"securityContext": pod_context, "volumes": [{"name": "v", **volume}], "containers": [container]}, container


@pytest.mark.parametrize(
    ("pod_context", "volume", "expected"),
    [
        # fsGroup: the kubelet chowns the files to it and ORs 0440 into their mode.
        ({"fsGroup": 1001}, {"secret": {"secretName": "s", "defaultMode": 0o400}}, [(0, 1001, 0o440, True)]),
        # supplementalGroups are the process's groups; they own no file: root:root 0440.
        ({"supplementalGroups": [1001]}, {"secret": {"secretName": "s", "defaultMode": 0o440}}, [(0, 0, 0o440, False)]),
        # No defaultMode: the API's 0644, world-readable.
        ({}, {"secret": {"secretName": "s"}}, [(0, 0, 0o644, True)]),
        # An item's mode wins over defaultMode.
        (
            {},
            {"secret": {"secretName": "s", "defaultMode": 0o644, "items": [{"key": "k", "path": "k", "mode": 0o400}]}},
            [(0, 0, 0o400, False)],
        ),
        # Projected: the volume's defaultMode, the same fsGroup rule (fsGroup is one of the process's groups).
        (
            {"fsGroup": 7},
            {"projected": {"defaultMode": 0o400, "sources": [{"secret": {"name": "s"}}]}},
            [(0, 7, 0o440, True)],
        ),
    ],
    ids=["fsGroup", "supplementalGroups-only", "default-mode", "item-mode", "projected"],
)
def test_volume_files_get_the_owner_and_mode_the_kubelet_gives_them(
    pod_context: dict[str, Any], volume: dict[str, Any], expected: list[tuple[int, int, int, bool]]
) -> None:
    spec, container = _spec(pod_context, volume)
    files = kubelet.volume_files(spec, container, lambda kind, name: ["k"])
    uid, groups = kubelet.process_identity(spec, container)
    assert uid == 1001
    assert [(f.uid, f.gid, f.mode, kubelet.readable(f, uid, groups)) for f in files] == expected


@pytest.mark.parametrize("stack", STACKS)
def test_every_mounted_secret_file_is_readable_by_the_user_its_container_runs_as(recorded: Run, stack: str) -> None:
    """prod (TLS on) mounts the key files 0440: readable by uid 1001 only through the pod's
    fsGroup. Without it Dask fails at start with a permission error on scheduler-key.pem."""
    rec = recorded(stack)
    keys = _keys(rec)
    problems, mounted = [], 0
    for what, spec in _pods(rec):
        for container in spec["containers"]:
            mounted += len(kubelet.volume_files(spec, container, keys))
            problems += [
                f"{what} container {container['name']}: {p}" for p in kubelet.unreadable_files(spec, container, keys)
            ]
    assert not problems, "\n".join(problems)
    if recording_checks.recorded_settings(rec).dask.tls:
        assert mounted >= len(_worker_pods(rec)) * 2, "every TLS pod mounts its certificate and key"


# --- the worker's preStop hook and its grace ---------------------------------------------------------
def _hook_deadline(command: list[str]) -> float:
    """The bound the rendered hook sets itself: `python -c <text>` defines DEADLINE_S (the
    longest it waits for the scheduler's retirement). The text is run as a module, not main."""
    assert command[:2] == ["python", "-c"], f"the worker's preStop is not `python -c <hook>`: {command[:2]}"
    namespace: dict[str, Any] = {"__name__": "rendered_prestop"}
    exec(compile(command[2], "<rendered preStop>", "exec"), namespace)
    assert callable(namespace.get("retire")), "the rendered hook does not retire the worker"
    assert "DEADLINE_S" in namespace, "the rendered hook has no deadline: the kubelet's grace would cut it"
    return float(namespace["DEADLINE_S"])


@pytest.mark.parametrize("stack", STACKS)
def test_every_worker_retires_through_its_rendered_prestop_within_its_grace(recorded: Run, stack: str) -> None:
    """Scale-down deletes worker pods: the kubelet runs the rendered preStop (retire this
    worker, moving its results), then SIGTERM, all within terminationGracePeriodSeconds. A
    grace shorter than the hook's own deadline plus the kubelet's 2 s minimum for SIGTERM
    kills the retirement mid-transfer; no hook loses the worker's results outright."""
    workers = _worker_pods(recorded(stack))
    assert workers
    for what, spec in workers:
        for container in spec["containers"]:
            command = kubelet.prestop_command(container)
            assert command, f"{what}: container {container['name']} has no preStop hook; its results die with it"
            deadline = _hook_deadline(command)
            grace = kubelet.grace_s(spec)
            assert grace >= deadline + kubelet.MINIMUM_GRACE_S, (
                f"{what}: terminationGracePeriodSeconds {grace:.0f} s is shorter than the preStop hook's own "
                f"deadline {deadline:.0f} s + {kubelet.MINIMUM_GRACE_S:.0f} s for SIGTERM: the kubelet kills the retirement"
            )


# --- the rest of what the kubelet decides from a spec -----------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_every_probe_and_hook_port_names_a_port_of_its_container(recorded: Run, stack: str) -> None:
    """The kubelet resolves a named probe port against the container's own ports
    (pkg/probe/util.go ResolveContainerPort); a name it cannot find fails every probe."""
    problems = []
    for what, spec in _pods(recorded(stack)):
        for container in spec["containers"]:
            names = {p.get("name") for p in container.get("ports") or []}
            handlers = {k: container.get(k) or {} for k in ("readinessProbe", "livenessProbe", "startupProbe")}
            handlers |= {f"lifecycle.{k}": v for k, v in (container.get("lifecycle") or {}).items()}
            for where, handler in handlers.items():
                check = handler.get("httpGet") or handler.get("tcpSocket") or {}
                port = check.get("port")
                if isinstance(port, str) and not port.isdigit() and port not in names:
                    problems.append(f"{what} {container['name']} {where}: port {port!r} is not among {sorted(names)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stack", STACKS)
def test_containers_that_must_run_as_non_root_name_a_numeric_non_root_user(recorded: Run, stack: str) -> None:
    """With runAsNonRoot and no runAsUser the kubelet checks the image's USER, and refuses a
    name it cannot verify (`rapids`: "image has non-numeric user"; kuberuntime
    security_context_others.go verifyRunAsNonRoot), so every such container states its uid."""
    problems, checked = [], 0
    for what, spec in _pods(recorded(stack)):
        pod_context = spec.get("securityContext") or {}
        for container in spec["containers"]:
            own = container.get("securityContext") or {}
            if not own.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
                continue
            checked += 1
            uid = own.get("runAsUser", pod_context.get("runAsUser"))
            if uid is None or int(uid) == 0:
                problems.append(f"{what} {container['name']}: runAsNonRoot with runAsUser {uid}")
    assert not problems, "\n".join(problems)
    assert checked, "no container asks for runAsNonRoot (the Dask namespace enforces restricted)"


def _writable_mount(path: str, container: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any] | None:
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        root = mount["mountPath"].rstrip("/")
        inside = path == root or path.startswith(root + "/")
        if inside and not mount.get("readOnly") and "emptyDir" in volumes.get(mount["name"], {}):
            return mount
    return None


@pytest.mark.parametrize("stack", STACKS)
def test_what_a_worker_writes_lands_on_a_writable_sized_volume(recorded: Run, stack: str) -> None:
    """A worker spills to its --local-directory: that must be a writable emptyDir mount (sized,
    counted against the pod's ephemeral storage), not the container's root filesystem, which a
    readOnlyRootFilesystem would refuse and which is not what the spill sizing counts."""
    problems = []
    workers = _worker_pods(recorded(stack))
    for what, spec in workers:
        for container in spec["containers"]:
            args = [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
            written = [b for a, b in itertools.pairwise(args) if a == "--local-directory"]
            assert written, f"{what}: the worker names no --local-directory"
            problems += [
                f"{what} {container['name']}: --local-directory {p} is on no writable emptyDir mount"
                for p in written
                if _writable_mount(p, container, spec) is None
            ]
    assert not problems, "\n".join(problems)


def test_the_tls_secret_holds_every_file_the_pods_are_told_to_read(recorded: Run) -> None:
    """The kubelet writes only the Secret's keys; a TLS path in the env that names no key is
    a missing file at start."""
    rec = recorded("prod")
    keys = _keys(rec)
    for what, spec in _worker_pods(rec)[:1] + [p for p in _pods(rec) if "scheduler" in p[0]]:
        for container in spec["containers"]:
            files = {f.path for f in kubelet.volume_files(spec, container, keys)}
            named = {e["value"] for e in container.get("env") or [] if str(e.get("value", "")).startswith("/etc/")}
            assert named and named <= files, f"{what}: env names {sorted(named - files)}, not among {sorted(files)}"
