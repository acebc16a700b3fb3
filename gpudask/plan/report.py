"""`gpudask plan`: record a stack, validate it, price it, write plan.json, manifests and summary.md."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components import monitoring_spec
from components import prices as prices_
from gpudask.plan import checks as recording_checks
from gpudask.plan import quotas, tfplan
from gpudask.plan import timeline as timing
from gpudask.plan.replacements import entry as replacement_entry
from gpudask.plan.replacements import replacement_kind
from gpudask.record import dask_operator
from gpudask.record.node_pools import declared_node_pools
from gpudask.record.recorder import PROJECT_DIR, Recording, urn_of_provider_ref

PRICES_FILE = prices_.PRICES_FILE
SECRET = "[secret]"
# Who judged a plan. Only the mocks today: the Pulumi CLI builds from source here, but no
# provider plugin does (the Go module proxy serves no pulumi-kubernetes, pulumi-gcp or
# pulumi-tls provider module: GOTCHAS.md), and the engine plans nothing without them.
ENGINE_MOCKS = "mocks"
ENGINE_NOTES = {
    ENGINE_MOCKS: (
        "mocks: the program ran under pulumi.runtime.Mocks and gpudask's own checks judged it (the GCP half: "
        "its provider cannot be built here, so no engine or provider checks it offline); the Kubernetes half is "
        "judged by the real engine and provider in `gpudask engine-diff` and `rehearse --cluster`"
    ),
}


@dataclass
class PoolCost:
    """One node pool's price per node and its node counts: idle, minimum and maximum."""

    pool: str
    machine_type: str
    spot: bool
    min_nodes: int
    max_nodes: int
    hourly_on_demand: float
    hourly_spot: float
    idle_nodes: int = 0
    """Nodes that run when nobody works: min_nodes, or more when replicas no autoscaler
    owns need them (prod's 4 one-GPU workers on 2-GPU nodes keep 2 nodes up)."""
    disk_type: str = ""
    disk_size_gb: int = 0
    disk_hourly: float = 0.0
    """One node's boot disk, per hour."""
    unpriced: str = ""
    """What prices.yaml lacks for this pool (priced as 0); empty when fully priced."""
    gpus: int = 0
    """GPUs per node (any type: the A100 workers' and the scheduler's small one)."""
    secondary_disk_hourly: float = 0.0
    """One node's secondary boot disk (image cache), per hour; 0 without one."""

    @property
    def machine_hourly(self) -> float:
        return self.hourly_spot if self.spot else self.hourly_on_demand

    @property
    def hourly(self) -> float:
        """One node: machine (with its GPUs) plus boot disk and any secondary boot disk."""
        return self.machine_hourly + self.disk_hourly + self.secondary_disk_hourly

    @property
    def idle_hourly(self) -> float:
        return self.hourly * self.idle_nodes

    @property
    def max_hourly(self) -> float:
        return self.hourly * self.max_nodes


@dataclass
class ExtraCost:
    """A cost outside the node pools: Cloud NAT, the internal load balancer's forwarding rule."""

    item: str
    idle_hourly: float
    max_hourly: float
    per_cold_node: float = 0.0
    """A one-off charge each time a GPU node starts cold (NAT processing of the image pull)."""
    basis: str = ""


