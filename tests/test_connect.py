"""`gpudask.client.connect`: stack outputs -> a real Client on a local scheduler; the port-forward path mocked."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

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
    local: Rehearsal, dev_outputs: dict[str, Any], tmp_path: Path, mocker: MockerFixture
) -> None:
    kube = mocker.patch.object(connect_module, "KubeCluster")
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(_outputs(dev_outputs, schedulerAddress=local.address)))
    with connect(outputs=path) as conn:
        assert conn.via == local.address
        assert conn.client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
        assert len(conn.client.scheduler_info()["workers"]) == 1
    kube.from_name.assert_not_called()


def test_internal_load_balancer_ip_is_tried_after_the_in_cluster_name(
    local: Rehearsal, dev_outputs: dict[str, Any], mocker: MockerFixture
) -> None:
    kube = mocker.patch.object(connect_module, "KubeCluster")
    port = local.address.rsplit(":", 1)[1]
    outputs = _outputs(
        dev_outputs,
        schedulerAddress=f"tcp://rapids-scheduler.dask.svc.cluster.local:{port}",
        internalLoadBalancerIp="127.0.0.1",
    )
    with connect(outputs=outputs) as conn:
        assert conn.via == local.address
    kube.from_name.assert_not_called()


def test_unreachable_address_goes_through_kubecluster_from_name(
    local: Rehearsal, dev_outputs: dict[str, Any], mocker: MockerFixture
) -> None:
    kube = mocker.patch.object(connect_module, "KubeCluster")
    # What the port-forward gives: a local address for the remote scheduler.
    forwarded = kube.from_name.return_value
    forwarded.scheduler_address, forwarded.security, forwarded.loop = local.address, None, None
    outputs = _outputs(dev_outputs, schedulerAddress=IN_CLUSTER, daskClusterName="rapids", daskNamespace="dask")
    with connect(outputs=outputs) as conn:
        assert conn.via == "port-forward"
        assert conn.client.submit(sum, [1, 2]).result(timeout=30) == 3
    kube.from_name.assert_called_once_with("rapids", namespace="dask")
    kube.from_name.return_value.close.assert_called_once()


def test_scale_maps_gpu_to_the_default_group_and_guards_the_autoscaler(
    local: Rehearsal, dev_outputs: dict[str, Any], mocker: MockerFixture
) -> None:
    kube = mocker.patch.object(connect_module, "KubeCluster")
    groups = {
        "default": {"name": "rapids-default", "gpusPerWorker": 1, "replicas": 1, "autoscaled": True},
        "cpu": {"name": "rapids-cpu", "gpusPerWorker": 0, "replicas": 1, "autoscaled": False},
    }
    with connect(outputs=_outputs(dev_outputs, schedulerAddress=local.address, daskWorkerGroups=groups)) as conn:
        with pytest.raises(
            ConnectError, match=re.escape("autoscaled: KubeCluster.scale() would delete its DaskAutoscaler")
        ):
            conn.scale(3, worker_group="gpu")
        kube.from_name.return_value.scale.assert_not_called()
        conn.scale(3, worker_group="gpu", force=True)
        conn.scale(2, worker_group="cpu")
        with pytest.raises(
            ConnectError, match="worker_group 'highmem' is not in this stack; its groups: gpu \\(default\\), cpu"
        ):
            conn.scale(1, worker_group="highmem")
    kube.from_name.assert_called_once_with("rapids", namespace="dask")
    calls = kube.from_name.return_value.scale.call_args_list
    assert [(c.args, c.kwargs) for c in calls] == [((3,), {"worker_group": "default"}), ((2,), {"worker_group": "cpu"})]


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
    assert IN_CLUSTER in message and "KubeCluster.from_name('rapids', namespace='dask') failed" in message
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
