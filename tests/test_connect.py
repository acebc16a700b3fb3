"""`gpudask.client.connect`: stack outputs -> a real Client on real local schedulers (dev: tcp, prod: TLS).

The port-forward path and `conn.scale()` need an API server: tests/test_connect_cluster.py runs
them on the local control plane with the real operator."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpudask.client import connect as connect_module
from gpudask.client.connect import ConnectError, connect, stack_outputs, version_skew
from gpudask.local.rehearse import Rehearsal, rehearsal
from gpudask.record.recorder import PROJECT_DIR, run_program

IN_CLUSTER = "tcp://rapids-scheduler.dask.svc.cluster.local:8786"  # not resolvable here

# Every test here runs a real local Dask cluster.
pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def local() -> Iterator[Rehearsal]:
    with rehearsal(run_program("dev"), timeout=90) as running:
        yield running


@pytest.fixture(scope="module")
def dev_outputs() -> dict[str, Any]:
    return run_program("dev").outputs


def _outputs(dev_outputs: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return copy.deepcopy(dev_outputs) | changes


def test_outputs_file_with_a_reachable_address_connects_directly(
    local: Rehearsal, dev_outputs: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(_outputs(dev_outputs, schedulerAddress=local.address)))
    with connect(outputs=path) as conn:
        assert conn.via == local.address
        assert conn.client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
        assert len(conn.client.scheduler_info()["workers"]) == 1
        assert conn._forward is None


def test_internal_load_balancer_ip_is_tried_after_the_in_cluster_name(
    local: Rehearsal, dev_outputs: dict[str, Any]
) -> None:
    port = local.address.rsplit(":", 1)[1]
    outputs = _outputs(
        dev_outputs,
        schedulerAddress=f"tcp://rapids-scheduler.dask.svc.cluster.local:{port}",
        internalLoadBalancerIp="127.0.0.1",
    )
    with connect(outputs=outputs) as conn:
        assert conn.via == local.address


def test_missing_outputs_are_named(dev_outputs: dict[str, Any]) -> None:
    outputs = {k: v for k, v in dev_outputs.items() if k not in ("schedulerAddress", "daskNamespace")}
    with pytest.raises(ConnectError, match="stack outputs lack schedulerAddress, daskNamespace"):
        stack_outputs(outputs=outputs)


def test_no_cli_and_no_outputs_says_how_to_save_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        ConnectError, match=re.escape("pulumi stack output --json --show-secrets --stack dev > outputs.json")
    ):
        stack_outputs(stack="dev")


def test_unreachable_without_kubernetes_credentials_gives_the_port_forward_hint(
    dev_outputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The real KubeCluster.from_name, with no kubeconfig to find.
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConnectError) as err:
        connect(outputs=_outputs(dev_outputs, schedulerAddress=IN_CLUSTER), timeout=2)
    message = str(err.value)
    assert IN_CLUSTER in message and "the port-forward of dask/rapids-scheduler failed" in message
    assert "kubectl port-forward -n dask svc/rapids-scheduler 8786:8786" in message


def test_version_skew_is_reported_per_package(local: Rehearsal, dev_outputs: dict[str, Any]) -> None:
    with connect(outputs=_outputs(dev_outputs, schedulerAddress=local.address)) as conn:
        versions = connect_module.versions(conn.client)
    assert version_skew(versions) == []  # the rehearsal runs this venv's versions
    skewed = copy.deepcopy(versions)
    skewed["scheduler"]["packages"]["distributed"] = "2025.9.1"
    skewed["scheduler"]["host"]["python"] = "2.7.18.final.0"
    mine = versions["client"]["packages"]["distributed"]
    assert version_skew(skewed) == [
        f"distributed: client {mine}, cluster 2025.9.1",
        f"python: client {sys.version_info.major}.{sys.version_info.minor}, cluster 2.7",
    ]


def _connect_cli(outputs: dict[str, Any], path: Path) -> subprocess.CompletedProcess[str]:
    path.write_text(json.dumps(outputs))
    return subprocess.run(
        [sys.executable, "-m", "gpudask", "connect", "--outputs", str(path)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_connect_cli_reports_the_cluster(local: Rehearsal, dev_outputs: dict[str, Any], tmp_path: Path) -> None:
    done = _connect_cli(_outputs(dev_outputs, schedulerAddress=local.address), tmp_path / "outputs.json")
    assert done.returncode == 0, done.stderr
    assert f"via: {local.address}" in done.stdout
    assert "workers: 1 (1 GPU)" in done.stdout
    # The dashboard is for the operator's namespace only: people port-forward (issue 10, point 10).
    assert "dashboard: kubectl port-forward -n dask svc/rapids-scheduler 8787:8787" in done.stdout

    failed = _connect_cli({"schedulerAddress": local.address}, tmp_path / "outputs.json")
    assert failed.returncode == 2
    assert "daskClusterName, daskNamespace" in failed.stderr


# --- prod: a TLS scheduler and worker (the rehearsal's own CA stands in for pulumi-tls') -------
@pytest.fixture(scope="module")
def prod() -> Iterator[Rehearsal]:
    with rehearsal(run_program("prod"), timeout=120) as running:
        assert running.tls_files, "prod's rendered scheduler no longer listens with TLS"
        yield running


def tls_outputs(running: Rehearsal, **changes: Any) -> dict[str, Any]:
    """prod's outputs, with the rehearsal's certificates where pulumi-tls' would be."""
    files = running.tls_files or {}
    certs = {
        "tlsCaCertPem": files["ca"].read_text(),
        "tlsClientCertPem": files["client"].read_text(),
        "tlsClientKeyPem": files["client-key"].read_text(),
    }
    return copy.deepcopy(run_program("prod").outputs) | certs | {"schedulerAddress": running.address} | changes


