"""`gpudask plan`: record a stack, validate it, price it, write plan.json, manifests and summary.md."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.gke_spec import NODE_POOL_REPLACE_FIELDS
from gpudask import checks, tfplan, validate
from gpudask import timeline as timing
from gpudask.engine import PROJECT_DIR, Recording, _urn_of_provider_ref

PRICES_FILE = Path(__file__).with_name("prices.yaml")
SECRET = "[secret]"
# Who judged a plan. Only the mocks today: the Pulumi CLI builds from source here, but no
# provider plugin does (the Go module proxy serves no pulumi-kubernetes, pulumi-gcp or
# pulumi-tls provider module: GOTCHAS.md), and the engine plans nothing without them.
ENGINE_MOCKS = "mocks"
ENGINE_NOTES = {
    ENGINE_MOCKS: (
        "mocks only: the program ran under pulumi.runtime.Mocks and gpudask's own checks judged it; "
        "no Pulumi engine or provider checked inputs, awaited resources or decided replace vs update"
    ),
}


@dataclass
class PoolCost:
    pool: str
    machine_type: str
    spot: bool
    min_nodes: int
    max_nodes: int
    hourly_on_demand: float
    hourly_spot: float

    @property
    def hourly(self) -> float:
        return self.hourly_spot if self.spot else self.hourly_on_demand


@dataclass
class Plan:
    stack: str
    resources: list[dict[str, Any]]
    outputs: dict[str, Any]
    findings: list[dict[str, str]]
    costs: list[PoolCost] = field(default_factory=list)
    cluster_fee_hour: float = 0.0
    prices_note: str = ""
    engine: str = ENGINE_MOCKS

    @property
    def engine_note(self) -> str:
        return ENGINE_NOTES[self.engine]

    @property
    def idle_hourly(self) -> float:
        return self.cluster_fee_hour + sum(c.hourly * c.min_nodes for c in self.costs)

    @property
    def max_hourly(self) -> float:
        return self.cluster_fee_hour + sum(c.hourly * c.max_nodes for c in self.costs)

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
            "cost": {
                "pools": [asdict(c) | {"hourly": c.hourly} for c in self.costs],
                "clusterFeeHour": self.cluster_fee_hour,
                "idleHourly": round(self.idle_hourly, 3),
                "maxHourly": round(self.max_hourly, 3),
                "note": self.prices_note,
            },
        }


def _short(urn: str) -> str:
    """A stack-independent key: type::name (URNs embed the stack name)."""
    if not urn:
        return ""
    parts = urn.split("::")
    return f"{parts[-2].split('$')[-1]}::{parts[-1]}"


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
                "provider": _short(_urn_of_provider_ref(r.provider)),
                "custom": r.custom,
                "read": r.read,
                "inputs": inputs,
                "dependencies": sorted(_short(d) for d in r.dependencies),
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


def price(rec: Recording) -> tuple[list[PoolCost], float, str]:
    prices = yaml.safe_load(PRICES_FILE.read_text())
    costs = []
    for p in rec.of_type(checks.NODE_POOL):
        config = p.inputs.get("nodeConfig") or {}
        machine = config.get("machineType", "")
        accelerators = config.get("guestAccelerators") or []
        if accelerators:
            gpu_price = prices["per_gpu_hour"][accelerators[0]["type"]]
            gpus = sum(int(a["count"]) for a in accelerators)
            on_demand, spot = gpu_price["on_demand"] * gpus, gpu_price["spot"] * gpus
        else:
            vm = prices["per_machine_hour"].get(machine, {"on_demand": 0.0, "spot": 0.0})
            on_demand, spot = vm["on_demand"], vm["spot"]
        scaling = p.inputs.get("autoscaling") or {}
        costs.append(
            PoolCost(
                pool=p.inputs.get("name", p.name),
                machine_type=machine,
                spot=bool(config.get("spot")),
                min_nodes=int(scaling.get("totalMinNodeCount", 0)),
                max_nodes=int(scaling.get("totalMaxNodeCount", 0)),
                hourly_on_demand=round(on_demand, 3),
                hourly_spot=round(spot, 3),
            )
        )
    note = f"{prices['region']} list prices of {prices['date']} ({PRICES_FILE.relative_to(PROJECT_DIR)}); estimates"
    if not rec.of_type(checks.CLUSTER):
        # existingCluster: the cluster and its nodes are someone else's bill.
        return costs, 0.0, "no GKE cluster or pool is declared (existingCluster): their cost is not this stack's"
    return costs, float(prices["cluster_fee_hour"]), note


def build_plan(rec: Recording) -> Plan:
    outputs = {k: (SECRET if k in rec.secret_outputs else v) for k, v in rec.outputs.items()}
    costs, fee, note = price(rec)
    findings = [{"resource": f.resource, "path": f.path, "reason": f.reason} for f in checks.all_findings(rec)]
    return Plan(rec.stack, resource_records(rec), outputs, findings, costs, fee, note)


# --- rendering -----------------------------------------------------------------------------
def _manifest_name(index: int, manifest: dict[str, Any]) -> str:
    meta = manifest.get("metadata") or {}
    return (
        f"{index:02d}-{manifest['kind'].lower()}-{meta.get('namespace', 'cluster')}-{meta.get('name', 'unnamed')}.yaml"
    )


def write(plan: Plan, rec: Recording, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    manifests_dir = out / "manifests"
    manifests_dir.mkdir(exist_ok=True)
    for old in manifests_dir.glob("*.yaml"):
        old.unlink()
    written = [out / "plan.json", out / "summary.md"]
    (out / "plan.json").write_text(json.dumps(plan.to_json(), indent=2, sort_keys=True) + "\n")
    manifests = checks.kubernetes_manifests(rec)
    for i, (_, manifest) in enumerate(manifests):
        path = manifests_dir / _manifest_name(i, manifest)
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        written.append(path)
    # What runs: the Deployments and Service the operator builds from each DaskCluster
    # (scanners see no pods inside a custom resource).
    operator_dir = out / "operator-manifests"
    operator_dir.mkdir(exist_ok=True)
    for old in operator_dir.glob("*.yaml"):
        old.unlink()
    bodies = [m for _, m in manifests]
    for cluster in (m for m in bodies if m["kind"] == "DaskCluster"):
        groups = [
            m for m in bodies if m["kind"] == "DaskWorkerGroup" and m["spec"]["cluster"] == cluster["metadata"]["name"]
        ]
        for i, obj in enumerate(validate.operator_objects(cluster, groups)):
            path = operator_dir / _manifest_name(i, obj)
            path.write_text(yaml.safe_dump(obj, sort_keys=False))
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


def summary_markdown(plan: Plan) -> str:
    lines = [f"# gpu-dask plan: `{plan.stack}`", "", f"Judged by: {plan.engine_note}.", ""]
    if plan.findings:
        lines += [f"**{len(plan.findings)} finding(s)**", ""]
        lines += [f"- `{f['resource']}` `{f['path']}`: {f['reason']}" for f in plan.findings]
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
        "| pool | machine | spot | nodes | $/node-hour | $/h at min | $/h at max |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in plan.costs:
        lines.append(
            f"| {c.pool} | {c.machine_type} | {'yes' if c.spot else 'no'} | {c.min_nodes}-{c.max_nodes} | "
            f"{c.hourly:.2f} (on-demand {c.hourly_on_demand:.2f}, spot {c.hourly_spot:.2f}) | {c.hourly * c.min_nodes:.2f} | {c.hourly * c.max_nodes:.2f} |"
        )
    lines += [
        f"| cluster fee | | | | | {plan.cluster_fee_hour:.2f} | {plan.cluster_fee_hour:.2f} |",
        "",
        f"**Idle: ${plan.idle_hourly:.2f}/h** (every pool at its minimum); at full scale ${plan.max_hourly:.2f}/h. {plan.prices_note}.",
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


def _replaces(resource: dict[str, Any], path: str) -> bool:
    plain = path.replace("[", ".").split(".")
    dotted = ".".join(p.rstrip("]") for p in plain if not p.rstrip("]").isdigit())
    if resource["type"] == checks.NODE_POOL and any(
        dotted == f or dotted.startswith(f + ".") for f in NODE_POOL_REPLACE_FIELDS
    ):
        return True
    if resource["type"] == checks.CLUSTER and dotted in (
        "name",
        "location",
        "network",
        "subnetwork",
        "privateClusterConfig.masterIpv4CidrBlock",
    ):
        return True
    return any(dotted == f or dotted.startswith(f + ".") for f in resource["options"]["replaceOnChanges"])


@dataclass
class Diff:
    base: str
    head: str
    added: list[str]
    removed: list[str]
    changed: dict[str, list[tuple[str, Any, Any, bool]]]
    timeline: str = ""
    """How the change moves the modeled cold start and `pulumi up` (timeline.diff_line)."""

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def replaced(self) -> list[str]:
        return [key for key, changes in self.changed.items() if any(c[3] for c in changes)]

    def markdown(self) -> str:
        lines = [f"# gpu-dask plan diff: `{self.base}` → `{self.head}`", ""]
        if self.empty:
            return "\n".join([*lines, "No changes.", ""])
        if self.timeline:
            lines += [self.timeline, ""]
        lines += [
            f"**{len(self.added)} to add, {len(self.changed)} to change ({len(self.replaced())} replaced), {len(self.removed)} to remove**",
            "",
        ]
        lines += [f"- add `{k}`" for k in self.added]
        lines += [f"- remove `{k}`" for k in self.removed]
        for key, changes in self.changed.items():
            verb = "🔁 replace" if any(c[3] for c in changes) else "✏️ update"
            lines.append(f"- {verb} `{key}`")
            for path, old, new, replace in changes:
                lines.append(
                    f"  - `{path}`: `{json.dumps(old)}` → `{json.dumps(new)}`{' **(forces replacement)**' if replace else ''}"
                )
        return "\n".join([*lines, ""])


def diff_plans(base: dict[str, Any], head: dict[str, Any]) -> Diff:
    """Resource-level and field-level differences between two plan.json documents."""
    old = {r["key"]: r for r in base["resources"]}
    new = {r["key"]: r for r in head["resources"]}
    changed: dict[str, list[tuple[str, Any, Any, bool]]] = {}
    for key in sorted(old.keys() & new.keys()):
        a = _flatten({"inputs": old[key]["inputs"], "options": old[key]["options"]})
        b = _flatten({"inputs": new[key]["inputs"], "options": new[key]["options"]})
        rows = []
        for path in sorted(a.keys() | b.keys()):
            if a.get(path) != b.get(path):
                field_path = path.split(".", 1)[1] if "." in path else path
                rows.append(
                    (path, a.get(path), b.get(path), path.startswith("inputs.") and _replaces(new[key], field_path))
                )
        if rows:
            changed[key] = rows
    line = timing.diff_line(timing.timeline(base["resources"]), timing.timeline(head["resources"]))
    return Diff(
        base["stack"], head["stack"], sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys()), changed, line
    )


# --- pull request comment ------------------------------------------------------------------
COMMENT_LIMIT = 60_000  # GitHub refuses comments over 65,536 characters


def comment_marker(stack: str) -> str:
    """First line of a stack's PR comment: CI finds and edits the comment by it."""
    return f"<!-- gpu-dask-plan:{stack} -->"


def pr_comment(plan: Plan, diff: Diff | None) -> str:
    """The sticky pull-request comment and job summary for one stack: verdict, cost, changes
    against the base branch, then the full summary folded away."""
    verdict = f"❌ {len(plan.findings)} finding(s)" if plan.findings else "✅ no findings"
    lines = [
        comment_marker(plan.stack),
        f"## gpu-dask offline plan: `{plan.stack}`",
        "",
        f"{verdict} · {len(plan.resources)} resources · idle ${plan.idle_hourly:.2f}/h, full scale ${plan.max_hourly:.2f}/h",
        "",
        f"Judged by {plan.engine_note}.",
        f"⏱️ {timing.headline(plan.timeline)} (modeled: `gpudask/durations.yaml`).",
        "",
    ]
    lines += [f"- `{f['resource']}` `{f['path']}`: {f['reason']}" for f in plan.findings]
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
    head = "\n".join(lines)
    summary = summary_markdown(plan)
    room = COMMENT_LIMIT - len(head) - 200
    if len(summary) > room:
        summary = summary[:room] + "\n\n… (cut; the whole summary is in the job's artifacts)"
    return head + "\n<details><summary>Full plan summary</summary>\n\n" + summary + "\n</details>\n"
