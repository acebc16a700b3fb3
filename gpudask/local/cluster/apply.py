"""The stack's Kubernetes objects, applied to the local control plane as `pulumi up` would apply them.

Order: the recorded program's dependency graph (explicit `depends_on`, inputs from other
resources, and the dependencies of every parent component), as Pulumi's engine walks it;
`pulumi destroy` walks it backwards. The Helm release is installed by real helm from the
chart files the pinned dask-kubernetes wheel ships, with the release's recorded values; every
other object goes through server-side apply with strict field validation, so the API
server's own verdict (schema, CRD schema, admission including Pod Security, RBAC) is the
check. Failures name the object and carry the server's message; objects that wait for a
failed one are skipped, as Pulumi skips them.

Changed for one machine, and reported: the chart's version and image tag, which the wheel
leaves unstamped ("set-by-chartpress"), are stamped with the wheel's version, as chartpress
stamps the published chart; numbers the recording holds as floats (8787.0) are sent as
integers, as the Pulumi Kubernetes provider sends them.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpudask.local.cluster.controlplane import ControlPlane
from gpudask.local.cluster.kube import ApiError, describe
from gpudask.local.cluster.managed import install_managed_crds
from gpudask.record.recorder import Recorded, Recording
from gpudask.record.resource_types import RELEASE
from gpudask.record.view import kubernetes_manifests
from gpudask.upstream import programs as upstream

FIELD_MANAGER = "pulumi-kubernetes"
CHART_FOLDER = ("operator", "deployment", "helm", "dask-kubernetes-operator")


class ApplyError(RuntimeError):
    """Some objects were refused; `failures` maps each to the server's (or helm's) message."""

    def __init__(self, failures: list[tuple[str, str]]):
        self.failures = failures
        super().__init__("refused:\n" + "\n".join(f"  - {what}: {message}" for what, message in failures))


@dataclass
class Step:
    """One resource to create: a Kubernetes object or the Helm release."""

    recorded: Recorded
    manifest: dict[str, Any] | None  # None for the Helm release
    waits_for: set[str] = field(default_factory=set)  # URNs of other steps

    @property
    def what(self) -> str:
        if self.manifest is None:
            return f"helm release {self.recorded.inputs.get('namespace')}/{self.recorded.inputs.get('name')}"
        return describe(self.manifest)


@dataclass
class Outcome:
    what: str
    seconds: float
    ok: bool
    message: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass
class ApplyReport:
    stack: str
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[tuple[str, str]]:
        return [(o.what, o.message) for o in self.outcomes if not o.ok]

    @property
    def warnings(self) -> list[tuple[str, str]]:
        return [(o.what, w) for o in self.outcomes for w in o.warnings]


def whole_numbers(value: Any) -> Any:
    """Whole floats back to ints, everywhere (the recording keeps Pulumi's float64 numbers)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def steps(rec: Recording) -> list[Step]:
    """Kubernetes objects and Helm releases of the recording, in the order Pulumi would create them."""
    found: dict[str, Step] = {}
    for recorded, manifest in kubernetes_manifests(rec):
        found[recorded.urn] = Step(recorded, whole_numbers(manifest))
    for recorded in rec.of_type(RELEASE):
        found[recorded.urn] = Step(recorded, None)
    children: dict[str, list[str]] = {}
    for urn, resource in rec.resources.items():
        children.setdefault(resource.parent, []).append(urn)

    def custom_descendants(urn: str) -> set[str]:
        out, todo = set(), [urn]
        while todo:
            for child in children.get(todo.pop(), []):
                out.add(child)
                todo.append(child)
        return out

    for urn, step in found.items():
        ancestors, parent = set(), step.recorded.parent
        while parent:
            ancestors.add(parent)
            parent = rec.resources[parent].parent if parent in rec.resources else ""
        waits = set()
        for dep in rec.ancestors_and_dependencies(urn):
            waits.add(dep)
            resource = rec.resources.get(dep)
            if resource is not None and not resource.custom and dep not in ancestors:
                waits |= custom_descendants(dep)  # waiting on a component is waiting on its children
        step.waits_for = {w for w in waits if w in found and w != urn}
    # Kahn's algorithm, ties broken by registration order: deterministic, and what the engine would do serially.
    order: list[Step] = []
    done: set[str] = set()
    pending = list(found)
    while pending:
        ready = [u for u in pending if found[u].waits_for <= done]
        if not ready:
            cycle = ", ".join(found[u].what for u in pending)
            raise ApplyError([("dependency graph", f"cycle among {cycle}")])
        for urn in ready:
            order.append(found[urn])
            done.add(urn)
        pending = [u for u in pending if u not in done]
    return order


def chart_folder() -> Path:
    import dask_kubernetes

    return Path(dask_kubernetes.__file__).parent.joinpath(*CHART_FOLDER)


def wheel_version() -> str:
    from importlib.metadata import version

    return version("dask-kubernetes")


def install_release(cp: ControlPlane, step: Step, notes: list[str], timeout_s: int = 180) -> Outcome:
    """`helm install` of the operator chart from the wheel, with the release's recorded values."""
    inputs = step.recorded.inputs
    started = time.monotonic()
    wanted = str(inputs.get("version", ""))
    have = wheel_version()
    if wanted and wanted != have:
        return Outcome(
            step.what,
            0.0,
            False,
            f"the release pins chart {wanted} but the installed dask-kubernetes wheel is {have}; "
            "install the matching wheel (requirements.txt) so the chart and the operator agree",
        )
    work = cp.dir / "helm"
    chart = work / "chart"
    shutil.rmtree(chart, ignore_errors=True)
    shutil.copytree(chart_folder(), chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"] = meta["appVersion"] = have  # what chartpress stamps into the published chart
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    values = copy.deepcopy(inputs.get("values") or {})
    values.setdefault("image", {}).setdefault("tag", have)
    values_file = work / "values.yaml"
    values_file.write_text(yaml.safe_dump(whole_numbers(values)))
    notes.append(
        f"chart from the dask-kubernetes {have} wheel, stamped version/appVersion/image.tag {have} (as chartpress does)"
    )
    helm = upstream.binary("helm")
    argv = [
        str(helm),
        "install",
        str(inputs.get("name")),
        str(chart),
        f"--namespace={inputs.get('namespace')}",
        f"--values={values_file}",
        f"--kubeconfig={cp.kubeconfig}",
        "--wait",
        f"--timeout={timeout_s}s",
    ]
    if inputs.get("skipCrds"):
        argv.append("--skip-crds")
    if inputs.get("atomic"):
        argv.append("--atomic")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(work / "cache"),
        "HELM_CONFIG_HOME": str(work / "config"),
        "HELM_DATA_HOME": str(work / "data"),
    }
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout_s + 60)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        return Outcome(step.what, seconds, False, (done.stderr or done.stdout).strip())
    return Outcome(step.what, seconds, True)