@dataclass
class Plan:
    stack: str
    resources: list[dict[str, Any]]
    outputs: dict[str, Any]
    findings: list[dict[str, str]]
    costs: list[PoolCost] = field(default_factory=list)
    cluster_fee_hour: float = 0.0
    prices_note: str = ""
    quotas: list[dict[str, Any]] = field(default_factory=list)
    engine: str = ENGINE_MOCKS
    extras: list[ExtraCost] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    """Managed Prometheus samples and their price (metrics_cost); empty when nothing is scraped by GMP."""

    @property
    def engine_note(self) -> str:
        return ENGINE_NOTES[self.engine]

    @property
    def errors(self) -> list[dict[str, str]]:
        """Findings that fail the plan (a finding without a severity, from an older plan.json, is one)."""
        return [f for f in self.findings if f.get("severity", recording_checks.ERROR) != recording_checks.WARNING]

    @property
    def warnings(self) -> list[dict[str, str]]:
        """Findings about a deliberate choice: reported, failing only with `--strict`."""
        return [f for f in self.findings if f.get("severity") == recording_checks.WARNING]

    def fails(self, strict: bool = False) -> bool:
        return bool(self.errors or (strict and self.warnings))

    def verdict(self) -> str:
        """One line: errors, warnings, or none."""
        parts = [f"❌ {len(self.errors)} error(s)"] if self.errors else []
        parts += [f"⚠️ {len(self.warnings)} warning(s)"] if self.warnings else []
        return ", ".join(parts) or "✅ no findings"

    @property
    def idle_hourly(self) -> float:
        """What runs when nobody works: each pool's idle nodes with their disks, the fee, NAT and load balancer."""
        return self.cluster_fee_hour + sum(c.idle_hourly for c in self.costs) + sum(e.idle_hourly for e in self.extras)

    @property
    def max_hourly(self) -> float:
        return self.cluster_fee_hour + sum(c.max_hourly for c in self.costs) + sum(e.max_hourly for e in self.extras)

    @property
    def per_cold_node(self) -> float:
        """The one-off charge of one GPU node starting cold (NAT processing of its image pull)."""
        return sum(e.per_cold_node for e in self.extras)

    @property
    def timeline(self) -> timing.Timeline:
        return timing.timeline(self.resources)

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "engine": {"name": self.engine, "note": self.engine_note},
            "timeline": self.timeline.to_json(),
            "outputs": self.outputs,
            "resources": self.resources,
            "findings": self.findings,
            "quotas": self.quotas,
            "cost": {
                "pools": [
                    asdict(c) | {"hourly": c.hourly, "idleHourly": c.idle_hourly, "maxHourly": c.max_hourly}
                    for c in self.costs
                ],
                "clusterFeeHour": self.cluster_fee_hour,
                "extras": [asdict(e) for e in self.extras],
                "perColdNode": round(self.per_cold_node, 3),
                "idleHourly": round(self.idle_hourly, 3),
                "maxHourly": round(self.max_hourly, 3),
                "note": self.prices_note,
                "managedPrometheus": self.metrics,
            },
        }


def _short(urn: str) -> str:
    """A stack-independent key: type::name (URNs embed the stack name)."""
    if not urn:
        return ""
    parts = urn.split("::")
    return f"{parts[-2].split('$')[-1]}::{parts[-1]}"


def _alias_key(alias: dict[str, Any], name: str, type_: str) -> str:
    """The plan key of the resource an alias names (an old URN, or this resource with an old type or name)."""
    if "urn" in alias:
        return _short(alias["urn"])
    spec = alias.get("spec", {})
    return f"{spec.get('type', type_)}::{spec.get('name', name)}"


def resource_records(rec: Recording) -> list[dict[str, Any]]:
    out = []
    for r in rec.resources.values():
        inputs = {k: (SECRET if k in r.secret_inputs else v) for k, v in r.inputs.items()}
        out.append(
            {
                "key": _short(r.urn),
                "type": r.type,
                "name": r.name,
                "parent": _short(r.parent),
                # Pulumi waits for a resource's provider: an edge of the `pulumi up` graph.
                "provider": _short(urn_of_provider_ref(r.provider)),
                "custom": r.custom,
                "read": r.read,
                "inputs": inputs,
                "dependencies": sorted(_short(d) for d in r.dependencies),
                # What Pulumi matches against the state when this key is not there (a renamed type).
                "aliases": sorted(_alias_key(a, r.name, r.type) for a in r.aliases),
                "options": {
                    "protect": r.protect,
                    "ignoreChanges": r.ignore_changes,
                    "replaceOnChanges": r.replace_on_changes,
                    "deleteBeforeReplace": r.delete_before_replace,
                    "deletedWith": _short(r.deleted_with),
                    "replaceWith": [_short(u) for u in r.replace_with],
                },
            }
        )
    return sorted(out, key=lambda x: x["key"])


