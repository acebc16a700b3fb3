"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager, kube-scheduler.

    with ControlPlane() as cp:
        cp.server            # https://127.0.0.1:<port>
        cp.kubeconfig        # admin (system:masters) kubeconfig
        cp.kubeconfig_for("dask-kubernetes-operator", "dask-operator")   # token of a ServiceAccount

The binaries are the pinned upstream builds (`gpudask.upstream.programs`). Everything is per run: a
temp folder with fresh certificates, etcd's data and the logs; free loopback ports; TLS
everywhere (etcd requires client certificates). The API server runs RBAC (with Node) and
the default admission plugins, PodSecurity included, plus ExtendedResourceToleration and
NodeRestriction as GKE does; the controller-manager signs ServiceAccount tokens, runs the
garbage collector and every default controller with per-controller credentials.

Teardown is complete on every way out: leaving the context (exceptions and Ctrl-C included)
stops the scheduler, controller-manager, API server, then etcd, and removes the folder; while
it runs, SIGTERM unwinds like Ctrl-C; if our process is killed outright, the kernel kills the
children (PR_SET_PDEATHSIG) and the next run removes the orphaned folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from gpudask.local import pki, procs
from gpudask.local.cluster import kube as kube_client
from gpudask.upstream import programs as upstream

SERVICE_CIDR = "10.0.0.0/24"
CLUSTER_DNS_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# On top of the API server's default set (which already has PodSecurity, ServiceAccount,
# LimitRanger, ResourceQuota, Priority, the webhooks, ...): what GKE also enables.
EXTRA_ADMISSION_PLUGINS = ("NodeRestriction", "ExtendedResourceToleration")
_RUN_PREFIX = "gpudask-cp-"


