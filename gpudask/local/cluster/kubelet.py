"""A kubelet stand-in for the Dask namespace: real local processes behind pods that the
real scheduler bound to kwok nodes.

kwok plays the kubelet for every other pod (it only writes status). For the Dask pods
(label `dask.org/cluster-name`), kwok is told to disregard their status and this module
does the kubelet's job instead, so that pod status follows real processes:

- a bound pod's container runs here: its `command`/`args` after `$(VAR)` expansion against
  its `env` (the env the operator injected included), through the rehearsal's `localize`
  (loopback host, mapped ports, `dask-cuda-worker` -> `dask worker` without a GPU, printed);
- each `containerPort` maps to a free loopback port, registered as a kwok `PortForward`
  target named after the pod, so `kubectl port-forward` / kr8s' port-forward through the
  API server reach the process (the path the operator takes from outside a cluster);
- a Service DNS name in the env (`<svc>.<ns>.svc.cluster.local:<port>`) is resolved the way
  kube-proxy would route it: to the mapped port of a running pod the Service selects
  (there is no CNI and no cluster DNS here);
- status: `Running` once the process runs, `Ready` when its readinessProbe passes (httpGet /
  tcpSocket against the mapped port), `restartCount` and `lastState` when it exits and is
  restarted (restartPolicy Always), and on deletion SIGTERM, the grace period, SIGKILL, then
  the pod is removed with grace 0, as a kubelet finishes a graceful delete.

Every process is in its own group and gets SIGKILL when the harness dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import itertools
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gpudask.local import procs, rehearse
from gpudask.local.cluster.kube import ApiError, Kube

DASK_POD_LABEL = "dask.org/cluster-name"  # the pods this module backs (kwok disregards their status)
PORT_FORWARD_API = "kwok.x-k8s.io/v1alpha1"
PROBE_PERIOD_CAP_S = 1.0  # probes run at most this far apart (a real kubelet: periodSeconds)
_SERVICE_ADDRESS = re.compile(
    r"(?P<svc>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.svc(\.cluster\.local)?)?:(?P<port>\d+)"
)
_pod_ips = itertools.count(2)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod_ip() -> str:
    n = next(_pod_ips)
    return f"10.244.{(n // 250) % 250}.{n % 250 + 2}"


def http_probe_passes(port: int, path: str, timeout: float) -> bool:
    """An httpGet probe against a loopback port: passes on a 2xx or 3xx reply. The kubelet's
    prober (pkg/probe/http, kubernetes v1.34.4) counts any error of the request as a failure,
    a reply that is not HTTP included (a Dask comm listener on the port, say)."""
    try:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
        try:
            conn.request("GET", path)
            status = conn.getresponse().status
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return False
    return 200 <= status < 400


@dataclass
class Backed:
    """One pod and the process behind its (first) container."""

    name: str
    uid: str
    node: str
    component: str
    group: str
    argv: list[str]
    env: dict[str, str]
    ports: dict[int, int]  # containerPort -> loopback port
    named_ports: dict[str, int]  # port name -> containerPort
    notes: tuple[str, ...]
    pod_ip: str
    container: dict[str, Any]
    labels: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started_at: str = ""
    started_mono: float = 0.0
    restarts: int = 0
    last_exit: dict[str, Any] | None = None
    ready: bool = False
    deleting: bool = False
    reported: dict[str, Any] = field(default_factory=dict)
    next_probe: float = 0.0
    start_at: float = 0.0  # monotonic time the container may start (after the image pull stand-in)
    accepted_at: str = field(default_factory=now)  # the pod's startTime: when this kubelet took it


# --- what the kubelet decides from a pod spec (pure; the fast tests and this stand-in share it) ---
# Read in the kubelet's source, kubernetes v1.34.4 (2026-12-03; GOTCHAS.md "Secret volume files"):
# - pkg/volume/secret/secret.go MakePayload: each file's mode is its item's `mode`, else the
#   volume's `defaultMode` (API default 0644, k8s.io/api core/v1 SecretVolumeSourceDefaultMode);
#   the atomic writer (pkg/volume/util/atomic_writer.go) writes them as the kubelet, root:root.
# - pkg/volume/volume_linux.go changeFilePermission: only with the pod's `fsGroup` are the files
#   chowned to group fsGroup and their mode OR-ed with 0440 (Secret and projected volumes are
#   read-only: roMask). supplementalGroups own no file.
# - pkg/kubelet/kuberuntime/security_context.go: the container's processes get the pod's
#   supplementalGroups and fsGroup as supplementary groups; runAsGroup (else the image's) as primary.
# - pkg/kubelet/kuberuntime/kuberuntime_container.go killContainer: the preStop hook runs within
#   the pod's grace period; what it leaves (at least minimumGracePeriodInSeconds, 2 s) is SIGTERM's.
SECRET_DEFAULT_MODE = 0o644
FS_GROUP_READ_ONLY_MASK = 0o440
MINIMUM_GRACE_S = 2.0
DEFAULT_GRACE_S = 30.0  # k8s.io/api core/v1 DefaultTerminationGracePeriodSeconds


@dataclass(frozen=True)
class VolumeFile:
    """One file the kubelet writes into a container's mount of a Secret or projected volume."""

    path: str
    uid: int
    gid: int
    mode: int