def test_prod_connects_with_tls_and_runs_work(prod: Rehearsal) -> None:
    assert prod.address.startswith("tls://")
    with connect(outputs=tls_outputs(prod), timeout=20) as conn:
        assert conn.via == prod.address
        assert conn.client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
        assert conn.client.scheduler_info()["address"].startswith("tls://")


def test_a_tcp_address_to_a_tls_scheduler_fails_in_time_and_says_why(prod: Rehearsal) -> None:
    plain = prod.address.replace("tls://", "tcp://", 1)
    outputs = {k: v for k, v in tls_outputs(prod).items() if not k.startswith("tls")} | {"schedulerAddress": plain}
    began = time.monotonic()
    with pytest.raises(ConnectError) as err:
        connect(outputs=outputs, timeout=3, port_forward=False)
    took = time.monotonic() - began
    assert took < 15, f"a plain client to a TLS scheduler took {took:.1f} s to give up"
    assert f"no Dask scheduler answered at {plain} (direct) within 3 s" in str(err.value)
    assert "a tls:// scheduler refuses plain tcp://" in str(err.value)


def test_the_operators_from_name_address_never_reaches_a_tls_scheduler(prod: Rehearsal) -> None:
    """Why connect does not use `KubeCluster.from_name` for TLS: its address is always `tcp://`
    (networking.py builds `f"tcp://{host}:{port}"`), and `wait_for_scheduler_comm` retries a
    refused plain handshake forever. Bounded here at 5 s; it would never return."""
    from dask_kubernetes.operator.networking import wait_for_scheduler_comm

    plain = prod.address.replace("tls://", "tcp://", 1)

    async def bounded() -> bool:
        try:
            await asyncio.wait_for(wait_for_scheduler_comm(plain), 5)
        except TimeoutError:
            return False
        return True

    # A loop of its own, never set as the thread's: asyncio.run() would leave the main thread with the
    # event loop set to None, and every later Pulumi mocks run in this process fails ("no current event loop").
    loop = asyncio.new_event_loop()
    try:
        reached = loop.run_until_complete(bounded())
    finally:
        loop.close()
    assert reached is False, "from_name's tcp:// handshake reached a TLS scheduler"
