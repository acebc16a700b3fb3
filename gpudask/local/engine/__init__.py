"""The real Pulumi engine on a stack's Kubernetes half: the CLI and the Kubernetes provider built from source.

`upstream/versions.toml` pins the Pulumi CLI (v3.276.0) and pulumi-resource-kubernetes (4.25.0); they are
built into the per-user cache like the control plane's programs. The Python language host is not served
by the module proxy, so every operation is an Automation API inline program (the SDK serves the language
runtime itself), run by `gpudask/local/engine/program.py` in a process of its own.

`Engine(stack, kubeconfig, work)` keeps one stack's state (a `file://` backend, passphrase secrets) in
`work/`, with a project folder holding `Pulumi.yaml` and a copy of the stack file, changed only where the
local control plane needs it (each change listed in `Engine.notes`):
- `operatorChart`: the chart folder the pinned dask-kubernetes wheel ships, stamped with its version as
  chartpress stamps the published chart (the repository cannot be reached offline);
- nothing else: an existingCluster stack reads the ambient KUBECONFIG, which the engine points at a
  kubeconfig for the local control plane under the context name the stack file gives (`existingCluster.context`).
The CLI validates the stack file against `Pulumi.yaml`'s config schema, as it does for users.

`stack_up(...)` runs `up` while it brings the chart's operator and the Dask pods up behind it as local
processes (`gpudask.local.cluster.runtime`), because the DaskCluster is awaited until the real operator sets its
phase.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpudask.upstream import programs as upstream

PROJECT_DIR = Path(__file__).resolve().parents[3]
PROGRAM = Path(__file__).resolve().parent / "program.py"
# Local state of throwaway control planes only: the secrets it guards are stand-in certificates.
PASSPHRASE = "gpu-dask-local-engine"
OPERATOR_NAMESPACE, OPERATOR_DEPLOYMENT = "dask-operator", "dask-kubernetes-operator"
# What gcp.compute.Address would reserve for an internal load balancer (a stand-in, named in outputs).
STAND_IN_INTERNAL_ADDRESS = "10.10.0.50"


class EngineError(RuntimeError):
    """The engine could not be prepared or run (the message says which command and why)."""


@dataclass
class Result:
    """One engine operation, as the engine reported it."""

    op: str
    stack: str
    ok: bool
    summary: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, str]] = field(default_factory=list)
    output: str = ""
    seconds: float = 0.0
    error: str = ""

    @property
    def changes(self) -> dict[str, int]:
        """The summary without unchanged resources: empty when the operation changed nothing."""
        return {op: n for op, n in self.summary.items() if op != "same" and n}

    def ops(self, op: str) -> list[str]:
        """URNs the engine gave `op` (create, update, replace, delete, same, ...)."""
        return [s["urn"] for s in self.steps if s["op"] == op]

    def failure(self) -> str:
        return f"pulumi {self.op} of {self.stack} failed: {self.error}\n{self.output[-6000:]}"


# --- the CLI and the provider ---------------------------------------------------------------------
def provider_version() -> str:
    return upstream.load_programs()["pulumi-kubernetes"].schema_version


def cli_version() -> str:
    return upstream.load_programs()["pulumi"].version


def pulumi_home(build_missing: bool = True) -> Path:
    """A PULUMI_HOME of ours (cached per user) with the pinned Kubernetes provider installed from our build."""
    cli = upstream.binary("pulumi", build_missing=build_missing)
    plugin = upstream.binary("pulumi-resource-kubernetes", build_missing=build_missing)
    version = provider_version()
    home = upstream.cache_root().parent / "pulumi-home" / f"cli-{cli_version()}-kubernetes-{version}"
    installed = home / "plugins" / f"resource-kubernetes-v{version}" / "pulumi-resource-kubernetes"
    if installed.exists():
        return home
    home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [str(cli), "plugin", "install", "resource", "kubernetes", f"v{version}", "--file", str(plugin)],
        env={**os.environ, **_quiet_env(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0 or not installed.exists():
        raise EngineError(
            f"`pulumi plugin install resource kubernetes v{version} --file {plugin}` failed "
            f"(PULUMI_HOME={home}): {(done.stderr or done.stdout).strip()}"
        )
    return home


def _quiet_env(home: Path) -> dict[str, str]:
    """Nothing downloaded, nothing asked, no update check."""
    return {
        "PULUMI_HOME": str(home),
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
    }


def stamped_chart(folder: Path) -> Path:
    """The operator chart of the pinned dask-kubernetes wheel in `folder`, version and appVersion set to
    the wheel's (chartpress stamps the published chart so; the wheel leaves "set-by-chartpress")."""
    from gpudask.local.cluster.operator import chart_folder

    source = chart_folder()
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, folder)
    version = wheel_version()
    meta = yaml.safe_load((folder / "Chart.yaml").read_text())
    meta["version"] = meta["appVersion"] = version
    (folder / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return folder


def wheel_version() -> str:
    from importlib.metadata import version

    return version("dask-kubernetes")


# --- one stack's engine ---------------------------------------------------------------------------
class Engine:
    """The real engine for one stack on one local control plane; state kept in `work`."""

    def __init__(self, stack: str, kubeconfig: Path, work: Path, *, checkout: Path = PROJECT_DIR):
        self.stack = stack
        self.kubeconfig = kubeconfig
        self.work = work
        self.checkout = checkout
        self.notes: list[str] = []
        self.stand_ins: list[str] = []
        self.home = pulumi_home()
        self.cli_root = upstream.binary("pulumi").parent.parent
        self.project_dir = work / "project"
        self.state_dir = work / "state"
        self.tls_dir = work / "tls"
        self.chart = work / "chart"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        stamped_chart(self.chart)
        self.notes.append(
            f"operatorChart: the dask-kubernetes {wheel_version()} wheel's chart, stamped version/appVersion "
            "(the chart repository cannot be reached offline)"
        )

    def env(self) -> dict[str, str]:
        return {
            **_quiet_env(self.home),
            "PULUMI_BACKEND_URL": self.state_dir.resolve().as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "KUBECONFIG": str(self.stack_kubeconfig()),
            "HELM_CACHE_HOME": str(self.work / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(self.work / "helm" / "config"),
            "HELM_DATA_HOME": str(self.work / "helm" / "data"),
        }

    def stack_config(self, checkout: Path) -> dict[str, Any]:
        path = checkout / "stacks" / f"Pulumi.{self.stack}.yaml"
        if not path.exists():
            known = sorted(
                p.name.removeprefix("Pulumi.").removesuffix(".yaml")
                for p in (checkout / "stacks").glob("Pulumi.*.yaml")
            )
            raise EngineError(f"no stack {self.stack!r} in {checkout / 'stacks'}; stacks: {', '.join(known)}")
        return yaml.safe_load(path.read_text()) or {}

    def existing_context(self, checkout: Path) -> str | None:
        """The context an existingCluster stack names (None: not an existingCluster stack, or the current one)."""
        existing = (self.stack_config(checkout).get("config") or {}).get("gpu-dask:existingCluster")
        if not isinstance(existing, dict):
            return None
        return str(existing.get("context") or "local")

    def stack_kubeconfig(self) -> Path:
        """The control plane's kubeconfig, its context named as the stack file names its cluster's."""
        context = self.existing_context(self.checkout) or "local"
        doc = yaml.safe_load(self.kubeconfig.read_text())
        for ctx in doc["contexts"]:
            ctx["name"] = context
        doc["current-context"] = context
        path = self.work / "kubeconfig"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        path.chmod(0o600)
        return path

    def prepare_project(self, checkout: Path, config: Mapping[str, Any] | None = None) -> None:
        """Pulumi.yaml and the stack file of `checkout` in the project folder (the salt of earlier runs kept);
        `config` replaces whole keys of the stack file (`{"gpu-dask:dask": {...}}`), as a user's edit would."""
        self.project_dir.mkdir(parents=True, exist_ok=True)
        (self.project_dir / "stacks").mkdir(exist_ok=True)
        shutil.copyfile(checkout / "Pulumi.yaml", self.project_dir / "Pulumi.yaml")
        target = self.project_dir / "stacks" / f"Pulumi.{self.stack}.yaml"
        salt = (yaml.safe_load(target.read_text()) or {}).get("encryptionsalt") if target.exists() else None
        doc = self.stack_config(checkout)
        values: dict[str, Any] = doc.setdefault("config", {})
        values.update(dict(config or {}))
        values["gpu-dask:operatorChart"] = str(self.chart)
        if salt:
            doc["encryptionsalt"] = salt
        target.write_text(yaml.safe_dump(doc, sort_keys=False))

    def ensure_tls(self) -> None:
        if not (self.tls_dir / "ca.pem").exists():
            from gpudask.local.rehearse import write_tls_files

            write_tls_files(self.tls_dir)
        if "tls: pulumi-tls stood in by the harness's certificates" not in self.stand_ins:
            self.stand_ins.append("tls: pulumi-tls stood in by the harness's certificates")

    def start(
        self, op: str, *, checkout: Path | None = None, config: Mapping[str, Any] | None = None, **flags: Any
    ) -> subprocess.Popen[str]:
        """Start one operation (up, preview, refresh, destroy, outputs); `finish` reads its result.
        `flags`: expect_no_changes, refresh, variants and hooks (broken variants: `module:function`)."""
        source = checkout or self.checkout
        self.prepare_project(source, config)
        self.ensure_tls()
        request = {
            "op": op,
            "stack": self.stack,
            "checkout": str(source.resolve()),
            "project_dir": str(self.project_dir),
            "pulumi_home": str(self.home),
            "cli_root": str(self.cli_root),
            "tls_dir": str(self.tls_dir),
            "internal_address": STAND_IN_INTERNAL_ADDRESS,
            "stand_ins": [*self.stand_ins, f"internal address: {STAND_IN_INTERNAL_ADDRESS} for gcp.compute.Address"],
            "env": self.env(),
            **flags,
        }
        request_file = self.work / f"request-{op}.json"
        request_file.write_text(json.dumps(request))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "DASK_"))}
        env |= self.env()
        env["PATH"] = f"{self.cli_root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.Popen(
            [sys.executable, str(PROGRAM), str(request_file)],
            cwd=source,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def finish(self, process: subprocess.Popen[str], op: str, timeout: float) -> Result:
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            out, _ = process.communicate()
            return Result(op, self.stack, False, output=out[-20000:], error=f"no answer after {timeout:.0f} s (killed)")
        last = out.strip().rsplit("\n", 1)[-1] if out.strip() else ""
        try:
            data = json.loads(last)
        except ValueError:
            return Result(
                op, self.stack, False, output=out[-20000:], error=f"exit {process.returncode}, no result line"
            )
        return Result(
            op=op,
            stack=self.stack,
            ok=bool(data.get("ok")),
            summary={k: int(v) for k, v in (data.get("summary") or {}).items()},
            outputs=data.get("outputs") or {},
            steps=data.get("steps") or [],
            output=data.get("output") or "",
            seconds=float(data.get("seconds") or 0.0),
            error=str(data.get("error") or "") + ("\n" + data["traceback"] if data.get("traceback") else ""),
        )

    def run(
        self,
        op: str,
        *,
        timeout: float = 600.0,
        checkout: Path | None = None,
        config: Mapping[str, Any] | None = None,
        **flags: Any,
    ) -> Result:
        """One operation to its end (or `timeout`, then killed and reported)."""
        return self.finish(self.start(op, checkout=checkout, config=config, **flags), op, timeout)


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, 9)


