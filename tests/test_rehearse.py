"""The rehearsal: Kubernetes' `$(VAR)` rules, what would run, and real Dask processes on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from dask.base import annotate
from distributed import Client, get_worker

from components import dask_spec
from gpudask.local.rehearse import (
    LocalProcess,
    Rehearsal,
    RehearsalError,
    container_argv,
    container_env,
    expand,
    free_port,
    local_processes,
    rehearsal,
)
from gpudask.record.recorder import PROJECT_DIR, Recording, load_config, run_program

# A deadline guards a hang, it is not a speed test (a loaded 2-core machine is slow, not stuck).
HANG_S = 300

ENV = {"NAME": "w-0", "EMPTY": "", "PORT": "8786"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(NAME)", "w-0"),
        ("--name=$(NAME)", "--name=w-0"),
        ("$(NAME)$(PORT)", "w-08786"),
        ("$(EMPTY)x", "x"),
        ("$(UNKNOWN)", "$(UNKNOWN)"),  # unknown references stay as written
        ("$$(NAME)", "$(NAME)"),  # $$ escapes the reference
        ("$$", "$"),
        ("$$$(NAME)", "$w-0"),
        ("a$b", "a$b"),  # a lone $ is kept
        ("cost$", "cost$"),  # so is a trailing one
        ("$(NAME", "$(NAME"),  # unclosed reference is literal
        ("$()", "$()"),
        ("${NAME}", "${NAME}"),  # shell syntax means nothing to the kubelet
        ("", ""),
    ],
)
def test_expand_follows_kubernetes_semantics(text: str, expected: str) -> None:
    assert expand(text, ENV) == expected


def test_env_values_expand_against_earlier_entries_only() -> None:
    container = {
        "name": "worker",
        "env": [
            {"name": "A", "value": "a"},
            {"name": "B", "value": "$(A)-b-$(C)"},  # C is defined later: stays literal
            {"name": "C", "value": "c"},
            {"name": "DASK_SCHEDULER_ADDRESS", "value": "tcp://x.svc.cluster.local:8786"},
        ],
        "args": ["run", "$(B)", "$(C)", "$$(A)"],
    }
    env = container_env(container, replace={"DASK_SCHEDULER_ADDRESS": "tcp://127.0.0.1:1"})
    assert env == {"A": "a", "B": "a-b-$(C)", "C": "c", "DASK_SCHEDULER_ADDRESS": "tcp://127.0.0.1:1"}
    assert container_argv(container, env) == ["run", "a-b-$(C)", "c", "$(A)"]


def test_env_from_the_api_is_refused_with_the_variable_named() -> None:
    container = {"name": "worker", "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}
    with pytest.raises(RehearsalError, match="env TOKEN of container 'worker' comes from valueFrom"):
        container_env(container)


def _dev_dask() -> dict[str, Any]:
    return json.loads(load_config("dev")["gpu-dask:dask"])


def _dev_with_cpu_group(workers: int = 1) -> Recording:
    dask = _dev_dask() | {
        "worker": {"replicas": workers},
        "workerGroups": {"cpu": {"replicas": 1, "gpusPerWorker": 0, "cpu": 1, "memoryGb": 2}},
    }
    dask.pop("autoscale", None)  # a fixed worker count (an autoscaled group starts at its minimum)
    return run_program("dev", overrides={"gpu-dask:dask": dask})


def test_local_processes_run_what_the_operator_renders() -> None:
    rec = run_program("dev")
    processes = {p.name: p for p in local_processes(rec, 5000, 5001, gpu=False, gpu_reason="no GPU here")}
    assert set(processes) == {"rapids-scheduler", "rapids-default-worker-0000000000"}
    scheduler, worker = processes["rapids-scheduler"], processes["rapids-default-worker-0000000000"]
    preload = ["--preload", dask_spec.SCHEDULER_PRELOAD]  # run as rendered: the scheduler's preload text
    assert scheduler.rendered == ["dask", "scheduler", "--host", "0.0.0.0", *preload]
    assert scheduler.argv[:2] == ["dask", "scheduler"]
    assert scheduler.argv[2:] == [
        *preload,
        "--host",
        "127.0.0.1",
        "--port",
        "5000",
        "--dashboard-address",
        "127.0.0.1:5001",
    ]
    # Rendered: as the kubelet would run it, the worker name already expanded.
    assert worker.rendered[:3] == ["dask-cuda-worker", "--name", "rapids-default-worker-0000000000"]
    assert worker.env["DASK_WORKER_NAME"] == worker.name
    assert worker.env["DASK_SCHEDULER_ADDRESS"] == "tcp://127.0.0.1:5000"
    # No GPU: swapped, keeping --resources and --nthreads, and said so.
    assert worker.argv[:2] == ["dask", "worker"]
    for option in ("--resources", "--nthreads", "--name"):
        i, j = worker.rendered.index(option), worker.argv.index(option)
        assert worker.argv[j + 1] == worker.rendered[i + 1]
    assert worker.argv[-2:] == ["--nworkers", "1"]
    assert any("dask-cuda-worker swapped" in note and "no GPU here" in note for note in worker.notes)


def test_with_a_gpu_dask_cuda_runs_as_rendered_on_the_pods_gpus() -> None:
    pools = {"a100": {"machineType": "a2-highgpu-2g", "maxNodes": 2}}
    dask = _dev_dask() | {"worker": {"gpusPerWorker": 1, "replicas": 1}}
    dask.pop("autoscale", None)
    rec = run_program("dev", overrides={"gpu-dask:gpuNodePools": pools, "gpu-dask:dask": dask})
    worker = next(p for p in local_processes(rec, 5000, 5001, gpu=True) if p.component == "worker")
    assert worker.argv[0] == "dask-cuda-worker"
    assert worker.notes == ()
    assert worker.env["CUDA_VISIBLE_DEVICES"] == "0"
    assert worker.dask_workers == 1  # one GPU per worker pod (settings refuse more), GPU=1
    assert "GPU=1" in worker.argv


def test_extra_worker_groups_are_rehearsed() -> None:
    processes = local_processes(_dev_with_cpu_group(), 5000, 5001, gpu=False)
    groups = {p.group for p in processes if p.component == "worker"}
    assert groups == {"rapids-default", "rapids-cpu"}
    cpu = next(p for p in processes if p.group == "rapids-cpu")
    assert cpu.argv[:2] == ["dask", "worker"] and cpu.notes == ()
    # CPU workers offer `CPU` (opt-in work), never `GPU` (issue 21, point 2).
    resources = cpu.argv[cpu.argv.index("--resources") + 1]
    assert resources == "CPU=1", cpu.argv


# --- real processes ----------------------------------------------------------------------------
def _processes_of(address: str) -> list[psutil.Process]:
    """Live processes that belong to a rehearsal at `address` (by command line or env)."""
    port = address.rsplit(":", 1)[1]
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            cmdline = proc.cmdline()
            if ("--port" in cmdline and port in cmdline) or proc.environ().get("DASK_SCHEDULER_ADDRESS") == address:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return [p for p in found if p.pid != os.getpid()]


def _port_free(address: str) -> bool:
    """Nothing listens there: a new server could bind it (as servers do, with SO_REUSEADDR,
    since connections the rehearsal closed may sit in TIME_WAIT)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", int(address.rsplit(":", 1)[1])))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def mixed_cluster() -> Iterator[Any]:
    """dev plus a CPU worker group, started for real; stopped after the module."""
    with rehearsal(_dev_with_cpu_group(), timeout=90) as running:
        yield running


