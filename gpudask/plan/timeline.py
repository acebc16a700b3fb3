"""A modeled timeline: the critical path of `pulumi up` and of a cold GPU worker start.

Every duration comes from `gpudask/plan/durations.yaml` (median and range, dated, sourced;
estimates marked). The `pulumi up` path is the longest chain through the plan's recorded
dependency graph (explicit dependencies and each resource's provider), each resource
weighted by its type. The cold worker start is a chain of steps whose durations follow the
levers the plan declares: GPU driver mode, image streaming, a secondary boot disk caching the
image, an image prepuller, the pool's minimum nodes.

Works on plan.json records (not on a live recording), so a saved base plan can be compared.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from components.catalog import A100_MACHINE_TYPES
from components.dask_spec import NODEPOOL_LABEL
from components.driver_spec import NAME as DRIVER_DAEMONSET_NAME
from components.gke_spec import IMAGE_CACHE_MODE
from components.prepuller_spec import COMPONENT as PREPULLER_COMPONENT
from components.prepuller_spec import COMPONENT_LABEL
from gpudask.record.resource_types import CLUSTER, NODE_POOL

DURATIONS_FILE = Path(__file__).with_name("durations.yaml")
DAEMONSET = "kubernetes:apps/v1:DaemonSet"
DASK_CLUSTER = "kubernetes:kubernetes.dask.org/v1:DaskCluster"
DASK_AUTOSCALER = "kubernetes:kubernetes.dask.org/v1:DaskAutoscaler"


@dataclass(frozen=True)
class Duration:
    key: str
    label: str
    median_s: float
    low_s: float
    high_s: float
    estimate: bool
    source: str


@dataclass(frozen=True)
class Durations:
    date: str
    steps: dict[str, Duration]
    resources: dict[str, str]
    default: str

    def for_resource(self, record: dict[str, Any]) -> Duration | None:
        """What one resource costs in `pulumi up`; None for components and providers (no wait)."""
        type_ = record["type"]
        if not record.get("custom", True) or type_.startswith("pulumi:providers:"):
            return None
        if type_ == CLUSTER:
            location = str(record["inputs"].get("location", ""))
            return self.steps["gke_cluster_zonal" if location.count("-") == 2 else "gke_cluster_regional"]
        if type_ == NODE_POOL:
            return self.steps["node_pool_create"]
        return self.steps[self.resources.get(type_, self.default)]


@functools.cache
def load_durations(path: Path = DURATIONS_FILE) -> Durations:
    raw = yaml.safe_load(path.read_text())
    steps = {
        key: Duration(
            key=key,
            label=body["label"],
            median_s=float(body["median_s"]),
            low_s=float(body["range_s"][0]),
            high_s=float(body["range_s"][1]),
            estimate=bool(body["estimate"]),
            source=str(body["source"]),
        )
        for key, body in raw["steps"].items()
    }
    return Durations(date=str(raw["date"]), steps=steps, resources=dict(raw["resources"]), default=raw["default"])


@dataclass(frozen=True)
class Step:
    """One step on a path: what it is, and its median and range in seconds."""

    what: str
    step: str  # key in durations.yaml
    median_s: float
    low_s: float
    high_s: float

    @classmethod
    def of(cls, what: str, d: Duration, times: float = 1.0) -> Step:
        return cls(what, d.key, d.median_s * times, d.low_s * times, d.high_s * times)


@dataclass(frozen=True)
class Chain:
    """A chain of steps; totals are the sums of the steps' medians and bounds."""

    steps: tuple[Step, ...]

    @property
    def median_s(self) -> float:
        return sum(s.median_s for s in self.steps)

    @property
    def low_s(self) -> float:
        return sum(s.low_s for s in self.steps)

    @property
    def high_s(self) -> float:
        return sum(s.high_s for s in self.steps)