def volume_files(
    spec: Mapping[str, Any], container: Mapping[str, Any], keys: Callable[[str, str], list[str]]
) -> list[VolumeFile]:
    """The Secret / ConfigMap (plain or projected) files `container` sees, with the owner and
    mode the kubelet gives them. `keys(kind, name)` lists the keys of a Secret or ConfigMap."""
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    files = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"]) or {}
        sources: list[tuple[str, Mapping[str, Any]]]
        default: int
        if "secret" in volume or "configMap" in volume:
            kind = "secret" if "secret" in volume else "configMap"
            source = volume[kind]
            sources = [(kind, source)]
            default = int(source.get("defaultMode", SECRET_DEFAULT_MODE))
        elif "projected" in volume:
            sources = [
                (kind, s[kind])
                for s in volume["projected"].get("sources") or []
                for kind in ("secret", "configMap")
                if kind in s
            ]
            default = int(volume["projected"].get("defaultMode", SECRET_DEFAULT_MODE))
        else:
            continue
        for kind, source in sources:
            name = source.get("secretName") if kind == "secret" and "secretName" in source else source.get("name", "")
            items = source.get("items") or [{"key": k, "path": k} for k in keys(kind, str(name))]
            for item in items:
                mode = int(item.get("mode", default))
                gid = 0
                if fs_group is not None:
                    gid, mode = int(fs_group), mode | FS_GROUP_READ_ONLY_MASK
                files.append(VolumeFile(f"{mount['mountPath'].rstrip('/')}/{item['path']}", 0, gid, mode))
    return files


def process_identity(spec: Mapping[str, Any], container: Mapping[str, Any]) -> tuple[int | None, set[int]]:
    """(uid, groups) of the container's processes; uid None: the image decides (not seen here).
    The primary group is runAsGroup when set; an image's own group is not known here."""
    pod = spec.get("securityContext") or {}
    own = container.get("securityContext") or {}
    uid = own.get("runAsUser", pod.get("runAsUser"))
    groups = {int(g) for g in pod.get("supplementalGroups") or []}
    if "fsGroup" in pod:
        groups.add(int(pod["fsGroup"]))
    primary = own.get("runAsGroup", pod.get("runAsGroup"))
    if primary is not None:
        groups.add(int(primary))
    return (None if uid is None else int(uid)), groups


def readable(file: VolumeFile, uid: int, groups: set[int]) -> bool:
    """POSIX read permission for `uid` with `groups` (root reads everything)."""
    if uid == 0:
        return True
    if uid == file.uid:
        return bool(file.mode & 0o400)
    if file.gid in groups:
        return bool(file.mode & 0o040)
    return bool(file.mode & 0o004)


def unreadable_files(
    spec: Mapping[str, Any], container: Mapping[str, Any], keys: Callable[[str, str], list[str]]
) -> list[str]:
    """The mounted Secret/ConfigMap files the container's user cannot read, each said with why."""
    uid, groups = process_identity(spec, container)
    if uid is None:
        return []
    return [
        f"{f.path} ({f.uid}:{f.gid} {f.mode:04o}; uid {uid}, groups {sorted(groups) or 'none'})"
        for f in volume_files(spec, container, keys)
        if not readable(f, uid, groups)
    ]


def grace_s(spec: Mapping[str, Any]) -> float:
    """The pod's termination grace period as the kubelet takes it."""
    return float(spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_S))