def idle_nodes(rec: Recording) -> dict[str, int]:
    """Per pool, the nodes that must run when nobody works.

    Pods whose replica count no autoscaler owns keep running (the DaskCluster's workers at
    the DaskAutoscaler's minimum when there is one, worker groups at their replicas, the
    scheduler, the operator), so their pools hold at least the nodes those pods fill: a lower
    bound by GPUs, CPU and memory summed per pool, never below the pool's minimum.
    """
    nodes = recording_checks.node_models(rec)
    manifests = [m for _, m in recording_checks.kubernetes_manifests(rec)]
    minimum = {m["spec"]["cluster"]: int(m["spec"]["minimum"]) for m in manifests if m["kind"] == "DaskAutoscaler"}
    demand: dict[str, list[float]] = {n.name: [0.0, 0.0, 0.0] for n in nodes}
    for pod in recording_checks.workload_pods(rec):
        if pod.daemon or pod.label.startswith("DaskAutoscaler/"):
            continue
        replicas = pod.replicas
        if pod.label.startswith("DaskCluster/") and pod.label.endswith(" workers"):
            replicas = minimum.get(pod.label.split("/", 1)[1].rsplit(" ", 1)[0], replicas)
        fits = [n for n in nodes if recording_checks.why_not(pod, n) is None]
        if not replicas or not fits:
            continue
        cpu, memory, gpus = recording_checks.pod_requests(pod.spec)
        # A GPU pod goes to a GPU pool, anything else to the first pool that takes it.
        target = next((n for n in fits if bool(n.gpus) == bool(gpus)), fits[0])
        used = demand[target.name]
        used[0], used[1], used[2] = used[0] + cpu * replicas, used[1] + memory * replicas, used[2] + gpus * replicas
    mins = {p.name: p.min_nodes for p in declared_node_pools(rec)}
    out = {}
    for n in nodes:
        cpu, memory, gpus = demand[n.name]
        need = max(
            math.ceil(cpu / n.room_cpu - 1e-9) if n.room_cpu > 0 else 0,
            math.ceil(memory / n.room_memory_gb - 1e-9) if n.room_memory_gb > 0 else 0,
            math.ceil(gpus / n.gpus - 1e-9) if n.gpus else 0,
        )
        out[n.name] = max(mins.get(n.name, 0), min(need, n.max_nodes))
    return out


def price(rec: Recording) -> tuple[list[PoolCost], float, str]:
    prices = prices_.load()
    idle = idle_nodes(rec)
    costs = []
    for p in declared_node_pools(rec):
        node = prices_.node_price(
            p.machine.name,
            [(p.accelerator, p.gpus)] if p.accelerator else [],
            p.disk_type,
            p.disk_gb,
            p.secondary_boot_disks,
        )
        costs.append(
            PoolCost(
                pool=p.name,
                machine_type=p.machine.name,
                spot=p.spot,
                min_nodes=p.min_nodes,
                max_nodes=p.max_nodes,
                hourly_on_demand=node.on_demand,
                hourly_spot=node.spot,
                idle_nodes=idle.get(p.name, p.min_nodes),
                disk_type=p.disk_type,
                disk_size_gb=p.disk_gb,
                disk_hourly=node.disk_hourly,
                unpriced=", ".join(node.missing),
                gpus=p.gpus,
                secondary_disk_hourly=node.secondary_disk_hourly,
            )
        )
    note = f"{prices['region']} list prices of {prices['date']} ({PRICES_FILE.relative_to(PROJECT_DIR)}); estimates"
    if not rec.of_type(recording_checks.CLUSTER):
        # existingCluster: the cluster and its nodes are someone else's bill.
        return costs, 0.0, "no GKE cluster or pool is declared (existingCluster): their cost is not this stack's"
    return costs, float(prices["cluster_fee_hour"]), note


