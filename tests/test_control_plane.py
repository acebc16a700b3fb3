"""The local control plane: the pinned Kubernetes answers, enforces Pod Security, and leaves nothing behind.

Marked `control_plane`: these start the real etcd + kube-apiserver + kube-controller-manager +
kube-scheduler built from upstream/versions.toml (built on first use: minutes, once per version).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gpudask.local import procs
from gpudask.local.cluster.controlplane import ControlPlane
from gpudask.local.cluster.kube import ApiError, Kube
from gpudask.upstream import programs as upstream

pytestmark = pytest.mark.control_plane
ROOT = Path(__file__).resolve().parent.parent
# A deadline guards a hang, it is not a speed test: on a loaded 2-core machine a control plane took
# over 30 s to go after SIGTERM (issue 19); stopping takes seconds when nothing hangs.
HANG_S = 300

NON_COMPLIANT_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "root-pod"},
    "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "securityContext": {"privileged": True}}]},
}


def _gone(pids: list[int], ports: list[int], folder: Path) -> list[str]:
    left = [f"pid {pid} alive" for pid in pids if Path(f"/proc/{pid}").exists() and _not_zombie(pid)]
    left += [f"port {port} open" for port in ports if procs.port_open(port)]
    if folder.exists():
        left.append(f"{folder} exists")
    return left


def _not_zombie(pid: int) -> bool:
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:3] + " "
    except OSError:
        return False


def test_pinned_api_server_enforces_restricted(
    shared_control_plane: ControlPlane, control_plane_namespace: str
) -> None:
    """The session's shared control plane: the pinned build answers, its controllers run, and it
    enforces Pod Security. That a control plane leaves nothing behind is
    test_nothing_survives_ctrl_c_sigterm_or_a_killed_parent's (a control plane of its own)."""
    cp, namespace = shared_control_plane, control_plane_namespace
    kube_pin = upstream.load_programs()["kubernetes"]
    version = cp.version()
    assert version["gitVersion"] == kube_pin.version  # the pinned build answers, not some other server
    assert cp.server.startswith("https://127.0.0.1:")
    kube = cp.kube()
    kube.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}",
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
        content_type="application/merge-patch+json",
    )
    # The controllers are live: the ServiceAccount controller fills the new namespace.
    assert procs.wait_for(lambda: kube.list("v1", "ServiceAccount", namespace), HANG_S)
    with pytest.raises(ApiError) as refused:
        kube.request("POST", f"/api/v1/namespaces/{namespace}/pods", NON_COMPLIANT_POD)
    rss = cp.rss_mb()
    print(f"control plane: start {cp.timings}, RSS MiB {rss} total {sum(rss.values()):.0f}")
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in refused.value.message
    assert 'privileged (container "c" must not set securityContext.privileged=true)' in refused.value.message


def _post(kube: Kube, path: str, kind: str, api_version: str, body: dict) -> None:
    kube.request("POST", path, {"apiVersion": api_version, "kind": kind, **body})


def test_service_account_kubeconfig_gets_only_its_rbac(
    shared_control_plane: ControlPlane, control_plane_namespace: str
) -> None:
    cp, team = shared_control_plane, control_plane_namespace
    admin = cp.kube()
    _post(admin, f"/api/v1/namespaces/{team}/serviceaccounts", "ServiceAccount", "v1", {"metadata": {"name": "reader"}})
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{team}"
    _post(
        admin,
        f"{rbac}/roles",
        "Role",
        "rbac.authorization.k8s.io/v1",
        {
            "metadata": {"name": "read-pods"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        },
    )
    _post(
        admin,
        f"{rbac}/rolebindings",
        "RoleBinding",
        "rbac.authorization.k8s.io/v1",
        {
            "metadata": {"name": "reader-reads"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-pods"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": team}],
        },
    )
    reader = cp.kube(cp.kubeconfig_for("reader", team))
    assert reader.list("v1", "Pod", team) == []
    with pytest.raises(ApiError) as denied:
        reader.list("v1", "Secret", team)
    assert denied.value.status == 403
    assert f'User "system:serviceaccount:{team}:reader" cannot list resource "secrets"' in denied.value.message


_CHILD = """
import json, sys, time
from gpudask.local.cluster.controlplane import ControlPlane

def show(cp):
    info = {"pids": list(cp.pids().values()), "ports": list(cp.ports.values()), "dir": str(cp.dir)}
    print(json.dumps(info), flush=True)

if sys.argv[1] == "context":
    with ControlPlane() as cp:
        show(cp)
        time.sleep(600)
else:  # started without a context manager, then the process is killed outright
    show(ControlPlane().start())
    time.sleep(600)
"""


def _start_child(mode: str) -> tuple[subprocess.Popen[str], dict]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, mode], cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line, f"the child exited with {child.wait()} before its control plane was ready"
    return child, json.loads(line)


@pytest.mark.parametrize(
    ("mode", "sig"), [("context", signal.SIGINT), ("context", signal.SIGTERM), ("bare", signal.SIGKILL)]
)
def test_nothing_survives_ctrl_c_sigterm_or_a_killed_parent(mode: str, sig: signal.Signals) -> None:
    child, info = _start_child(mode)
    os.kill(child.pid, sig)
    child.wait(HANG_S)
    assert procs.wait_for(lambda: not _gone(info["pids"], info["ports"], Path("/nonexistent")), HANG_S), _gone(
        info["pids"], info["ports"], Path("/nonexistent")
    )
    if sig == signal.SIGKILL:  # no chance to clean up: the next run removes the orphaned folder
        from gpudask.local.cluster.controlplane import reap_orphaned_runs

        reap_orphaned_runs()
    assert not Path(info["dir"]).exists()