def prestop_command(container: Mapping[str, Any]) -> list[str] | None:
    """The exec preStop hook the kubelet runs before SIGTERM (None: straight to SIGTERM)."""
    command = ((container.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command")
    return list(command) if command else None


class KubeletError(Exception):
    """A pod could not be backed; the message names the pod and why."""


class Kubelet:
    """Backs the Dask pods of `namespace` with local processes. Use as a context manager."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        workdir: Path,
        gpu: bool | None = None,
        tick_s: float = 0.3,
        pull_s: Callable[[Mapping[str, Any]], float] | None = None,
    ):
        # The node agent's credentials: here the admin kubeconfig (a kubelet would use its node's).
        self.kube = Kube(kubeconfig)
        self.namespace = namespace
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        if gpu is None:
            gpu, self.gpu_reason = rehearse.gpu_usable()
        else:
            self.gpu_reason = "" if gpu else "no GPU usable here"
        self.gpu = gpu
        self.tick_s = tick_s
        # Seconds a pod waits in ContainerCreating before its process starts: the image pull
        # of a real node (the RAPIDS image takes minutes on a fresh GPU node). None: no wait.
        self.pull_s = pull_s
        self.pods: dict[str, Backed] = {}  # by uid
        self.log: list[str] = []  # what this kubelet did, in order (printed by the harness)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._waiting: dict[str, str] = {}
        self._refused: set[str] = (
            set()
        )  # pods this stand-in cannot run (said once, in errors)  # pod -> why it is not started yet (said once)

    # --- the API --------------------------------------------------------------------------
    def _call(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json", **params: str
    ) -> Any:
        return self.kube.request(method, path, body, content_type=content_type, params=params or None).data

    def _say(self, line: str) -> None:
        self.log.append(f"{time.strftime('%H:%M:%S')} {line}")

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> Kubelet:
        self._thread = threading.Thread(target=self._run, name="gpudask-kubelet", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for backed in list(self.pods.values()):
            self._kill(backed, grace=2.0)
        self.pods.clear()

    def __enter__(self) -> Kubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        # Processes are spawned from this thread: PR_SET_PDEATHSIG fires when it ends, and it
        # ends only with stop() or the harness.
        while not self._stop.is_set():
            try:
                self._sync()
            except Exception as err:  # noqa: BLE001 -- a kubelet keeps going; the error is reported
                self.errors.append(f"{type(err).__name__}: {err}")
                self._say(f"sync failed: {type(err).__name__}: {err}")
            self._stop.wait(self.tick_s)

    # --- one pass ----------------------------------------------------------------------------
    def _sync(self) -> None:
        listing = self._call("GET", f"/api/v1/namespaces/{self.namespace}/pods", labelSelector=DASK_POD_LABEL)
        seen = set()
        for pod in listing["items"]:
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            backed = self.pods.get(uid)
            if pod["metadata"].get("deletionTimestamp"):
                self._finish_delete(pod, backed)
                continue
            if not pod["spec"].get("nodeName"):
                continue  # not bound yet: the real scheduler decides
            if backed is None:
                if uid in self._refused:
                    continue
                try:
                    backed = self._prepare(pod)
                except KubeletError as err:
                    self._refused.add(uid)
                    self.errors.append(str(err))
                    self._say(f"cannot run pod {pod['metadata']['name']}: {err}")
                    continue
                if backed is None:
                    continue
                self.pods[uid] = backed
                if self.pull_s is not None:
                    backed.start_at = time.monotonic() + self.pull_s(pod)
                    if backed.start_at > time.monotonic():
                        self._say(f"pod {backed.name}: image pull stand-in, starts in {self.pull_s(pod):.0f}s")
            if backed.process is None and not backed.deleting and time.monotonic() >= backed.start_at:
                self._spawn(backed)
                self._register_forward(backed)
            self._supervise(backed)
            self._probe(backed)
            self._report(pod, backed)
        for uid in set(self.pods) - seen:  # gone from the API (force-deleted, namespace gone)
            backed = self.pods.pop(uid)
            self._say(f"pod {backed.name} is gone from the API: stopping its process")
            self._kill(backed, grace=2.0)

    def _prepare(self, pod: Mapping[str, Any]) -> Backed | None:
        name = pod["metadata"]["name"]
        labels = pod["metadata"].get("labels") or {}
        container = pod["spec"]["containers"][0]
        try:
            env = rehearse.container_env(container)
            env = self._route_services(env)
        except _NotYet as why:
            if self._waiting.get(name) != str(why):
                self._waiting[name] = str(why)
                self._say(f"pod {name}: waiting ({why})")
            return None
        rendered = rehearse.container_argv(container, env)
        mounts = self._volumes(name, pod["spec"], container)
        env = {k: rehearse.relocate(v, mounts) for k, v in env.items()}
        rendered = [rehearse.relocate(a, mounts) for a in rendered]
        ports = {int(p["containerPort"]): procs.free_port() for p in container.get("ports") or []}
        named = {p["name"]: int(p["containerPort"]) for p in container.get("ports") or [] if p.get("name")}
        component = labels.get("dask.org/component", "")
        gpus = int((container.get("resources") or {}).get("limits", {}).get(rehearse.GPU_RESOURCE, 0))
        comm = named.get("tcp-comm")
        dashboard = named.get("http-dashboard")
        here = rehearse.localize(
            rendered,
            component,
            gpus,
            self.gpu,
            self.gpu_reason,
            port=ports[comm] if comm else None,
            dashboard_port=ports[dashboard] if dashboard else 0,
        )
        backed = Backed(
            name=name,
            uid=pod["metadata"]["uid"],
            node=pod["spec"]["nodeName"],
            component=component,
            group=labels.get("dask.org/workergroup-name", ""),
            argv=here.argv,
            env={**env, **here.env},
            ports=ports,
            named_ports=named,
            notes=here.notes,
            pod_ip=_pod_ip(),
            container=dict(container),
            labels=dict(labels),
        )
        mapped = ", ".join(f"{c}->{LOOPBACK}:{h}" for c, h in ports.items()) or "none"
        self._say(f"pod {name} bound to {backed.node}: runs {' '.join(here.argv)} (ports {mapped})")
        for note in here.notes:
            self._say(f"pod {name}: {note}")
        return backed

    def _volumes(self, pod_name: str, spec: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, str]:
        """mountPath -> a local folder: Secret volumes written from the API's Secret (as the
        kubelet projects them), emptyDirs as empty folders. Other volume types are refused."""
        volumes = {v["name"]: v for v in spec.get("volumes") or []}

        def keys(kind: str, name: str) -> list[str]:
            resource, title = ("secrets", "Secret") if kind == "secret" else ("configmaps", "ConfigMap")
            return sorted((self._get_or_not_yet(resource, name, title).get("data") or {}).keys())

        # This stand-in runs every process as its own user: it refuses, as the container would
        # fail at start, a pod whose user the kubelet would not let read a mounted file.
        denied = unreadable_files(spec, container, keys)
        if denied:
            raise KubeletError(f"pod {pod_name}: its user could not read {'; '.join(denied)}")
        mounts: dict[str, str] = {}
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount["name"], {})
            folder = self.workdir / pod_name / mount["name"]
            folder.mkdir(parents=True, exist_ok=True)
            if "secret" in volume:
                secret = self._get_or_not_yet("secrets", volume["secret"]["secretName"], "Secret")
                for key, value in (secret.get("data") or {}).items():
                    (folder / key).write_bytes(base64.b64decode(value))
                    (folder / key).chmod(0o600)
            elif "emptyDir" not in volume:
                raise KubeletError(f"pod {pod_name}: volume {mount['name']} is neither a Secret nor an emptyDir")
            mounts[mount["mountPath"]] = str(folder)
        return mounts

    def _route_services(self, env: dict[str, str]) -> dict[str, str]:
        """Service DNS names in env values -> the loopback port of a Ready pod behind the
        Service (what cluster DNS + kube-proxy would reach)."""
        out = {}
        for key, value in env.items():
            match = _SERVICE_ADDRESS.search(value)
            if match and match.group("ns") == self.namespace:
                target = self._service_target(match.group("svc"), int(match.group("port")))
                value = value[: match.start()] + f"{LOOPBACK}:{target}" + value[match.end() :]
            out[key] = value
        return out

    def _get_or_not_yet(self, resource: str, name: str, kind: str) -> dict[str, Any]:
        """GET a core object of this namespace; a 404 is `_NotYet` (the pod waits for it)."""
        try:
            return self._call("GET", f"/api/v1/namespaces/{self.namespace}/{resource}/{name}")
        except ApiError as err:
            if err.status != 404:
                raise
            raise _NotYet(f"{kind} {name} not found yet") from err

    def _service_target(self, service: str, port: int) -> int:
        svc = self._get_or_not_yet("services", service, "Service")
        selector = svc["spec"].get("selector") or {}
        spec_port = next((p for p in svc["spec"]["ports"] if int(p["port"]) == port), None)
        if spec_port is None:
            raise KubeletError(f"Service {service} has no port {port}")
        for backed in self.pods.values():
            if backed.deleting or backed.process is None or backed.process.poll() is not None:
                continue
            if all(backed.labels.get(k) == v for k, v in selector.items()):
                target = spec_port.get("targetPort", port)
                container_port = backed.named_ports.get(target) if isinstance(target, str) else int(target)
                if container_port in backed.ports:
                    return backed.ports[container_port]
        raise _NotYet(f"no running pod behind Service {service}:{port}")

    # --- processes -------------------------------------------------------------------------
    def _spawn(self, backed: Backed) -> None:
        log = self.workdir / f"{backed.name}.log"
        backed.process = rehearse.spawn(backed.name, backed.argv, backed.env, log, self.workdir)
        backed.started_at = now()
        backed.started_mono = time.monotonic()
        backed.ready = False
        backed.next_probe = 0.0

    def _supervise(self, backed: Backed) -> None:
        proc = backed.process
        if proc is None or backed.deleting:
            return
        code = proc.poll()
        if code is None:
            return
        backed.last_exit = {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": backed.started_at,
                "finishedAt": now(),
            }
        }
        backed.restarts += 1
        self._say(f"pod {backed.name}: container exited with {code}; restart {backed.restarts} (restartPolicy Always)")
        self._spawn(backed)

    def _probe(self, backed: Backed) -> None:
        probe = backed.container.get("readinessProbe")
        if backed.process is None or backed.process.poll() is not None:
            backed.ready = False
            return
        if probe is None:
            backed.ready = True
            return
        moment = time.monotonic()
        if moment < backed.next_probe or moment - backed.started_mono < float(probe.get("initialDelaySeconds", 0)):
            return
        backed.next_probe = moment + min(float(probe.get("periodSeconds", 10)), PROBE_PERIOD_CAP_S)
        backed.ready = self._probe_once(backed, probe)

    def _probe_once(self, backed: Backed, probe: Mapping[str, Any]) -> bool:
        check = probe.get("httpGet") or probe.get("tcpSocket")
        if not check:
            return True
        port = check["port"]
        container_port = backed.named_ports.get(port) if isinstance(port, str) else int(port)
        local = backed.ports.get(container_port or -1)
        if local is None:
            return False
        if "tcpSocket" in probe:
            return procs.port_open(local)
        return http_probe_passes(local, check.get("path", "/"), float(probe.get("timeoutSeconds", 1)))

    def _kill(self, backed: Backed, grace: float) -> None:
        if backed.process is not None:
            procs.stop(backed.process, grace)

    # --- kwok port-forward ------------------------------------------------------------------
    def _register_forward(self, backed: Backed) -> None:
        if not backed.ports:
            return
        body = {
            "apiVersion": PORT_FORWARD_API,
            "kind": "PortForward",
            "metadata": {"name": backed.name, "namespace": self.namespace},
            "spec": {
                "forwards": [
                    {"ports": [container_port], "target": {"address": LOOPBACK, "port": local}}
                    for container_port, local in backed.ports.items()
                ]
            },
        }
        self._call("POST", f"/apis/{PORT_FORWARD_API}/namespaces/{self.namespace}/portforwards", body)

    def _drop_forward(self, backed: Backed) -> None:
        with contextlib.suppress(ApiError):
            self._call("DELETE", f"/apis/{PORT_FORWARD_API}/namespaces/{self.namespace}/portforwards/{backed.name}")

    # --- status --------------------------------------------------------------------------------
    def _report(self, pod: Mapping[str, Any], backed: Backed) -> None:
        running = backed.process is not None and backed.process.poll() is None
        container = backed.container
        state: dict[str, Any] = (
            {"running": {"startedAt": backed.started_at}}
            if running
            else {"waiting": {"reason": "CrashLoopBackOff" if backed.restarts else "ContainerCreating"}}
        )
        status_line: dict[str, Any] = {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "",
            "ready": backed.ready,
            "started": running,
            "restartCount": backed.restarts,
            "state": state,
        }
        if backed.process is not None:
            status_line["containerID"] = f"gpudask://{backed.process.pid}"
        if backed.last_exit:
            status_line["lastState"] = backed.last_exit
        ready = "True" if backed.ready else "False"
        conditions = [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": ready},
            {"type": "Ready", "status": ready},
        ]
        status = {
            "phase": "Running" if running or backed.restarts else "Pending",
            "podIP": backed.pod_ip,
            "podIPs": [{"ip": backed.pod_ip}],
            "hostIP": pod["status"].get("hostIP") or LOOPBACK,
            "startTime": pod["status"].get("startTime") or backed.accepted_at,
            "conditions": conditions,
            "containerStatuses": [status_line],
        }
        comparable = {**status, "conditions": [(c["type"], c["status"]) for c in conditions]}
        if comparable == backed.reported:
            return
        for condition in conditions:
            condition["lastTransitionTime"] = now()
        self._call(
            "PATCH",
            f"/api/v1/namespaces/{self.namespace}/pods/{backed.name}/status",
            {"status": status},
            content_type="application/strategic-merge-patch+json",
        )
        if backed.reported.get("conditions") != comparable["conditions"] and backed.ready:
            self._say(f"pod {backed.name} Ready")
        backed.reported = comparable

    def _finish_delete(self, pod: Mapping[str, Any], backed: Backed | None) -> None:
        if backed is None:
            # Never ran here (or already stopped): nothing to wait for.
            self._remove(pod)
            return
        if backed.deleting:
            return
        backed.deleting = True
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or grace_s(pod["spec"]))
        threading.Thread(
            target=self._terminate, args=(pod, backed, grace), name=f"terminate-{backed.name}", daemon=True
        ).start()

    def _terminate(self, pod: Mapping[str, Any], backed: Backed, grace: float) -> None:
        """A graceful delete as the kubelet does it: the preStop hook, then SIGTERM, both within
        the grace period, then SIGKILL; then the pod object goes (grace 0)."""
        deadline = time.monotonic() + grace
        hook = prestop_command(backed.container)
        if hook and backed.process is not None and backed.process.poll() is None:
            self._say(f"pod {backed.name} deleted: preStop hook, then SIGTERM (grace {grace:.0f}s)")
            began = time.monotonic()
            try:
                hook_process = rehearse.spawn(
                    f"{backed.name} preStop",
                    list(hook),
                    backed.env,
                    self.workdir / f"{backed.name}.prestop.log",
                    self.workdir,
                )
                with contextlib.suppress(subprocess.TimeoutExpired):
                    hook_process.wait(timeout=max(deadline - time.monotonic(), 0.1))
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(hook_process.pid, signal.SIGKILL)
                hook_process.wait()
                self._say(
                    f"pod {backed.name}: preStop hook exited {hook_process.returncode} after {time.monotonic() - began:.1f}s"
                )
            except rehearse.RehearsalError as err:
                self._say(f"pod {backed.name}: preStop hook cannot run: {err}")
        else:
            self._say(f"pod {backed.name} deleted: SIGTERM, grace {grace:.0f}s, then SIGKILL")
        self._kill(backed, max(deadline - time.monotonic(), MINIMUM_GRACE_S))
        self._drop_forward(backed)
        self.pods.pop(backed.uid, None)
        self._remove(pod)

    def _remove(self, pod: Mapping[str, Any]) -> None:
        with contextlib.suppress(ApiError):  # already gone (or replaced) is fine
            self._call(
                "DELETE",
                f"/api/v1/namespaces/{self.namespace}/pods/{pod['metadata']['name']}",
                {"gracePeriodSeconds": 0, "preconditions": {"uid": pod["metadata"]["uid"]}},
            )

    # --- what the harness prints -------------------------------------------------------------
    def placements(self) -> list[tuple[str, str, str, bool, int]]:
        """(pod, node, component/group, ready, restarts) for every pod backed now."""
        return [
            (b.name, b.node, b.group or b.component, b.ready, b.restarts)
            for b in sorted(self.pods.values(), key=lambda b: b.name)
        ]


class _NotYet(Exception):
    """A pod cannot start yet (the Service it talks to has no running pod); retried next pass."""


LOOPBACK = procs.LOOPBACK