def extra_costs(rec: Recording, costs: list[PoolCost]) -> list[ExtraCost]:
    """Cloud NAT (per VM using it, its IP, and the image each cold GPU node pulls through it) and
    one forwarding rule per internal LoadBalancer Service, from prices.yaml."""
    prices = prices_.load()
    extras = []
    if rec.of_type("gcp:compute/routerNat:RouterNat"):
        nat = prices["nat"]

        def gateway(nodes: int) -> float:
            return min(nodes * nat["per_vm_hour"], nat["max_hour"]) + nat["per_ip_hour"]

        idle = sum(c.idle_nodes for c in costs)
        full = sum(c.max_nodes for c in costs)
        extras.append(
            ExtraCost(
                "Cloud NAT",
                round(gateway(idle), 4),
                round(gateway(full), 4),
                round(prices["cold_node_pull_gib"] * nat["per_gib"], 3),
                f"${nat['per_vm_hour']}/h per node (capped ${nat['max_hour']}/h) + ${nat['per_ip_hour']}/h IP; "
                f"${nat['per_gib']}/GiB: ~{prices['cold_node_pull_gib']} GiB image per cold GPU node",
            )
        )
    services = [
        m
        for _, m in recording_checks.kubernetes_manifests(rec)
        if m.get("kind") == "Service" and (m.get("spec") or {}).get("type") == "LoadBalancer"
    ]
    if services:
        rules = len(services) * prices["forwarding_rule_hour"]
        extras.append(
            ExtraCost(
                "internal load balancer",
                rules,
                rules,
                0.0,
                f"{len(services)} forwarding rule(s) at ${prices['forwarding_rule_hour']}/h; "
                f"${prices['lb_per_gib']}/GiB processed (client traffic, not modeled)",
            )
        )
    return extras


def metrics_cost(rec: Recording) -> dict[str, Any]:
    """Managed Prometheus samples of the stack's PodMonitorings, idle and at full scale, priced per
    million samples (prices.yaml). Estimates: series per target from components/monitoring_spec.py."""
    manifests = [m for _, m in recording_checks.kubernetes_manifests(rec)]
    if not any(m["kind"] == "PodMonitoring" for m in manifests):
        return {}
    replicas = [
        int(m["spec"]["worker"]["replicas"]) for m in manifests if m["kind"] in ("DaskCluster", "DaskWorkerGroup")
    ]
    autoscalers = [m for m in manifests if m["kind"] == "DaskAutoscaler"]
    idle = sum(replicas)
    full = idle + sum(int(a["spec"]["maximum"]) - int(a["spec"]["minimum"]) for a in autoscalers)
    per_million = float(prices_.load()["managed_prometheus_per_million_samples"])
    out: dict[str, Any] = {"perMillionSamples": per_million, "scrapeIntervalS": monitoring_spec.SCRAPE_INTERVAL_S}
    for key, workers in (("idle", idle), ("max", full)):
        samples = monitoring_spec.samples_per_hour(workers)
        out[key] = {"workers": workers, "samplesPerHour": samples, "hourly": round(samples / 1e6 * per_million, 4)}
    return out


def build_plan(rec: Recording) -> Plan:
    outputs = {k: (SECRET if k in rec.secret_outputs else v) for k, v in rec.outputs.items()}
    costs, fee, note = price(rec)
    findings = [
        {"resource": f.resource, "path": f.path, "reason": f.reason, "severity": f.severity}
        for f in recording_checks.all_findings(rec)
    ]
    plan = Plan(rec.stack, resource_records(rec), outputs, findings, costs, fee, note, quotas.needed(rec))
    plan.extras = extra_costs(rec, costs)
    plan.metrics = metrics_cost(rec)
    return plan


# --- rendering -----------------------------------------------------------------------------
def _metrics_lines(plan: Plan) -> list[str]:
    m = plan.metrics
    if not m:
        return []
    return [
        "",
        f"Managed Prometheus (not in the totals above): the PodMonitorings ingest ~{m['idle']['samplesPerHour']:,} "
        f"samples/h idle ({m['idle']['workers']} workers), ~{m['max']['samplesPerHour']:,} at full scale "
        f"({m['max']['workers']}): ${m['idle']['hourly']:.4f}/h idle, ${m['max']['hourly']:.4f}/h at full scale "
        f"(${m['perMillionSamples']}/million samples, every {m['scrapeIntervalS']} s; estimates). GKE's system and "
        "DCGM metrics are not counted.",
    ]