@pytest.mark.process
def test_smoke_annotated_tasks_run_only_on_gpu_resourced_workers(mixed_cluster: Rehearsal) -> None:
    with Client(mixed_cluster.address, timeout=30) as client:
        from gpudask.local import smoke  # dask.dataframe: imported only where a cluster runs

        result = smoke.run(client)
    assert result["workers"] == 2 and result["gpu_workers"] == 1  # the check has a worker to avoid
    assert result["agree"] and result["annotated_tasks"] > 0
    assert result["annotated_tasks_off_gpu_workers"] == []
    assert result["ok"] is True
    assert result["mean_trip_distance"] == pytest.approx(3.2, rel=0.01)  # gamma(2, 1.6): mean 3.2


@pytest.mark.process
def test_rehearsed_workers_carry_the_rendered_names_and_resources(mixed_cluster: Rehearsal) -> None:
    with Client(mixed_cluster.address, timeout=30) as client:
        workers = {w["name"]: w for w in client.scheduler_info()["workers"].values()}
        assert set(workers) == {p.name for p in mixed_cluster.processes if p.component == "worker"}
        gpu_worker = workers["rapids-default-worker-0000000000"]
        assert gpu_worker["resources"] == {"GPU": 1.0} and gpu_worker["nthreads"] == 1
        assert workers["rapids-cpu-worker-0000000000"]["resources"] == {"CPU": 1.0}  # opt-in (issue 21)
        with annotate(resources={"GPU": 1}):
            ran_on = client.submit(lambda: get_worker().name, pure=False).result(timeout=30)
        assert ran_on == "rapids-default-worker-0000000000"
        # With a CPU group the real `dask scheduler --preload` gives unannotated tasks GPU=1.
        plain = [f.result(timeout=30) for f in client.map(lambda i: get_worker().name, range(8), pure=False)]
        assert set(plain) == {"rapids-default-worker-0000000000"}, plain