# --- up, with the operator and the Dask pods behind it ------------------------------------------
def wait_for_operator(kube: Any, process: subprocess.Popen[str], timeout: float) -> bool:
    """True once the chart's operator Deployment is available; False if `up` ended first or `timeout` passed."""
    deadline = time.monotonic() + timeout
    path = kube.path("apps/v1", "Deployment", OPERATOR_DEPLOYMENT, OPERATOR_NAMESPACE)
    while time.monotonic() < deadline and process.poll() is None:
        try:
            status = (kube.get(path) or {}).get("status") or {}
        except Exception:  # noqa: BLE001 - not there yet (404) or the API is busy: ask again
            status = {}
        if int(status.get("availableReplicas") or 0) >= 1:
            return True
        time.sleep(0.5)
    return False


@contextlib.contextmanager
def load_balancer_stand_in(kube: Any, interval: float = 0.5) -> Iterator[None]:
    """What GKE's service controller does for a LoadBalancer Service: its status gets the requested
    address (`spec.loadBalancerIP`), which the provider's await waits for. A stand-in: no cloud here."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            with contextlib.suppress(Exception):
                for svc in kube.list("v1", "Service"):
                    spec, status = svc.get("spec") or {}, svc.get("status") or {}
                    if spec.get("type") != "LoadBalancer" or (status.get("loadBalancer") or {}).get("ingress"):
                        continue
                    address = spec.get("loadBalancerIP") or STAND_IN_INTERNAL_ADDRESS
                    meta = svc["metadata"]
                    kube.request(
                        "PATCH",
                        kube.path("v1", "Service", meta["name"], meta["namespace"]) + "/status",
                        body={"status": {"loadBalancer": {"ingress": [{"ip": address}]}}},
                        content_type="application/merge-patch+json",
                    )

    thread = threading.Thread(target=loop, name="load-balancer-stand-in", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@dataclass
class StackUp:
    engine: Engine
    result: Result
    runtime: Any  # gpudask.local.cluster.runtime.DaskRuntime
    cp: Any = None  # gpudask.local.cluster.controlplane.ControlPlane, when `stack_cluster` made it


@contextlib.contextmanager
def stack_up(
    cp: Any,
    rec: Any,
    work: Path,
    *,
    stack: str | None = None,
    checkout: Path = PROJECT_DIR,
    gpu: bool | None = None,
    log: Callable[[str], None] | None = None,
    pull_s: Callable[[Mapping[str, Any]], float] | None = None,
    timeout: float = 600.0,
    operator_timeout: float = 300.0,
    config: Mapping[str, Any] | None = None,
    **flags: Any,
) -> Iterator[StackUp]:
    """`pulumi up` of the recorded stack's Kubernetes half on `cp` (whose nodes the caller made), with the
    chart's operator and the Dask pods run as local processes as soon as the release has made the operator."""
    from gpudask.local.cluster.runtime import dask_namespace, dask_runtime
    from gpudask.record.view import recorded_settings

    say = log or (lambda _line: None)
    engine = Engine(stack or rec.stack, cp.kubeconfig, work, checkout=checkout)
    from gpudask.local.cluster.managed import install_managed_crds

    kube = cp.kube()
    for crd in install_managed_crds(kube):
        engine.notes.append(f"CRD {crd}: installed as the cluster's monitoring add-on would (stand-in)")
    with load_balancer_stand_in(kube):
        process = engine.start("up", config=config, **flags)
        say(f"pulumi up {engine.stack} (CLI {cli_version()}, pulumi-resource-kubernetes {provider_version()})")
        if not wait_for_operator(kube, process, operator_timeout):
            result = engine.finish(process, "up", timeout)
            raise EngineError(
                result.failure() if not result.ok else "up ended but the operator Deployment never became available"
            )
        say("operator Deployment available: starting the operator and the kubelet stand-in")
        with dask_runtime(cp, dask_namespace(rec), work / "dask", gpu=gpu, pull_s=pull_s) as runtime:
            # The client certificate, only where the stack's Dask speaks TLS (a dev client must not demand it).
            runtime.tls_dir = engine.tls_dir if recorded_settings(rec).dask.tls else None
            result = engine.finish(process, "up", timeout)
            say(f"pulumi up: {'ok' if result.ok else 'FAILED'} in {result.seconds:.1f} s: {result.summary}")
            yield StackUp(engine, result, runtime)


@contextlib.contextmanager
def stack_cluster(
    rec: Any,
    work: Path,
    *,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> Iterator[StackUp]:
    """The one way a stack comes up locally: a control plane of its own with nodes shaped like the stack's
    pools, the Kubernetes half up by the real engine (`stack_up`'s options: variants, config, pull_s, ...),
    the chart's operator and the Dask pods as processes. Everything stops when the block ends; a failed `up`
    is in `.result` (the caller decides), an operator that never came up raises EngineError."""
    from gpudask.local.cluster.controlplane import ControlPlane
    from gpudask.local.cluster.nodes import stack_nodes
    from gpudask.local.cluster.runtime import dask_namespace

    began = time.monotonic()
    with (
        ControlPlane(log=log) as cp,
        stack_nodes(cp, rec, process_backed_namespaces=(dask_namespace(rec),)) as nodes,
        stack_up(cp, rec, work, log=log, **options) as state,
    ):
        state.cp = cp
        state.runtime.nodes = nodes
        if log:
            log(f"{state.engine.stack}: control plane, nodes and up in {time.monotonic() - began:.1f} s")
        yield state
