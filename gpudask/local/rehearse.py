"""Rehearse the stack's Dask cluster on loopback, with real processes.

The DaskCluster (and DaskWorkerGroups) come from the recorded program, the Deployments
from the dask-kubernetes operator's own builder functions, and each container runs here
as Kubernetes would start it: its `command`/`args` after `$(VAR)` expansion against its
`env`, with the env the operator injects. Only what cannot hold on one machine is changed,
and every change is listed: loopback host and free ports, the scheduler address the
operator injects, and `dask-cuda-worker` -> `dask worker` where no GPU is usable.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.catalog import GPU_RESOURCE
from gpudask.local import pki, procs
from gpudask.local.procs import LOOPBACK, free_port, port_open
from gpudask.record.dask_operator import created_objects, dask_clusters
from gpudask.record.recorder import Recording
from gpudask.record.view import kubernetes_manifests


class RehearsalError(Exception):
    """The rehearsal could not start or finish; the message says which process and why."""


# --- Kubernetes semantics ----------------------------------------------------------------------
def expand(text: str, env: Mapping[str, str]) -> str:
    """`$(VAR)` expansion as the kubelet does it for command, args and env values.

    `$(NAME)` becomes NAME's value when NAME is defined, and stays as written when it is
    not; `$$` is an escaped `$`; any other `$` (and an unclosed `$(`) is kept literally.
    """
    out: list[str] = []
    i, end = 0, len(text)
    while i < end:
        if text[i] != "$" or i + 1 == end:
            out.append(text[i])
            i += 1
            continue
        follower = text[i + 1]
        if follower == "$":
            out.append("$")
            i += 2
        elif follower == "(":
            close = text.find(")", i + 2)
            if close == -1:
                out.append("$(")
                i += 2
            else:
                name = text[i + 2 : close]
                out.append(env.get(name, f"$({name})"))
                i = close + 1
        else:
            out.append("$" + follower)
            i += 2
    return "".join(out)


def container_env(container: Mapping[str, Any], replace: Mapping[str, str] | None = None) -> dict[str, str]:
    """A container's environment in order, each value expanded against the ones before it.

    `replace` swaps values that only make sense inside Kubernetes (the scheduler's DNS name).
    """
    replace = replace or {}
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        name = item["name"]
        if name in replace:
            env[name] = replace[name]
        elif "value" in item:
            env[name] = expand(str(item["value"]), env)
        else:
            raise RehearsalError(
                f"env {name} of container {container.get('name')!r} comes from valueFrom "
                f"({item.get('valueFrom')}); a rehearsal has no Kubernetes API to read it from"
            )
    return env


def container_argv(container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """`command` + `args` after expansion (an image's entrypoint runs `args` when `command` is absent)."""
    argv = [expand(str(a), env) for a in (container.get("command") or [])]
    argv += [expand(str(a), env) for a in (container.get("args") or [])]
    if not argv:
        raise RehearsalError(f"container {container.get('name')!r} has neither command nor args")
    return argv


def _set_option(argv: list[str], option: str, value: str) -> list[str]:
    """`argv` with `option value` replacing any existing `option value` / `option=value`."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == option:
            skip = True
            continue
        if arg.startswith(option + "="):
            continue
        out.append(arg)
    return [*out, option, value]


# --- what would run ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalProcess:
    """One container of the cluster, as it runs on this machine."""

    name: str  # the operator's Deployment name (DASK_WORKER_NAME for workers)
    component: str  # "scheduler" or "worker"
    group: str  # dask.org/workergroup-name ("" for the scheduler)
    rendered: list[str]  # command + args as the container would run them
    argv: list[str]  # what runs here
    env: dict[str, str]  # the container's env, expanded, address rewritten
    dask_workers: int  # Dask workers this process starts (dask-cuda: one per GPU)
    notes: tuple[str, ...] = ()


def gpu_usable() -> tuple[bool, str]:
    """Whether `dask-cuda-worker` can run here as rendered, and why not when it cannot."""
    if shutil.which("nvidia-smi") is None:
        return False, "no nvidia-smi on PATH (no NVIDIA driver)"
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError) as err:
        return False, f"nvidia-smi failed: {err}"
    if listing.returncode != 0 or "GPU" not in listing.stdout:
        return False, "nvidia-smi lists no GPU"
    if _which("dask-cuda-worker") is None:
        return False, "dask-cuda is not installed here"
    return True, listing.stdout.strip().splitlines()[0]


def _search_path() -> str:
    # This interpreter's scripts first: the venv's `dask` is the one that matches its libraries.
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def _which(program: str) -> str | None:
    return shutil.which(program, path=_search_path())


def dask_cluster_and_groups(rec: Recording) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    clusters = dask_clusters([m for _, m in kubernetes_manifests(rec)])
    if len(clusters) != 1:
        raise RehearsalError(f"the stack declares {len(clusters)} DaskClusters; a rehearsal needs exactly one")
    return clusters[0]


def cluster_protocol(rec: Recording) -> str:
    """`tls` when the rendered scheduler listens with TLS, else `tcp`."""
    cluster, _ = dask_cluster_and_groups(rec)
    args = cluster["spec"]["scheduler"]["spec"]["containers"][0].get("args") or []
    return "tls" if any(a == "tls" and b == "--protocol" for b, a in itertools.pairwise(args)) else "tcp"


def _secret_mounts(pod: Mapping[str, Any], container: Mapping[str, Any], secrets_dir: Path | None) -> dict[str, str]:
    """Mount path -> local folder for each Secret volume (the rehearsal writes its own files)."""
    secret_volumes = {v["name"]: v["secret"]["secretName"] for v in pod.get("volumes") or [] if "secret" in v}
    mounts = {}
    for mount in container.get("volumeMounts") or []:
        if mount["name"] in secret_volumes:
            if secrets_dir is None:
                raise RehearsalError(
                    f"container {container.get('name')!r} mounts Secret {secret_volumes[mount['name']]!r}, which a rehearsal has no files for"
                )
            mounts[mount["mountPath"]] = str(secrets_dir)
    return mounts


def _scratch_mounts(pod: Mapping[str, Any], container: Mapping[str, Any], scratch_dir: Path) -> dict[str, str]:
    """Mount path -> local folder for each emptyDir volume (worker spill), one folder per volume."""
    empty_dirs = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}
    return {
        m["mountPath"]: str(scratch_dir / m["name"])
        for m in container.get("volumeMounts") or []
        if m["name"] in empty_dirs
    }


def _relocate_args(argv: list[str], mounts: Mapping[str, str]) -> list[str]:
    return [relocate(a, mounts) for a in argv]


def relocate(value: str, mounts: Mapping[str, str]) -> str:
    """A path inside the container (under a volume's mountPath) -> the local folder backing it."""
    for mount_path, local in mounts.items():
        if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
            return local + value[len(mount_path.rstrip("/")) :]
    return value


def _relocate(env: dict[str, str], mounts: Mapping[str, str]) -> dict[str, str]:
    return {name: relocate(value, mounts) for name, value in env.items()}


def local_processes(
    rec: Recording,
    scheduler_port: int,
    dashboard_port: int,
    gpu: bool,
    gpu_reason: str = "",
    secrets_dir: Path | None = None,
    scratch_dir: Path | None = None,
) -> list[LocalProcess]:
    """The scheduler and one process per worker Deployment the operator would create.

    Groups at zero replicas (an autoscaled group at rest) are rehearsed with one worker,
    which is what the operator's builders produce for them here. Secret volumes (the TLS
    certificates) are read from `secrets_dir` instead of their mount path; emptyDir volumes
    (worker spill) are folders under `scratch_dir` (default: the system's temp folder).
    """
    scratch_dir = scratch_dir or Path(tempfile.gettempdir()) / "gpudask-rehearse-scratch"
    cluster, groups = dask_cluster_and_groups(rec)
    local_address = f"{cluster_protocol(rec)}://{LOOPBACK}:{scheduler_port}"
    processes = []
    for obj in created_objects(cluster, groups):
        if obj["kind"] != "Deployment":
            continue
        labels = obj["metadata"]["labels"]
        pod = obj["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = container_env(container, replace={"DASK_SCHEDULER_ADDRESS": local_address})
        rendered = container_argv(container, env)
        scratch = _scratch_mounts(pod, container, scratch_dir / obj["metadata"]["name"])
        env = _relocate(env, {**_secret_mounts(pod, container, secrets_dir), **scratch})
        component = labels["dask.org/component"]
        gpus = int((container.get("resources") or {}).get("limits", {}).get(GPU_RESOURCE, 0))
        here = localize(
            _relocate_args(rendered, scratch),
            component,
            gpus,
            gpu,
            gpu_reason,
            port=scheduler_port if component == "scheduler" else None,
            dashboard_port=dashboard_port if component == "scheduler" else 0,
        )
        processes.append(
            LocalProcess(
                obj["metadata"]["name"],
                component,
                labels.get("dask.org/workergroup-name", "") if component == "worker" else "",
                rendered,
                here.argv,
                {**env, **here.env},
                here.dask_workers,
                here.notes,
            )
        )
    return processes


@dataclass(frozen=True)
class Localized:
    """What runs on this machine for one rendered Dask container."""

    argv: list[str]
    env: dict[str, str]  # added to the container's env (CUDA_VISIBLE_DEVICES)
    dask_workers: int  # Dask workers the process starts (0 for the scheduler)
    notes: tuple[str, ...]  # every change from what the container would run, said


def localize(
    rendered: list[str],
    component: str,
    gpus: int,
    gpu: bool,
    gpu_reason: str = "",
    port: int | None = None,
    dashboard_port: int = 0,
) -> Localized:
    """A rendered scheduler or worker command, changed only where one machine needs it:
    loopback host, the given ports (`dashboard_port` 0: any free one), and
    `dask-cuda-worker` -> `dask worker` with the same options when no GPU is usable.
    Shared by the rehearsal and the control plane's kubelet stand-in."""
    argv = _set_option(rendered, "--host", LOOPBACK)
    if component == "scheduler":
        if port is not None:
            argv = _set_option(argv, "--port", str(port))
        argv = _set_option(argv, "--dashboard-address", f"{LOOPBACK}:{dashboard_port}")
        return Localized(argv, {}, 0, ())
    argv = _set_option(argv, "--dashboard-address", f"{LOOPBACK}:{dashboard_port}")
    if argv[0] != "dask-cuda-worker":
        return Localized(argv, {}, 1, ())
    dask_workers = max(gpus, 1)
    if gpu:
        # dask-cuda starts one process per visible GPU; give it the pod's count.
        return Localized(
            argv, {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in range(dask_workers))}, dask_workers, ()
        )
    note = (
        f"dask-cuda-worker swapped for `dask worker --nworkers {dask_workers}` with the same "
        f"--resources and --nthreads ({gpu_reason})"
    )
    return Localized(["dask", "worker", *argv[1:], "--nworkers", str(dask_workers)], {}, dask_workers, (note,))


def spawn(name: str, argv: list[str], env: Mapping[str, str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start one container's process here: the venv's programs first on PATH, the outer
    `DASK_*` env dropped (the container's own env only), output appended to `log_path`,
    its own process group (a nanny's worker dies with it), killed with its parent (`procs.spawn`)."""
    program = _which(argv[0])
    if program is None:
        raise RehearsalError(f"{name}: `{argv[0]}` (the container's command) is not installed here")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    full_env |= {"PATH": _search_path(), "PYTHONUNBUFFERED": "1", **env}
    return procs.spawn([program, *argv[1:]], log_path, env=full_env, cwd=cwd)


# --- TLS stand-ins ----------------------------------------------------------------------------
TLS_ROLES = ("scheduler", "worker", "client")


def write_tls_files(folder: Path) -> dict[str, Path]:
    """A private CA and scheduler/worker/client certificates, as the stack's Secret holds them
    (`ca.pem`, `<role>.pem`, `<role>-key.pem`); the stack's own come from pulumi-tls. Made by the
    one local CA (`pki.Authority`), whose key is deleted once they are signed: the folder holds
    what the Secret would, nothing more."""
    folder.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="gpudask-rehearsal-ca-"))
    try:
        ca = pki.Authority(workdir, name="gpu-dask rehearsal CA")
        files = {"ca": folder / "ca.pem"}
        shutil.copyfile(ca.cert, files["ca"])
        for role in TLS_ROLES:
            pair = ca.issue(role, f"rehearsal-{role}", hosts=("localhost", LOOPBACK), server=True, client=True)
            files[role], files[f"{role}-key"] = folder / f"{role}.pem", folder / f"{role}-key.pem"
            shutil.move(pair.cert, files[role])
            shutil.move(pair.key, files[f"{role}-key"])  # a rename: keeps the key's 0600
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return files


# --- running it --------------------------------------------------------------------------------
@dataclass
class Rehearsal:
    """The running processes. Use as a context manager: leaving it stops every process group."""

    processes: list[LocalProcess]
    scheduler_port: int
    dashboard_port: int
    gpu: bool = False  # dask-cuda-worker runs as rendered
    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gpudask-rehearse-")))
    tls_files: dict[str, Path] | None = None  # CA and client certificate, when the cluster uses TLS
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _supervisor: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{'tls' if self.tls_files else 'tcp'}://{LOOPBACK}:{self.scheduler_port}"

    def security(self) -> Any:
        """`distributed.Security` for a client of this rehearsal (None without TLS)."""
        if not self.tls_files:
            return None
        from distributed.security import Security

        return Security(
            tls_ca_file=str(self.tls_files["ca"]),
            tls_client_cert=str(self.tls_files["client"]),
            tls_client_key=str(self.tls_files["client-key"]),
            require_encryption=True,
        )

    @property
    def dashboard(self) -> str:
        return f"http://{LOOPBACK}:{self.dashboard_port}/status"

    @property
    def expected_workers(self) -> int:
        return sum(p.dask_workers for p in self.processes)

    def _spawn(self, process: LocalProcess) -> None:
        self.running[process.name] = spawn(
            process.name, process.argv, process.env, self.logs / f"{process.name}.log", self.logs
        )

    def log_tail(self, name: str, lines: int = 25) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _check_alive(self) -> None:
        for name, proc in self.running.items():
            code = proc.poll()
            if code is not None:
                raise RehearsalError(
                    f"{name} exited with code {code} before the cluster was ready:\n{self.log_tail(name)}"
                )

    def start(self, timeout: float) -> None:
        """Start the scheduler, then the workers; return once every worker has registered."""
        from distributed import Client

        deadline = time.monotonic() + timeout
        scheduler = next(p for p in self.processes if p.component == "scheduler")
        self._spawn(scheduler)
        while not port_open(self.scheduler_port):
            self._check_alive()
            if time.monotonic() > deadline:
                raise RehearsalError(
                    f"the scheduler did not listen within {timeout:.0f}s:\n{self.log_tail(scheduler.name)}"
                )
            time.sleep(0.2)
        for process in self.processes:
            if process.component == "worker":
                self._spawn(process)
        with Client(self.address, timeout=max(deadline - time.monotonic(), 1), security=self.security()) as client:
            while True:
                self._check_alive()
                registered = len(client.scheduler_info(n_workers=-1)["workers"])
                if registered >= self.expected_workers:
                    return
                if time.monotonic() > deadline:
                    raise RehearsalError(
                        f"{registered} of {self.expected_workers} workers registered within {timeout:.0f}s"
                    )
                time.sleep(0.3)

    # --- after start: the kubelet's part ---
    def _supervise(self, backoff: float) -> None:
        """Restart a container that exits, as the kubelet does for a Deployment's pods
        (restartPolicy Always). Workers exit when they lose the scheduler, so without this
        a scheduler restart would leave a cluster with no workers."""
        by_name = {p.name: p for p in self.processes}
        while not self._stopping.wait(backoff):
            with self._lock:
                for name, proc in list(self.running.items()):
                    if proc.poll() is not None and not self._stopping.is_set():
                        self.restarts[name] = self.restarts.get(name, 0) + 1
                        self._spawn(by_name[name])

    def supervise(self, backoff: float = 0.5) -> None:
        self._supervisor = threading.Thread(target=self._supervise, args=(backoff,), daemon=True)
        self._supervisor.start()

    # --- fault drills ---
    def kill(self, name: str) -> None:
        """SIGKILL one process group: a pod lost with its node (spot reclaim, node failure).
        Under supervision it comes back, as the Deployment's replacement pod would."""
        with self._lock:
            proc = self.running[name]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def remove(self, name: str) -> None:
        """SIGKILL one process group and keep it down: a pod deleted with no replacement (its
        node gone and no capacity for another). The supervisor no longer restarts it."""
        with self._lock:
            proc = self.running.pop(name)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def restart_scheduler(self, timeout: float = 60.0) -> None:
        """Kill the scheduler; the supervisor starts it again on the same address, as a
        restarted pod behind the same Service. Returns once it listens again."""
        if self._supervisor is None:
            raise RehearsalError("restart_scheduler needs supervise() (the kubelet's restarts)")
        scheduler = next(p for p in self.processes if p.component == "scheduler")
        self.kill(scheduler.name)
        deadline = time.monotonic() + timeout
        while not port_open(self.scheduler_port):
            if time.monotonic() > deadline:
                raise RehearsalError(f"the scheduler did not come back:\n{self.log_tail(scheduler.name)}")
            time.sleep(0.2)

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM every process group, SIGKILL what is left after `grace` seconds, reap all."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
        procs.stop_all(self.running.values(), grace)

    def __enter__(self) -> Rehearsal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.logs, ignore_errors=True)


@contextlib.contextmanager
def rehearsal(rec: Recording, timeout: float = 120.0) -> Iterator[Rehearsal]:
    """A started rehearsal of the recorded stack; everything is stopped when the block ends."""
    gpu, reason = gpu_usable()
    scheduler_port, dashboard_port = free_port(), free_port()
    logs = Path(tempfile.mkdtemp(prefix="gpudask-rehearse-"))
    tls_files = write_tls_files(logs / "tls") if cluster_protocol(rec) == "tls" else None
    try:
        processes = local_processes(
            rec,
            scheduler_port,
            dashboard_port,
            gpu,
            reason,
            secrets_dir=logs / "tls" if tls_files else None,
            scratch_dir=logs / "scratch",
        )
    except BaseException:
        shutil.rmtree(logs, ignore_errors=True)
        raise
    with Rehearsal(processes, scheduler_port, dashboard_port, gpu, logs, tls_files) as running:
        running.start(timeout)
        running.supervise()
        yield running