def _manifest_name(index: int, manifest: dict[str, Any]) -> str:
    meta = manifest.get("metadata") or {}
    return (
        f"{index:02d}-{manifest['kind'].lower()}-{meta.get('namespace', 'cluster')}-{meta.get('name', 'unnamed')}.yaml"
    )


FIRST_KEYS = ("apiVersion", "kind", "metadata")  # a manifest's usual head; every other key sorted


def canonical(value: Any, top: bool = True) -> Any:
    """`value` with every mapping's keys in a fixed order (a manifest's head first), so the same
    object always prints the same, whatever order the program's outputs resolved in."""
    if isinstance(value, dict):
        keys = sorted(
            value, key=lambda k: (FIRST_KEYS.index(k) if top and k in FIRST_KEYS else len(FIRST_KEYS), str(k))
        )
        return {k: canonical(value[k], top=False) for k in keys}
    if isinstance(value, list):
        return [canonical(v, top=False) for v in value]
    return value


def manifest_files(manifests: Iterable[dict[str, Any]]) -> dict[str, str]:
    """File name -> YAML for each manifest: ordered by kind, namespace and name, keys in
    `canonical` order. The recording's order follows when outputs resolved, which varies from
    run to run; a reviewer diffing two plans must see only what changed."""

    def identity(m: dict[str, Any]) -> tuple[str, str, str]:
        meta = m.get("metadata") or {}
        return (str(m.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name", "")))

    ordered = sorted(manifests, key=identity)
    return {_manifest_name(i, m): yaml.safe_dump(canonical(m), sort_keys=False) for i, m in enumerate(ordered)}


def write(plan: Plan, rec: Recording, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    manifests_dir = out / "manifests"
    manifests_dir.mkdir(exist_ok=True)
    for old in manifests_dir.glob("*.yaml"):
        old.unlink()
    written = [out / "plan.json", out / "summary.md"]
    (out / "plan.json").write_text(json.dumps(plan.to_json(), indent=2, sort_keys=True) + "\n")
    manifests = recording_checks.kubernetes_manifests(rec)
    for name, text in manifest_files(m for _, m in manifests).items():
        path = manifests_dir / name
        path.write_text(text)
        written.append(path)
    # What runs: the Deployments and Service the operator builds from each DaskCluster
    # (scanners see no pods inside a custom resource).
    operator_dir = out / "operator-manifests"
    operator_dir.mkdir(exist_ok=True)
    for old in operator_dir.glob("*.yaml"):
        old.unlink()
    bodies = [m for _, m in manifests]
    for cluster, groups in dask_operator.dask_clusters(bodies):
        for i, obj in enumerate(dask_operator.created_objects(cluster, groups)):
            path = operator_dir / _manifest_name(i, obj)
            path.write_text(yaml.safe_dump(canonical(obj), sort_keys=False))
            written.append(path)
    (out / "tfplan.json").write_text(json.dumps(tfplan.terraform_plan(rec), indent=2, sort_keys=True) + "\n")
    (out / "summary.md").write_text(summary_markdown(plan))
    return written


def _tree(plan: Plan) -> list[str]:
    children: dict[str, list[dict[str, Any]]] = {}
    for r in plan.resources:
        children.setdefault(r["parent"], []).append(r)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for r in children.get(parent, []):
            flags = [name for name, on in (("protect", r["options"]["protect"]), ("read", r["read"])) if on]
            lines.append(
                f"{'  ' * depth}- `{r['type']}` **{r['name']}**{' (' + ', '.join(flags) + ')' if flags else ''}"
            )
            walk(r["key"], depth + 1)

    walk("", 0)
    return lines


def _mermaid(plan: Plan) -> list[str]:
    ids = {r["key"]: f"r{i}" for i, r in enumerate(plan.resources)}
    lines = ["```mermaid", "graph LR"]
    for r in plan.resources:
        if r["custom"] or r["type"].startswith("gpu-dask:"):
            lines.append(f'  {ids[r["key"]]}["{r["name"]}<br/><small>{r["type"].split(":")[-1]}</small>"]')
    for r in plan.resources:
        for dep in r["dependencies"]:
            if dep in ids:
                lines.append(f"  {ids[dep]} --> {ids[r['key']]}")
    lines.append("```")
    return lines


def finding_lines(plan: Plan) -> list[str]:
    """Errors first, then warnings, one markdown bullet each."""
    return [
        f"- {severity} `{f['resource']}` `{f['path']}`: {f['reason']}"
        for severity, found in (("error", plan.errors), ("warning", plan.warnings))
        for f in found
    ]


def summary_markdown(plan: Plan) -> str:
    lines = [f"# gpu-dask plan: `{plan.stack}`", "", f"Judged by: {plan.engine_note}.", ""]
    if plan.findings:
        lines += [f"**{plan.verdict()}**", ""]
        lines += finding_lines(plan)
    else:
        lines += ["No findings: schemas, operator output, Helm values, GKE enums and scheduling all check out."]
    lines += ["", "## Outputs", "", "| output | value |", "|---|---|"]
    lines += [
        f"| `{k}` | `{json.dumps(v) if not isinstance(v, str) else v}` |" for k, v in sorted(plan.outputs.items())
    ]
    lines += [
        "",
        "## Cost (per hour)",
        "",
        "| pool | machine | spot | boot disk | nodes idle / min-max | $/node-hour (machine + disk) | $/h idle | $/h at max |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in plan.costs:
        lines.append(
            f"| {c.pool} | {c.machine_type} | {'yes' if c.spot else 'no'} | {c.disk_size_gb} GB {c.disk_type} | "
            f"{c.idle_nodes} / {c.min_nodes}-{c.max_nodes} | {c.hourly:.3f} ({c.machine_hourly:.2f} + {c.disk_hourly:.3f}) | "
            f"{c.idle_hourly:.2f} | {c.max_hourly:.2f} |" + (f" unpriced: {c.unpriced}" if c.unpriced else "")
        )
    lines += [
        f"| cluster fee | | | | | | {plan.cluster_fee_hour:.2f} | {plan.cluster_fee_hour:.2f} |",
        *[f"| {e.item} | | | | | {e.basis} | {e.idle_hourly:.3f} | {e.max_hourly:.3f} |" for e in plan.extras],
        "",
        f"Each GPU node that starts cold also costs ${plan.per_cold_node:.2f} once (NAT processing of its image pull).",
        "",
        f"**Idle: ${plan.idle_hourly:.2f}/h** (what runs when nobody works: replicas no autoscaler owns, "
        f"the scheduler and operator, every pool's minimum, boot disks, the cluster fee); "
        f"at full scale ${plan.max_hourly:.2f}/h. {plan.prices_note}.",
        *_metrics_lines(plan),
        "",
        "## Quotas needed at full scale",
        "",
        "| region | metric | needed | for |",
        "|---|---|---|---|",
        *[f"| {q['region']} | `{q['metric']}` | {q['count']:g} | {q['for']} |" for q in plan.quotas],
        "",
        *timing.markdown(plan.timeline),
        "## Resources",
        "",
        *_tree(plan),
        "",
        "## Dependencies",
        "",
        *_mermaid(plan),
        "",
    ]
    return "\n".join(lines)


# --- diff ----------------------------------------------------------------------------------
def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for k, v in value.items():
            flat.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return flat or {prefix: {}}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        flat = {}
        for i, v in enumerate(value):
            flat.update(_flatten(v, f"{prefix}[{i}]"))
        return flat
    return {prefix: value}


def change_kind(resource: dict[str, Any], path: str, old: Any = None, new: Any = None) -> str:
    """What changing `path` (under `inputs`) from `old` to `new` does: replace, node-roll, update, or ignored."""
    plain = path.replace("[", ".").split(".")
    dotted = ".".join(p.rstrip("]") for p in plain if not p.rstrip("]").isdigit())

    def covered(fields: list[str]) -> bool:
        return any(dotted == f or dotted.startswith(f + ".") for f in fields)

    if covered(resource["options"]["ignoreChanges"]):
        return "ignored"
    if covered(resource["options"]["replaceOnChanges"]):
        return "replace"
    found = replacement_entry(resource["type"], dotted)
    if new is None and old is not None and found is not None and found[1].get("omitted") == "kept":
        return "kept"
    return replacement_kind(resource["type"], dotted, old, new)


_VERBS = {"replace": "🔁 replace", "node-roll": "🔄 update, GKE recreates every node of", "update": "✏️ update"}
_NOTES = {
    "replace": " **(forces replacement)**",
    "node-roll": " **(GKE recreates every node)**",
    "ignored": " (ignored: ignoreChanges)",
    "kept": " (no longer sent: Optional + Computed, the provider keeps the current value; no change)",
    "update": "",
}


@dataclass
class Diff:
    base: str
    head: str
    added: list[str]
    removed: list[str]
    changed: dict[str, list[tuple[str, Any, Any, str]]]
    timeline: str = ""
    """How the change moves the modeled cold start and `pulumi up` (timeline.diff_line)."""
    renamed: dict[str, str] = field(default_factory=dict)
    """Base key -> head key: the head resource has an alias to the base one, so Pulumi updates
    it in place (its changed fields, if any, are under the head key in `changed`)."""

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.renamed)

    def kind(self, key: str) -> str:
        """The strongest change to one resource: replace, node-roll or update."""
        kinds = {c[3] for c in self.changed[key]}
        return next((k for k in ("replace", "node-roll") if k in kinds), "update")

    def replaced(self) -> list[str]:
        return [key for key in self.changed if self.kind(key) == "replace"]

    def node_rolls(self) -> list[str]:
        return [key for key in self.changed if self.kind(key) == "node-roll"]

    def markdown(self) -> str:
        lines = [f"# gpu-dask plan diff: `{self.base}` → `{self.head}`", ""]
        if self.empty:
            return "\n".join([*lines, "No changes.", ""])
        if self.timeline:
            lines += [self.timeline, ""]
        lines += [
            f"**{len(self.added)} to add, {len(self.changed)} to change ({len(self.replaced())} replaced, "
            f"{len(self.node_rolls())} recreating their nodes), {len(self.removed)} to remove"
            + (f", {len(self.renamed)} renamed through an alias**" if self.renamed else "**"),
            "",
        ]
        lines += [f"- add `{k}`" for k in self.added]
        lines += [f"- remove `{k}`" for k in self.removed]
        lines += [
            f"- rename `{old}` → `{new}` (an alias: the same resource, kept)" for old, new in self.renamed.items()
        ]
        for key, changes in self.changed.items():
            lines.append(f"- {_VERBS[self.kind(key)]} `{key}`")
            for path, old, new, kind in changes:
                lines.append(f"  - `{path}`: `{json.dumps(old)}` → `{json.dumps(new)}`{_NOTES[kind]}")
        return "\n".join([*lines, ""])


def diff_plans(base: dict[str, Any], head: dict[str, Any]) -> Diff:
    """Resource-level and field-level differences between two plan.json documents."""
    old = {r["key"]: r for r in base["resources"]}
    new = {r["key"]: r for r in head["resources"]}
    gone = old.keys() - new.keys()
    renamed = {}
    for key in sorted(new.keys() - old.keys()):
        matched = [alias for alias in new[key].get("aliases", []) if alias in gone and alias not in renamed]
        if matched:
            renamed[matched[0]] = key
    pairs = {key: key for key in old.keys() & new.keys()} | {new_key: old_key for old_key, new_key in renamed.items()}
    changed: dict[str, list[tuple[str, Any, Any, str]]] = {}
    for key in sorted(pairs):
        a = _flatten({"inputs": old[pairs[key]]["inputs"], "options": old[pairs[key]]["options"]})
        b = _flatten({"inputs": new[key]["inputs"], "options": new[key]["options"]})
        rows = []
        for path in sorted(a.keys() | b.keys()):
            if a.get(path) != b.get(path):
                field_path = path.split(".", 1)[1] if "." in path else path
                kind = (
                    change_kind(new[key], field_path, a.get(path), b.get(path))
                    if path.startswith("inputs.")
                    else "update"
                )
                rows.append((path, a.get(path), b.get(path), kind))
        if rows:
            changed[key] = rows
    _cascade_replacements(old, new, pairs, changed)
    line = timing.diff_line(timing.timeline(base["resources"]), timing.timeline(head["resources"]))
    return Diff(
        base["stack"],
        head["stack"],
        sorted(new.keys() - old.keys() - set(renamed.values())),
        sorted(gone - renamed.keys()),
        changed,
        line,
        renamed,
    )


def _cascade_replacements(
    old: dict[str, Any],
    new: dict[str, Any],
    pairs: dict[str, str],
    changed: dict[str, list[tuple[str, Any, Any, str]]],
) -> None:
    """A replaced resource gets a new id: each resource that depends on it and holds that id in a
    ForceNew field (the cluster's `subnetwork` after a subnet replacement) is replaced too, as
    the engine's preview shows it (the field becomes unknown, and unknown ForceNew replaces)."""

    def replaced() -> set[str]:
        return {k for k, rows in changed.items() if any(row[3] == "replace" for row in rows)}

    done: set[str] = set()
    while todo := replaced() - done:
        for gone_key in sorted(todo):
            done.add(gone_key)
            name = (old.get(pairs.get(gone_key, gone_key)) or new[gone_key])["inputs"].get("name")
            if not isinstance(name, str) or not name:
                continue
            for key in sorted(pairs):
                if gone_key not in new[key].get("dependencies", []):
                    continue
                for path, value in _flatten({"inputs": new[key]["inputs"]}).items():
                    field = path.split(".", 1)[1]
                    if (
                        isinstance(value, str)
                        and re.search(rf"/{re.escape(name)}$", value)
                        and change_kind(new[key], field) == "replace"
                    ):
                        row = (path, value, f"(the new id of {gone_key})", "replace")
                        if row not in changed.setdefault(key, []):
                            changed[key].append(row)


# --- pull request comment ------------------------------------------------------------------
COMMENT_LIMIT = 60_000  # GitHub refuses comments over 65,536 characters


def comment_marker(stack: str) -> str:
    """First line of a stack's PR comment: CI finds and edits the comment by it."""
    return f"<!-- gpu-dask-plan:{stack} -->"


def pr_comment(plan: Plan, diff: Diff | None) -> str:
    """The sticky pull-request comment and job summary for one stack: verdict, cost, changes
    against the base branch, then the full summary folded away."""
    verdict = plan.verdict()
    lines = [
        comment_marker(plan.stack),
        f"## gpu-dask offline plan: `{plan.stack}`",
        "",
        f"{verdict} · {len(plan.resources)} resources · idle ${plan.idle_hourly:.2f}/h, full scale ${plan.max_hourly:.2f}/h",
        "",
        f"Judged by {plan.engine_note}.",
        f"⏱️ {timing.headline(plan.timeline)} (modeled: `gpudask/plan/durations.yaml`).",
        "",
    ]
    lines += finding_lines(plan)
    lines += ["### Changes against the base branch", ""]
    if diff is None:
        lines += ["No base plan to compare with (a new stack, or the base branch predates `gpudask plan`).", ""]
    else:
        body = diff.markdown().split("\n", 2)[2] if "\n" in diff.markdown() else diff.markdown()
        lines += [body.strip(), ""]
        if diff.replaced():
            lines += [
                "⚠️ Replacing resources deletes and recreates them: " + ", ".join(f"`{k}`" for k in diff.replaced()),
                "",
            ]
        if diff.node_rolls():
            lines += [
                "⚠️ Updated in place, but GKE recreates every node (running workers are lost): "
                + ", ".join(f"`{k}`" for k in diff.node_rolls()),
                "",
            ]
    head = "\n".join(lines)
    summary = summary_markdown(plan)
    room = COMMENT_LIMIT - len(head) - 200
    if len(summary) > room:
        summary = summary[:room] + "\n\n… (cut; the whole summary is in the job's artifacts)"
    return head + "\n<details><summary>Full plan summary</summary>\n\n" + summary + "\n</details>\n"