# --- pulumi up: the longest chain through the recorded graph -----------------------------------
def _edges(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each resource's predecessors: its explicit dependencies, its provider, and its parent
    (the SDK registers a child once its parent's URN exists, and a component is registered
    only after its own dependencies: that is how a component's `depends_on` reaches its children)."""
    keys = {r["key"] for r in records}
    return {
        r["key"]: sorted(
            {
                d
                for d in [*r.get("dependencies", []), r.get("provider", ""), r.get("parent", "")]
                if d and d in keys and d != r["key"]
            }
        )
        for r in records
    }


def _node_pool_step(record: dict[str, Any], d: Durations) -> list[Step]:
    """A pool create waits for its initial nodes: an empty pool is one operation, a pool with
    nodes also boots them (CPU or A2)."""
    inputs = record["inputs"]
    scaling = inputs.get("autoscaling") or {}
    initial = max(int(inputs.get("initialNodeCount") or 0), int(scaling.get("totalMinNodeCount") or 0))
    steps = [Step.of(f"{record['name']}: node pool create", d.steps["node_pool_create"])]
    if initial:
        gpu = bool((inputs.get("nodeConfig") or {}).get("guestAccelerators"))
        boot = d.steps["a2_vm_boot" if gpu else "cpu_vm_boot"]
        steps.append(Step.of(f"{record['name']}: {initial} node(s) boot to Ready", boot))
    return steps


def resource_steps(record: dict[str, Any], d: Durations) -> list[Step]:
    if record["type"] == NODE_POOL:
        return _node_pool_step(record, d)
    duration = d.for_resource(record)
    if duration is None:
        return []
    return [Step.of(f"{record['type'].split(':')[-1]} {record['name']}", duration)]


def critical_path(records: list[dict[str, Any]], d: Durations | None = None, until: str | None = None) -> Chain:
    """The longest (by median) chain of `pulumi up`, ending at `until` (a resource key) or
    wherever the longest chain ends."""
    d = d or load_durations()
    by_key = {r["key"]: r for r in records}
    edges = _edges(records)
    best: dict[str, tuple[float, tuple[Step, ...]]] = {}

    def finish(key: str, visiting: frozenset[str] = frozenset()) -> tuple[float, tuple[Step, ...]]:
        if key in best:
            return best[key]
        if key in visiting:  # a cycle cannot be deployed; stop rather than recurse forever
            return 0.0, ()
        before: tuple[float, tuple[Step, ...]] = (0.0, ())
        for pred in edges[key]:
            candidate = finish(pred, visiting | {key})
            if candidate[0] > before[0]:
                before = candidate
        own = tuple(resource_steps(by_key[key], d))
        best[key] = (before[0] + sum(s.median_s for s in own), before[1] + own)
        return best[key]

    if until is not None:
        return Chain(finish(until)[1])
    ends = [finish(k) for k in by_key]
    return Chain(max(ends, key=lambda e: e[0])[1] if ends else ())


# --- a cold GPU worker ------------------------------------------------------------------------
@dataclass(frozen=True)
class Levers:
    """What the plan declares for one GPU pool, as the timeline reads it."""

    pool: str
    min_nodes: int
    driver: str  # "daemonset" | "gke-managed" | "none"
    image_streaming: bool
    image_cache_disk: bool
    prepuller: bool
    dask_autoscaled_from_zero: bool


@dataclass(frozen=True)
class ColdStart:
    levers: Levers
    path: Chain
    notes: tuple[str, ...] = field(default_factory=tuple)


def _pool_levers(records: list[dict[str, Any]]) -> list[Levers]:
    daemonsets = [r for r in records if r["type"] == DAEMONSET]
    driver_daemonset = any(
        ((r["inputs"].get("metadata") or {}).get("name") == DRIVER_DAEMONSET_NAME) for r in daemonsets
    )
    worker_image = _worker_image(records)
    prepuller = any(_is_prepuller(r, worker_image) for r in daemonsets)
    autoscalers = [r for r in records if r["type"] == DASK_AUTOSCALER]
    from_zero = any(int((r["inputs"].get("spec") or {}).get("minimum", 1)) == 0 for r in autoscalers)
    worker_pool = _worker_pool(records)
    levers = []
    for r in records:
        if r["type"] != NODE_POOL:
            continue
        config = r["inputs"].get("nodeConfig") or {}
        accelerators = config.get("guestAccelerators") or []
        # Only the pools a GPU worker can land on: A100 pools (not, say, a small GPU pool kept
        # for the scheduler), and the one the workers select when they select one.
        if not accelerators or accelerators[0].get("type") not in A100_ACCELERATORS:
            continue
        if worker_pool and str(r["inputs"].get("name", r["name"])) != worker_pool:
            continue
        version = (accelerators[0].get("gpuDriverInstallationConfig") or {}).get("gpuDriverVersion")
        if version in ("DEFAULT", "LATEST") or version is None:  # unset = GKE's default driver (>= 1.30)
            driver = "gke-managed"
        else:
            driver = "daemonset" if driver_daemonset else "none"
        streaming = bool((config.get("gcfsConfig") or {}).get("enabled"))
        cache = any(disk.get("mode") == IMAGE_CACHE_MODE for disk in config.get("secondaryBootDisks") or [])
        scaling = r["inputs"].get("autoscaling") or {}
        levers.append(
            Levers(
                pool=str(r["inputs"].get("name", r["name"])),
                min_nodes=max(
                    int(scaling.get("totalMinNodeCount") or 0), int(r["inputs"].get("initialNodeCount") or 0)
                ),
                driver=driver,
                image_streaming=streaming,
                # GKE reads the cache through the image streaming plugin: without it the disk is unused.
                image_cache_disk=cache and streaming,
                prepuller=prepuller,
                dask_autoscaled_from_zero=from_zero,
            )
        )
    return levers


A100_ACCELERATORS = {m.accelerator for m in A100_MACHINE_TYPES.values()}


def _worker_spec(records: list[dict[str, Any]]) -> dict[str, Any]:
    for r in records:
        if r["type"] == DASK_CLUSTER:
            return ((r["inputs"].get("spec") or {}).get("worker") or {}).get("spec") or {}
    return {}


def _worker_pool(records: list[dict[str, Any]]) -> str | None:
    """The pool the default workers select by name, if they select one."""
    return (_worker_spec(records).get("nodeSelector") or {}).get(NODEPOOL_LABEL)


def _worker_image(records: list[dict[str, Any]]) -> str:
    for r in records:
        if r["type"] == DASK_CLUSTER:
            containers = (((r["inputs"].get("spec") or {}).get("worker") or {}).get("spec") or {}).get("containers")
            if containers:
                return str(containers[0].get("image", ""))
    return ""


def _is_prepuller(record: dict[str, Any], image: str) -> bool:
    template = (record["inputs"].get("spec") or {}).get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    return labels.get(COMPONENT_LABEL) == PREPULLER_COMPONENT and any(c.get("image") == image for c in containers)


def cold_worker(levers: Levers, d: Durations | None = None) -> ColdStart:
    """From submitted work to the first GPU worker connected, the cluster idle (pool at its minimum)."""
    d = d or load_durations()
    s = d.steps
    steps: list[Step] = []
    notes: list[str] = []
    if levers.dask_autoscaled_from_zero:
        steps.append(Step.of("DaskAutoscaler adds a worker", s["dask_autoscaler_reaction"]))
    if levers.image_cache_disk:
        image = Step.of("image from the secondary boot disk cache", s["image_secondary_boot_disk"])
    elif levers.image_streaming:
        image = Step.of("image streamed (GKE image streaming)", s["image_pull_streaming"])
    else:
        image = Step.of("image pulled in full", s["image_pull_full"])
    if levers.min_nodes > 0:
        # A node is up with its driver; the image is there if the prepuller pulled it.
        if levers.prepuller:
            steps.append(Step.of("image already on the node (prepuller)", s["image_present"]))
        else:
            steps.append(image)
            notes.append("a node is up, but nothing pulled the image onto it before the first worker")
        steps.append(Step.of("dask-cuda worker starts and connects", s["dask_worker_start"]))
        return ColdStart(levers, Chain(tuple(steps)), tuple(notes))

    steps.append(Step.of("cluster autoscaler scales the pool up", s["autoscaler_scale_up"]))
    steps.append(Step.of("A2 VM boots to node Ready", s["a2_vm_boot"]))
    if levers.driver == "none":
        notes.append("no driver installer for this pool: the GPU is never advertised (plan finding)")
    driver = s["driver_gke_managed" if levers.driver == "gke-managed" else "driver_daemonset"]
    gpu_ready = [
        Step.of(
            f"NVIDIA driver ({'GKE-managed' if levers.driver == 'gke-managed' else 'installer DaemonSet'})", driver
        ),
        Step.of("device plugin advertises the GPU", s["device_plugin"]),
    ]
    if levers.prepuller:
        # The prepuller needs no GPU: it pulls while the driver installs; the worker waits for both.
        gpu_path, image_path = Chain(tuple(gpu_ready)), Chain((image,))
        longer = gpu_path if gpu_path.median_s >= image_path.median_s else image_path
        steps.append(
            Step(
                f"in parallel: driver + device plugin ({gpu_path.median_s:.0f} s) and the prepuller's "
                f"{image.what} ({image_path.median_s:.0f} s)",
                "+".join(st.step for st in longer.steps),
                max(gpu_path.median_s, image_path.median_s),
                max(gpu_path.low_s, image_path.low_s),
                max(gpu_path.high_s, image_path.high_s),
            )
        )
    else:
        steps += [*gpu_ready, image]
    steps.append(Step.of("dask-cuda worker starts and connects", s["dask_worker_start"]))
    return ColdStart(levers, Chain(tuple(steps)), tuple(notes))


def warm_node_ready(levers: Levers, d: Durations | None = None) -> list[Step]:
    """After a GPU node booted during `pulumi up`: its driver, device plugin and (with the
    prepuller, overlapped) image, until a worker could start there."""
    d = d or load_durations()
    s = d.steps
    cold = cold_worker(replace(levers, min_nodes=0, dask_autoscaled_from_zero=False), d).path.steps
    # The scale-from-zero chain minus the autoscaler and the boot (the pool create booted the node).
    return [st for st in cold if st.step not in ("autoscaler_scale_up", "a2_vm_boot")] or [
        Step.of("dask-cuda worker starts and connects", s["dask_worker_start"])
    ]


def from_nothing(records: list[dict[str, Any]], d: Durations | None = None) -> Chain | None:
    """From an empty project to the first GPU worker connected: `pulumi up`, then the worker,
    which needs both the DaskCluster (operator) and a GPU node (the pool, then the autoscaler
    or its minimum node, its driver and image)."""
    d = d or load_durations()
    t = timeline(records, d)
    if t.cold is None:
        return None
    clusters = [r["key"] for r in records if r["type"] == DASK_CLUSTER]
    pools = [
        r["key"]
        for r in records
        if r["type"] == NODE_POOL and str(r["inputs"].get("name", r["name"])) == t.cold.levers.pool
    ]
    if not clusters or not pools:
        return None
    to_dask = critical_path(records, d, until=clusters[0])
    to_pool = critical_path(records, d, until=pools[0])
    lv = t.cold.levers
    if lv.min_nodes > 0:
        after_boot = warm_node_ready(lv, d)[:-1]  # driver, device plugin, image (overlapped with a prepuller)
        image_waits_for_worker = [] if lv.prepuller else after_boot[-1:]
        node = Chain(to_pool.steps + tuple(after_boot[: len(after_boot) - len(image_waits_for_worker)]))
        first = node if node.median_s >= to_dask.median_s else to_dask
        worker = Step.of("dask-cuda worker starts and connects", d.steps["dask_worker_start"])
        return Chain(first.steps + tuple(image_waits_for_worker) + (worker,))
    first = to_pool if to_pool.median_s >= to_dask.median_s else to_dask
    return Chain(first.steps + t.cold.path.steps)


@dataclass(frozen=True)
class Timeline:
    up: Chain
    cold: ColdStart | None
    per_pool: tuple[ColdStart, ...]
    durations_date: str

    def to_json(self) -> dict[str, Any]:
        def path(p: Chain) -> dict[str, Any]:
            return {
                "medianS": p.median_s,
                "lowS": p.low_s,
                "highS": p.high_s,
                "steps": [
                    {"what": s.what, "step": s.step, "medianS": s.median_s, "lowS": s.low_s, "highS": s.high_s}
                    for s in p.steps
                ],
            }

        return {
            "durationsDate": self.durations_date,
            "pulumiUp": path(self.up),
            "coldGpuWorker": None
            if self.cold is None
            else {"pool": self.cold.levers.pool, "notes": list(self.cold.notes), **path(self.cold.path)},
        }


def timeline(records: list[dict[str, Any]], d: Durations | None = None) -> Timeline:
    d = d or load_durations()
    per_pool = tuple(cold_worker(levers, d) for levers in _pool_levers(records))
    warm = [c for c in per_pool if c.levers.min_nodes > 0]
    # A worker goes to a node that is up when there is one; otherwise the autoscaler may pick
    # any pool, so the headline is the slowest of them.
    if warm:
        cold = min(warm, key=lambda c: c.path.median_s)
    else:
        cold = max(per_pool, key=lambda c: c.path.median_s) if per_pool else None
    return Timeline(critical_path(records, d), cold, per_pool, d.date)


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def headline(t: Timeline) -> str:
    """The one line for the PR comment."""
    if t.cold is None:
        return "first GPU worker after a cold start: no GPU pool"
    p = t.cold.path
    return (
        f"first GPU worker after a cold start: ~{minutes(p.median_s)} min "
        f"({minutes(p.low_s)}-{minutes(p.high_s)}); `pulumi up`: ~{minutes(t.up.median_s)} min "
        f"({minutes(t.up.low_s)}-{minutes(t.up.high_s)})"
    )


def markdown(t: Timeline) -> list[str]:
    d = load_durations()
    lines = ["## Timeline (modeled)", "", headline(t) + ".", ""]
    lines += ["### `pulumi up`: critical path", "", "| step | median s | range s |", "|---|---|---|"]
    lines += [f"| {s.what} | {s.median_s:.0f} | {s.low_s:.0f}-{s.high_s:.0f} |" for s in t.up.steps]
    lines += [f"| **total** | **{t.up.median_s:.0f}** | {t.up.low_s:.0f}-{t.up.high_s:.0f} |", ""]
    for cold in t.per_pool:
        lv = cold.levers
        lines += [
            f"### Cold GPU worker: pool `{lv.pool}`",
            "",
            f"Levers: min nodes {lv.min_nodes}, driver {lv.driver}, image streaming {'on' if lv.image_streaming else 'off'}, "
            f"secondary boot disk {'on' if lv.image_cache_disk else 'off'}, prepuller {'on' if lv.prepuller else 'off'}.",
            "",
            "| step | median s | range s |",
            "|---|---|---|",
        ]
        lines += [f"| {s.what} | {s.median_s:.0f} | {s.low_s:.0f}-{s.high_s:.0f} |" for s in cold.path.steps]
        p = cold.path
        lines += [f"| **total** | **{p.median_s:.0f}** | {p.low_s:.0f}-{p.high_s:.0f} |", ""]
        lines += [f"- note: {n}" for n in cold.notes]
    used = sorted(
        {s.step for s in t.up.steps} | {k for c in t.per_pool for s in c.path.steps for k in s.step.split("+")}
    )
    lines += [f"Durations from `gpudask/plan/durations.yaml` ({d.date}); sources:", ""]
    for key in used:
        step = d.steps[key]
        lines.append(f"- `{key}` {step.label}: {step.source}{' (estimate)' if step.estimate else ''}")
    return [*lines, ""]


def diff_line(base: Timeline, head: Timeline) -> str:
    """How a change moves the modeled numbers (PR comment)."""

    def delta(a: float, b: float) -> str:
        change = (b - a) / 60
        return f"{minutes(a)} → {minutes(b)} min ({'+' if change >= 0 else ''}{change:.1f})"

    parts = [f"`pulumi up` {delta(base.up.median_s, head.up.median_s)}"]
    if base.cold and head.cold:
        parts.insert(
            0, f"first GPU worker after a cold start {delta(base.cold.path.median_s, head.cold.path.median_s)}"
        )
    return "Timeline: " + "; ".join(parts)