class ControlPlaneError(RuntimeError):
    """A component did not start or become ready; the message carries the tail of its log."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphaned_runs(tmp: Path | None = None) -> list[Path]:
    """Remove run folders whose owner died without cleaning up (its children died with it)."""
    removed = []
    for folder in Path(tmp or tempfile.gettempdir()).glob(f"{_RUN_PREFIX}*"):
        try:
            owner = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if not _alive(owner):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _kubeconfig(path: Path, server: str, ca: Path, user: dict[str, str], name: str) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": "local", "user": name}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler, ready on loopback."""

    def __init__(self, *, timeout: float = 90.0, log: Callable[[str], None] | None = None):
        self.timeout = timeout
        self._log = log or (lambda _line: None)
        self.dir = Path(tempfile.mkdtemp(prefix=_RUN_PREFIX))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.timings: dict[str, float] = {}
        self.server = ""
        self.kubeconfig = self.dir / "admin.kubeconfig"
        self.ca = self.dir / "pki" / "ca.crt"
        self._previous_sigterm: Any = None
        self._stopped = False
        self._lock = threading.Lock()

    # --- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> ControlPlane:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        reap_orphaned_runs()
        (self.dir / "owner.pid").write_text(str(os.getpid()))
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        started = time.monotonic()
        binaries = {
            name: upstream.binary(name)
            for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
        }
        self.timings["binaries_s"] = time.monotonic() - started
        begin = time.monotonic()
        self._certificates()
        self.timings["certificates_s"] = time.monotonic() - begin
        for name in ("etcd-client", "etcd-peer", "apiserver", "controller-manager", "scheduler"):
            self.ports[name] = procs.free_port()
        self.server = f"https://{procs.LOOPBACK}:{self.ports['apiserver']}"
        self._write_kubeconfigs()
        (self.dir / "logs").mkdir()

        self._start("etcd", [str(binaries["etcd"]), *self._etcd_args()])
        self._wait("etcd", lambda: procs.port_open(self.ports["etcd-client"]))
        self._start("kube-apiserver", [str(binaries["kube-apiserver"]), *self._apiserver_args()])
        self._wait("kube-apiserver", self._apiserver_ready)
        self.timings["apiserver_ready_s"] = time.monotonic() - begin
        self._start(
            "kube-controller-manager", [str(binaries["kube-controller-manager"]), *self._controller_manager_args()]
        )
        self._start("kube-scheduler", [str(binaries["kube-scheduler"]), *self._scheduler_args()])
        self._wait("kube-scheduler", lambda: self._healthz(self.ports["scheduler"]))
        self._wait("kube-controller-manager", lambda: self._healthz(self.ports["controller-manager"]))
        # The controllers are working once the ServiceAccount controller has made `default/default`.
        self._wait("kube-controller-manager", self._default_service_account)
        self.timings["ready_s"] = time.monotonic() - begin
        self._log(f"control plane ready in {self.timings['ready_s']:.1f} s at {self.server}")
        return self

    def stop(self) -> None:
        """Stop every component (newest first) and delete the run folder. Safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for name in reversed(list(self.processes)):
            procs.stop(self.processes[name])
        if self._previous_sigterm is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    def _start(self, name: str, argv: list[str]) -> None:
        self._log(f"starting {name}")
        self.processes[name] = procs.spawn(argv, self.dir / "logs" / f"{name}.log", cwd=self.dir)

    def _wait(self, name: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for proc_name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise ControlPlaneError(
                        f"{proc_name} exited with code {proc.returncode} while waiting for {name}:\n"
                        f"{procs.log_tail(self.log_path(proc_name))}"
                    )
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.1)
        raise ControlPlaneError(f"{name} not ready after {self.timeout:.0f} s:\n{procs.log_tail(self.log_path(name))}")

    def log_path(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    # --- certificates and kubeconfigs -------------------------------------------------------------
    def _certificates(self) -> None:
        folder = self.dir / "pki"
        ca = self._authority = pki.Authority(folder)
        loopback = (procs.LOOPBACK, "localhost")
        self.certs = {
            "etcd": ca.issue("etcd", "etcd", hosts=loopback, server=True, client=True),
            "apiserver-etcd": ca.issue("apiserver-etcd-client", "kube-apiserver-etcd-client", client=True),
            "apiserver": ca.issue(
                "apiserver", "kube-apiserver", hosts=(*loopback, "10.0.0.1", *CLUSTER_DNS_NAMES), server=True
            ),
            "apiserver-kubelet": ca.issue(
                "apiserver-kubelet-client",
                "kube-apiserver-kubelet-client",
                groups=("kubeadm:cluster-admins",),
                client=True,
            ),
            "admin": ca.issue("admin", "gpu-dask-admin", groups=("system:masters",), client=True),
            "controller-manager": ca.issue("controller-manager", "system:kube-controller-manager", client=True),
            "scheduler": ca.issue("scheduler", "system:kube-scheduler", client=True),
            "controller-manager-serving": ca.issue(
                "controller-manager-serving", "kube-controller-manager", hosts=loopback, server=True
            ),
            "scheduler-serving": ca.issue("scheduler-serving", "kube-scheduler", hosts=loopback, server=True),
        }
        self.sa_key = pki.signing_key(folder)
        self.ca_key = ca.key

    def _write_kubeconfigs(self) -> None:
        for name in ("admin", "controller-manager", "scheduler"):
            pair = self.certs[name]
            _kubeconfig(
                self.dir / f"{name}.kubeconfig",
                self.server,
                self.ca,
                {"client-certificate": str(pair.cert), "client-key": str(pair.key)},
                name,
            )

    def client_kubeconfig(self, name: str, groups: tuple[str, ...] = ("system:masters",)) -> Path:
        """A certificate kubeconfig for another client of ours (kwok, helm): user `name` in `groups`."""
        pair = self._authority.issue(f"client-{name}", name, groups=groups, client=True)
        return _kubeconfig(
            self.dir / f"{name}.kubeconfig",
            self.server,
            self.ca,
            {"client-certificate": str(pair.cert), "client-key": str(pair.key)},
            name,
        )

    def issue_serving(self, name: str, common_name: str) -> pki.Pair:
        """A loopback serving certificate from this run's CA (kwok's kubelet-like server)."""
        return self._authority.issue(name, common_name, hosts=(procs.LOOPBACK, "localhost"), server=True)

    def add_process(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Run another program for this control plane's lifetime (kwok, the operator): stopped first at teardown."""
        self._log(f"starting {name}")
        proc = procs.spawn(argv, self.log_path(name), env=env, cwd=self.dir)
        self.processes[name] = proc
        return proc

    def kubeconfig_for(self, service_account: str, namespace: str, *, duration_s: int = 3600) -> Path:
        """A token kubeconfig for a ServiceAccount (TokenRequest API): its RBAC is what the holder gets."""
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"audiences": [SERVICE_ACCOUNT_ISSUER], "expirationSeconds": duration_s},
        }
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
        token = self.kube().request("POST", path, request, what=f"ServiceAccount/{namespace}/{service_account}")
        return _kubeconfig(
            self.dir / f"sa-{namespace}-{service_account}.kubeconfig",
            self.server,
            self.ca,
            {"token": token.data["status"]["token"]},
            f"system:serviceaccount:{namespace}:{service_account}",
        )

    # --- component flags ------------------------------------------------------------------------
    def _etcd_args(self) -> list[str]:
        c = self.certs["etcd"]
        client_url = f"https://{procs.LOOPBACK}:{self.ports['etcd-client']}"
        peer_url = f"http://{procs.LOOPBACK}:{self.ports['etcd-peer']}"
        return [
            "--name=local",
            f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=local={peer_url}",
            f"--cert-file={c.cert}",
            f"--key-file={c.key}",
            f"--trusted-ca-file={self.ca}",
            "--client-cert-auth=true",
            "--unsafe-no-fsync=true",  # throwaway data: no fsync keeps a busy 2-core machine responsive
            "--log-level=warn",
        ]

    def _apiserver_args(self) -> list[str]:
        c = self.certs
        return [
            f"--etcd-servers=https://{procs.LOOPBACK}:{self.ports['etcd-client']}",
            f"--etcd-cafile={self.ca}",
            f"--etcd-certfile={c['apiserver-etcd'].cert}",
            f"--etcd-keyfile={c['apiserver-etcd'].key}",
            f"--bind-address={procs.LOOPBACK}",
            f"--advertise-address={procs.LOOPBACK}",
            f"--secure-port={self.ports['apiserver']}",
            f"--tls-cert-file={c['apiserver'].cert}",
            f"--tls-private-key-file={c['apiserver'].key}",
            f"--client-ca-file={self.ca}",
            f"--kubelet-client-certificate={c['apiserver-kubelet'].cert}",
            f"--kubelet-client-key={c['apiserver-kubelet'].key}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={self.sa_key.cert}",
            f"--service-account-signing-key-file={self.sa_key.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            f"--enable-admission-plugins={','.join(EXTRA_ADMISSION_PLUGINS)}",
            "--allow-privileged=true",  # GKE allows privileged pods (the driver installer is one)
            "--profiling=false",
        ]

    def _component_args(self, name: str) -> list[str]:
        """What controller-manager and scheduler share: their kubeconfig for everything, and a
        loopback HTTPS port with their own serving certificate."""
        kubeconfig = self.dir / f"{name}.kubeconfig"
        serving = self.certs[f"{name}-serving"]
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--bind-address={procs.LOOPBACK}",
            f"--secure-port={self.ports[name]}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
        ]

    def _controller_manager_args(self) -> list[str]:
        return [
            *self._component_args("controller-manager"),
            f"--client-ca-file={self.ca}",
            f"--root-ca-file={self.ca}",
            f"--service-account-private-key-file={self.sa_key.key}",
            f"--cluster-signing-cert-file={self.ca}",
            f"--cluster-signing-key-file={self.ca_key}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*",
            "--leader-elect=false",
            "--profiling=false",
        ]

    def _scheduler_args(self) -> list[str]:
        return [
            *self._component_args("scheduler"),
            "--leader-elect=false",
            "--profiling=false",
        ]

    # --- talking to it -------------------------------------------------------------------------
    def kube(self, kubeconfig: Path | None = None) -> kube_client.Kube:
        """Our HTTPS client (server-side apply with the server's verdict), admin unless told otherwise."""
        return kube_client.Kube(kubeconfig or self.kubeconfig)

    def get(self, path: str) -> Any:
        """GET a raw API path as admin, decoded from JSON."""
        return self.kube().get(path)

    def version(self) -> dict[str, Any]:
        """The API server's own /version."""
        return self.get("/version")

    def _apiserver_ready(self) -> bool:
        return self.kube().request("GET", "/readyz").status == 200

    def _healthz(self, port: int) -> bool:
        import ssl
        import urllib.request

        context = ssl.create_default_context(cafile=str(self.ca))
        with urllib.request.urlopen(f"https://{procs.LOOPBACK}:{port}/healthz", context=context, timeout=2) as response:
            return response.status == 200

    def _default_service_account(self) -> bool:
        return (
            self.get("/api/v1/namespaces/default/serviceaccounts/default").get("metadata", {}).get("name") == "default"
        )

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of each component, MiB."""
        return {name: round(procs.rss_mb(proc.pid), 1) for name, proc in self.processes.items()}

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.processes.items()}
