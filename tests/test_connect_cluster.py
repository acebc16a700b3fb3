"""The client paths against prod (TLS) on the local control plane with the real operator.

prod's Kubernetes half goes up by the real engine (pulumi-tls' certificates stood in by one local
CA), the chart's operator runs under `kopf run`, and every Dask pod is a real process behind
kwok's port-forward. A client outside the cluster (here) cannot resolve the in-cluster
`schedulerAddress`, so `gpudask.client.connect` port-forwards the scheduler Service through the API
server and must keep `tls://`; `conn.scale()` goes through the API only.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpudask.client.connect import ConnectError, connect
from gpudask.local.cluster.runtime import DASK_API, DaskRuntime
from gpudask.local.engine import stack_cluster
from gpudask.record.recorder import Recording, run_program

pytestmark = [pytest.mark.control_plane, pytest.mark.real_pulumi]


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Recording, DaskRuntime]]:
    rec = run_program("prod")
    began = time.monotonic()
    with stack_cluster(rec, tmp_path_factory.mktemp("prod")) as state:
        assert state.result.ok, state.result.failure()
        runtime = state.runtime
        runtime.wait(
            "prod's scheduler pod Ready",
            lambda: any(b.component == "scheduler" and b.ready for b in runtime.kubelet.pods.values()),
            180,
        )
        print(f"\nprod up in {time.monotonic() - began:.1f} s")
        yield rec, runtime


def _outputs(rec: Recording, rt: DaskRuntime, **changes: Any) -> dict[str, Any]:
    """prod's outputs as `pulumi stack output --json --show-secrets` gives them, with the
    stand-in CA's client certificate where pulumi-tls' would be."""
    folder = rt.tls_dir
    assert folder is not None and (folder / "client.pem").exists(), "prod no longer uses TLS"
    certs = {
        "tlsCaCertPem": (folder / "ca.pem").read_text(),
        "tlsClientCertPem": (folder / "client.pem").read_text(),
        "tlsClientKeyPem": (folder / "client-key.pem").read_text(),
    }
    return copy.deepcopy(rec.outputs) | certs | changes


def _as_a_user(rt: DaskRuntime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(rt.cp.kubeconfig))
    monkeypatch.setenv("HOME", str(tmp_path))


def test_prod_client_outside_the_cluster_connects_through_a_port_forward_with_tls(
    prod: tuple[Recording, DaskRuntime], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rec, rt = prod
    _as_a_user(rt, monkeypatch, tmp_path)
    outputs = _outputs(rec, rt)
    assert outputs["schedulerAddress"].startswith("tls://")  # not reachable from a laptop: port-forward
    began = time.monotonic()
    with connect(outputs=outputs, timeout=60, port_forward=True) as conn:
        connected_s = time.monotonic() - began
        assert conn.via == "port-forward"
        assert str(conn.client.scheduler_info()["address"]).startswith("tls://")
        assert conn.client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
    print(f"prod: connected through the port-forward with TLS in {connected_s:.1f} s")


def _autoscaler(name: str) -> dict[str, Any]:
    """A DaskAutoscaler for the GPU group at exactly its current size (so the operator leaves it)."""
    return {
        "apiVersion": DASK_API,
        "kind": "DaskAutoscaler",
        "metadata": {"name": name, "namespace": "dask"},
        "spec": {"cluster": name, "minimum": 4, "maximum": 4},
    }


def test_scaling_the_cpu_group_with_tls_keeps_the_gpu_groups_autoscaler(
    prod: tuple[Recording, DaskRuntime], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rec, rt = prod
    _as_a_user(rt, monkeypatch, tmp_path)
    name = rec.outputs["daskClusterName"]
    groups = copy.deepcopy(rec.outputs["daskWorkerGroups"])
    groups["default"]["autoscaled"] = True
    rt.kube.apply(_autoscaler(name), "test")
    cpu = f"{name}-cpu"
    before = int((rt.get("DaskWorkerGroup", cpu) or {})["spec"]["worker"]["replicas"])
    try:
        with connect(outputs=_outputs(rec, rt, daskWorkerGroups=groups), timeout=60, port_forward=True) as conn:
            began = time.monotonic()
            conn.scale(before + 1, worker_group="cpu")
            rt.wait(
                f"{cpu} at {before + 1} worker Deployments", lambda: len(rt.worker_deployments(cpu)) == before + 1, 120
            )
            scaled_s = time.monotonic() - began
            assert rt.get("DaskAutoscaler", name) is not None, (
                "scaling the cpu group deleted the GPU group's autoscaler"
            )
            with pytest.raises(ConnectError, match="worker group 'gpu' is autoscaled"):
                conn.scale(1, worker_group="gpu")
            assert rt.get("DaskAutoscaler", name) is not None
        print(f"prod: {cpu} {before} -> {before + 1} Deployments in {scaled_s:.1f} s with TLS; autoscaler kept")
    finally:
        rt.kube.delete(_autoscaler(name))


def test_the_real_kubectl_port_forward_and_a_tls_client_reach_prods_scheduler(
    prod: tuple[Recording, DaskRuntime], tmp_path: Path
) -> None:
    """README's manual path: `kubectl port-forward svc/<name>-scheduler` (the real kubectl, built from
    the pinned k8s.io/kubernetes) and `Client("tls://127.0.0.1:<port>", security=...)`."""
    import re
    import subprocess

    from distributed import Client

    from gpudask.client.connect import security_from
    from gpudask.upstream import programs as upstream

    rec, rt = prod
    outputs = _outputs(rec, rt)
    service = f"svc/{outputs['daskClusterName']}-scheduler"
    kubectl = upstream.binary("kubectl")
    forward = subprocess.Popen(
        [str(kubectl), "--kubeconfig", str(rt.cp.kubeconfig), "-n", outputs["daskNamespace"], "port-forward",
         service, ":8786"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        began, port = time.monotonic(), None
        assert forward.stdout is not None
        while port is None and time.monotonic() - began < 60:
            line = forward.stdout.readline()  # kubectl prints its forwarding line first; it exits on failure
            if not line and forward.poll() is not None:
                break
            found = re.search(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8786", line)
            port = int(found.group(1)) if found else None
        assert port, f"kubectl port-forward {service} printed no forwarding line within 60 s (exit {forward.poll()})"
        security = security_from(outputs, tmp_path)
        with Client(f"tls://127.0.0.1:{port}", security=security, timeout=60) as client:
            assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
        print(f"prod: kubectl port-forward {service} + a TLS Client in {time.monotonic() - began:.1f} s")
    finally:
        forward.terminate()
        try:
            forward.wait(10)
        except subprocess.TimeoutExpired:
            forward.kill()
            forward.wait(10)


# --- the seeds' own client path, for dev (no TLS) ----------------------------------------------------
@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Recording, DaskRuntime]]:
    rec = run_program("dev")
    with stack_cluster(rec, tmp_path_factory.mktemp("dev")) as state:
        assert state.result.ok, state.result.failure()
        runtime = state.runtime
        runtime.wait(
            "dev's scheduler pod Ready",
            lambda: any(b.component == "scheduler" and b.ready for b in runtime.kubelet.pods.values()),
            180,
        )
        yield rec, runtime


def test_the_seeds_from_name_and_client_run_work_on_dev(
    dev: tuple[Recording, DaskRuntime], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The seeds' `KubeCluster.from_name(...)` + `Client(cluster)` from outside the cluster: it
    port-forwards the scheduler itself (tcp://, which dev speaks). Bounded: it has no deadline of its own."""
    import asyncio

    from dask_kubernetes.operator import KubeCluster
    from distributed import Client

    rec, rt = dev
    _as_a_user(rt, monkeypatch, tmp_path)

    async def seed() -> tuple[int, float]:
        began = time.monotonic()
        cluster = await asyncio.wait_for(
            KubeCluster.from_name(
                rec.outputs["daskClusterName"], namespace=rec.outputs["daskNamespace"], asynchronous=True
            ),
            120,
        )
        try:
            async with Client(cluster, asynchronous=True) as client:
                result = await asyncio.wait_for(client.submit(sum, [1, 2, 3]), 60)
        finally:
            await asyncio.wait_for(cluster.close(), 60)
        return result, time.monotonic() - began

    loop = asyncio.new_event_loop()
    try:
        result, seconds = loop.run_until_complete(seed())
    finally:
        loop.close()
    print(f"dev: KubeCluster.from_name + Client(cluster) ran work in {seconds:.1f} s")
    assert result == 6