def apply_stack(
    cp: ControlPlane,
    rec: Recording,
    *,
    transform: Callable[[Step], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> ApplyReport:
    """Create every Kubernetes object of the stack in dependency order; never raises for a refusal."""
    report = ApplyReport(rec.stack)
    kube = cp.kube()
    started = time.monotonic()
    for crd in install_managed_crds(kube):
        report.notes.append(f"CRD {crd}: installed as the cluster's monitoring add-on would (stand-in)")
    failed: set[str] = set()
    for step in steps(rec):
        if transform is not None:
            transform(step)
        blocked = [s for s in step.waits_for if s in failed]
        if blocked:
            failed.add(step.recorded.urn)
            names = ", ".join(sorted(rec.resources[u].name for u in blocked))
            report.outcomes.append(Outcome(step.what, 0.0, False, f"not applied: it waits for {names}, which failed"))
            continue
        if step.manifest is None:
            outcome = install_release(cp, step, report.notes)
        else:
            begin = time.monotonic()
            try:
                response = kube.apply(step.manifest, FIELD_MANAGER)
                outcome = Outcome(step.what, time.monotonic() - begin, True, warnings=response.warnings)
            except ApiError as err:
                outcome = Outcome(
                    step.what, time.monotonic() - begin, False, f"{err.status} {err.reason}: {err.message}"
                )
        if not outcome.ok:
            failed.add(step.recorded.urn)
        if log:
            log(
                f"{'applied' if outcome.ok else 'REFUSED'} {outcome.what} ({outcome.seconds:.2f} s){'' if outcome.ok else ': ' + outcome.message}"
            )
        report.outcomes.append(outcome)
    report.seconds = time.monotonic() - started
    return report


def destroy_stack(
    cp: ControlPlane, rec: Recording, *, timeout: float = 120.0, propagation: str = "Foreground"
) -> tuple[list[str], float]:
    """Delete in Pulumi's reverse order, each deletion awaited; returns (problems, seconds).

    Foreground propagation, as the Pulumi Kubernetes provider deletes: an object is gone only once
    the garbage collector has removed what it owns (a DaemonSet's pods)."""
    kube = cp.kube()
    started = time.monotonic()
    problems: list[str] = []
    for step in reversed(steps(rec)):
        if step.manifest is None:
            inputs = step.recorded.inputs
            done = subprocess.run(
                [
                    str(upstream.binary("helm")),
                    "uninstall",
                    str(inputs.get("name")),
                    f"--namespace={inputs.get('namespace')}",
                    f"--kubeconfig={cp.kubeconfig}",
                    "--wait",
                    f"--timeout={int(timeout)}s",
                ],
                capture_output=True,
                text=True,
                env={
                    **os.environ,
                    "HELM_CACHE_HOME": str(cp.dir / "helm" / "cache"),
                    "HELM_CONFIG_HOME": str(cp.dir / "helm" / "config"),
                },
            )
            if done.returncode != 0:
                problems.append(f"{step.what}: {(done.stderr or done.stdout).strip()}")
            continue
        try:
            if kube.delete(step.manifest, propagation=propagation) is None:
                continue
        except ApiError as err:
            problems.append(f"{step.what}: {err.status} {err.reason}: {err.message}")
            continue
        deadline = time.monotonic() + timeout
        while kube.exists(step.manifest):  # Pulumi waits for each deletion before the next
            if time.monotonic() > deadline:
                problems.append(f"{step.what}: still there {timeout:.0f} s after its deletion")
                break
            time.sleep(0.2)
    return problems, time.monotonic() - started


STAND_IN_MANAGER = "dask-operator-stand-in"


def apply_operator_objects(cp: ControlPlane) -> ApplyReport:
    """What the operator would create for each stored DaskCluster (its own builder functions), applied.

    A stand-in until the real operator runs here: the scheduler and worker Deployments and the
    scheduler Service go through the same admission (Pod Security included) as the operator's would.
    """
    from gpudask.record.dask_operator import created_objects

    kube = cp.kube()
    report = ApplyReport("operator-built")
    started = time.monotonic()
    clusters = kube.list("kubernetes.dask.org/v1", "DaskCluster")
    groups = kube.list("kubernetes.dask.org/v1", "DaskWorkerGroup")
    for cluster in clusters:
        name = cluster["metadata"]["name"]
        mine = [g for g in groups if g["spec"].get("cluster") == name]
        for obj in created_objects(cluster, mine):
            begin = time.monotonic()
            try:
                response = kube.apply(obj, STAND_IN_MANAGER)
                report.outcomes.append(
                    Outcome(describe(obj), time.monotonic() - begin, True, warnings=response.warnings)
                )
            except ApiError as err:
                report.outcomes.append(
                    Outcome(describe(obj), time.monotonic() - begin, False, f"{err.status} {err.reason}: {err.message}")
                )
    report.seconds = time.monotonic() - started
    return report
