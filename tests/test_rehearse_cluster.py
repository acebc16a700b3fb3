"""`python -m gpudask rehearse <stack> --cluster`: what a user runs before `pulumi up` (issue 12, point 8).

Marked `control_plane` and `real_pulumi`: the pinned control plane, kwok, the real Pulumi engine and
Kubernetes provider (`up` of the stack's Kubernetes half, issue 20), the chart's operator and real Dask
processes. The command exits 0 only when everything that should run runs; the broken variant (the
scheduler's toleration dropped, so it fits no node) must make it exit 1 and say why.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gpudask.local import engine
from gpudask.upstream import programs as upstream

pytestmark = [pytest.mark.control_plane, pytest.mark.real_pulumi]
ROOT = Path(__file__).resolve().parent.parent


# What each stack's run must show: its pools (an existingCluster stack's by their GKE names, from
# its settings) and where its scheduler runs (dev: its small GPU pool; existing: on a GPU too, on
# the host's small-GPU pool named by existingCluster.schedulerPool).
EXPECTED = {
    "dev": ("pool scheduler", "pool a100", "pool system", "on gke-gpu-dask-dev-scheduler-00 (scheduler): Ready"),
    "existing": ("pool default-pool", "pool a100", "pool l4-pool", "on gke-team-cluster-l4-pool-00 (scheduler): Ready"),
}


@pytest.mark.parametrize("stack", sorted(EXPECTED))
def test_rehearse_cluster_reports_what_ran_and_exits_0(stack: str) -> None:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "gpudask", "rehearse", stack, "--cluster"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    print(out[-4000:], done.stderr[-2000:], f"\nrehearse {stack} --cluster: {time.monotonic() - began:.1f} s", sep="\n")
    assert done.returncode == 0, done.stderr[-3000:]
    pin = upstream.load_programs()["kubernetes"].version
    assert f"kube-apiserver /version: {pin} " in out  # the API server's own answer, not our pin file
    for expected in EXPECTED[stack]:
        assert expected in out
    # Applied by the real engine, not by our own code.
    assert (
        f"pulumi up (the real engine: CLI {engine.cli_version()}, pulumi-resource-kubernetes {engine.provider_version()}): ok"
        in out
    )
    assert "create dask-operator-release (kubernetes:helm.sh/v3:Release)" in out
    assert "create dask-cluster (kubernetes:kubernetes.dask.org/v1:DaskCluster)" in out
    assert "operator: kopf run -m dask_kubernetes.operator.controller as ServiceAccount" in out
    # The operator posts no Events (kopf's posting.loggers is off, GOTCHAS.md): its log lines are
    # shown as log lines, never counted as events.
    assert "operator events: none posted (kopf " in out and "handler log lines instead" in out
    assert "Handler 'daskcluster_create' succeeded." in out
    assert "rapids-scheduler-" in out and "(scheduler): Ready" in out
    assert "everything that should run runs" in done.stderr


def test_rehearse_cluster_exits_1_when_the_scheduler_fits_no_node(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Broken variant `drop_scheduler_tolerations` (tests/engine_variants.py), applied by the engine."""
    from gpudask import __main__ as cli

    real_start = engine.Engine.start

    def start(self: engine.Engine, op: str, **kwargs: Any) -> Any:
        kwargs.setdefault("variants", ["tests.engine_variants:drop_scheduler_tolerations"])
        return real_start(self, op, **kwargs)

    monkeypatch.setattr(engine.Engine, "start", start)
    code = cli.main(["rehearse", "dev", "--cluster", "--timeout", "30"])
    captured = capsys.readouterr()
    print(captured.out[-3000:], captured.err[-3000:], sep="\n")
    assert code == 1
    assert "problem(s)" in captured.err
    assert "rapids-scheduler-" in captured.err and "not running Ready (Pending)" in captured.err


def test_serve_keeps_the_cluster_up_until_ctrl_c_and_says_how_to_reach_it(tmp_path: Path) -> None:
    """`--cluster --serve` (issue 21, point 7): before, `--serve` was ignored with `--cluster` and the
    command applied, checked and stopped. Now the scheduler answers a client while it serves, and
    SIGINT stops everything."""
    import os
    import signal

    from distributed import Client

    out = (tmp_path / "stdout").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpudask", "rehearse", "dev", "--cluster", "--serve"],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline, lines = time.monotonic() + 420, {}
        while not {"kubeconfig", "scheduler"} <= set(lines):
            assert proc.poll() is None, (
                f"exited {proc.returncode} instead of serving:\n{(tmp_path / 'stdout').read_text()[-3000:]}"
            )
            assert time.monotonic() < deadline, "no kubeconfig:/scheduler: lines within 420 s"
            time.sleep(1)
            for line in (tmp_path / "stdout").read_text().splitlines():
                key, _, value = line.partition(": ")
                if key in ("kubeconfig", "scheduler") and value:
                    lines[key] = value.strip()
        assert Path(lines["kubeconfig"]).is_file()
        with Client(lines["scheduler"], timeout=30) as client:
            assert client.submit(sum, [1, 2]).result(timeout=30) == 3
        time.sleep(3)
        assert proc.poll() is None, "stopped while serving"
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        out.close()
    assert "stopping the control plane" in (tmp_path / "stdout").read_text()