@pytest.mark.process
def test_a_worker_that_cannot_start_fails_the_rehearsal_with_its_output() -> None:
    port, dashboard = free_port(), free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = LocalProcess(
        "s",
        "scheduler",
        "",
        [],
        [
            "dask",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            f"127.0.0.1:{dashboard}",
        ],
        {},
        0,
    )
    broken = LocalProcess(
        "w", "worker", "g", [], ["dask", "worker", "--no-such-option"], {"DASK_SCHEDULER_ADDRESS": address}, 1
    )
    started = time.monotonic()
    with (
        pytest.raises(RehearsalError, match=r"(?s)w exited with code \d+ before the cluster was ready.*no-such-option"),
        Rehearsal([scheduler, broken], port, dashboard) as running,
    ):
        running.start(timeout=HANG_S)
    # Failed when the worker exited, not at the deadline (which only guards a hang).
    assert time.monotonic() - started < HANG_S
    assert _processes_of(address) == []
    assert _port_free(address)


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gpudask", *args],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.process
def test_rehearse_dev_end_to_end_leaves_nothing_behind() -> None:
    proc = _cli("rehearse", "dev", "--timeout", "90")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("scheduler: tcp://127.0.0.1:")
    assert lines[1].startswith("dashboard: http://127.0.0.1:")
    result = json.loads(lines[-1])
    assert result["stack"] == "dev" and result["ok"] is True and result["workers"] == 1
    assert "dask-cuda-worker swapped" in out or result["gpu_library"] != "pandas"
    address = lines[0].split(": ", 1)[1]
    assert _processes_of(address) == []
    assert _port_free(address)


@pytest.mark.process
def test_serve_keeps_the_cluster_for_other_clients_until_sigint() -> None:
    proc = _cli("rehearse", "dev", "--serve", "--timeout", "90")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("scheduler: tcp://127.0.0.1:"), first + (proc.stderr.read() if proc.stderr else "")
        address = first.split(": ", 1)[1].strip()
        for line in proc.stdout:  # wait for the smoke result: the cluster is then serving
            if line.startswith("{"):
                assert json.loads(line)["ok"] is True
                break
        with Client(address, timeout=30) as client:
            workers = list(client.scheduler_info()["workers"].values())
            assert len(workers) == 1  # dev: workers: 1
            assert workers[0]["resources"] == {"GPU": 1.0}
            with annotate(resources={"GPU": 1}):
                assert client.submit(lambda: get_worker().name, pure=False).result(timeout=30) == workers[0]["name"]
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children  # scheduler, nanny, worker
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert _processes_of(address) == []
    assert _port_free(address)


@pytest.mark.process
def test_a_spawned_container_dies_with_the_process_that_started_it(tmp_path) -> None:
    # A harness killed hard (SIGKILL: no handler, no cleanup) must leave no process behind:
    # rehearse.spawn sets PR_SET_PDEATHSIG. The harness here is a child Python that spawns a
    # long sleep the way a container is spawned, prints its pid, then waits to be killed.
    harness = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, pathlib; from gpudask.local.rehearse import spawn; "
            f"p = spawn('sleeper', ['sleep', '300'], {{}}, pathlib.Path({str(tmp_path / 'log')!r}), pathlib.Path({str(tmp_path)!r})); "
            "print(p.pid, flush=True); time.sleep(300)",
        ],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert harness.stdout is not None
    child = psutil.Process(int(harness.stdout.readline()))
    assert child.is_running()
    harness.kill()
    harness.wait()
    try:
        child.wait(timeout=HANG_S)  # the kernel's SIGKILL (PR_SET_PDEATHSIG): at once unless it hangs
    except psutil.TimeoutExpired:
        child.kill()
        pytest.fail("the spawned process outlived the harness that started it")
