"""The real Kubernetes diff of a pull request: the base branch's Kubernetes half up on a local control plane,
then the pull request's program previewed against that state by the real engine. No cloud credentials.

`python -m gpudask engine-diff <stack> --base <checkout of the base> --out build/<stack>` writes
`engine.md` (the provider's own verdicts) and `engine.json`; the PR workflow appends `engine.md` to the
offline plan's comment.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gpudask.local import engine
from gpudask.local.engine import Engine, EngineError, Result

# The engine's step ops a reviewer must see, most dangerous first; `same` is counted, not listed.
SHOWN_OPS = ("replace", "delete-replaced", "create-replacement", "delete", "update", "create")
MARKER = "<!-- gpu-dask engine diff: {stack} -->"


def comment(stack: str, base: Result | None, preview: Result, base_note: str = "") -> str:
    """Markdown for the PR: what the real engine would do to the base branch's Kubernetes half."""
    lines = [
        MARKER.format(stack=stack),
        f"### `{stack}`: the real engine's preview of the Kubernetes half",
        "",
        f"Judge: the Pulumi engine (CLI {engine.cli_version()}) and pulumi-resource-kubernetes "
        f"{engine.provider_version()}, built from source, previewing this pull request against the base branch's "
        "Kubernetes half deployed on a local control plane (no cloud credentials). The GCP half is judged by "
        "the offline plan above (the program under mocks): its provider cannot be built here.",
        "",
    ]
    if base is None:
        lines += [
            f"No base deployment: {base_note or 'the stack is new in this pull request'}; every resource is a create.",
            "",
        ]
    elif not base.ok:
        lines += [
            "**The base branch's Kubernetes half did not go up on the engine**, so this preview starts empty:",
            "",
            "```",
            base.error.strip()[:1500],
            "```",
            "",
        ]
    if not preview.ok:
        lines += [
            "**The engine refused this pull request's program:**",
            "",
            "```",
            preview.error.strip()[:3000],
            "```",
            "",
        ]
        return "\n".join(lines) + "\n"
    # One row per resource, its strongest verdict (a replacement is also a delete-replaced and a
    # create-replacement step); the fields any of its steps named.
    rank = {
        op: i for i, op in enumerate(("replace", "delete-replaced", "create-replacement", "delete", "update", "create"))
    }
    by_urn: dict[str, dict[str, str]] = {}
    for step in preview.steps:
        if step["op"] not in SHOWN_OPS or step["type"] == "pulumi:pulumi:Stack":
            continue
        seen = by_urn.get(step["urn"])
        if seen is None or rank[step["op"]] < rank[seen["op"]]:
            by_urn[step["urn"]] = {**step, "diffs": step["diffs"] or (seen or {}).get("diffs", "")}
        elif step["diffs"] and not seen["diffs"]:
            seen["diffs"] = step["diffs"]
    shown = list(by_urn.values())
    summary = ", ".join(f"{n} {op}" for op, n in sorted(preview.summary.items()))
    if not shown:
        lines += [f"No change to the Kubernetes half ({summary}).", ""]
        return "\n".join(lines) + "\n"
    lines += [f"Summary: {summary}.", "", "| verdict | resource | type | fields |", "|---|---|---|---|"]
    order = {op: i for i, op in enumerate(SHOWN_OPS)}
    for step in sorted(shown, key=lambda s: (order[s["op"]], s["urn"])):
        name = step["urn"].rsplit("::", 1)[-1]
        verdict = f"**{step['op']}**" if step["op"] in ("replace", "delete", "delete-replaced") else step["op"]
        lines.append(f"| {verdict} | `{name}` | `{step['type']}` | {step['diffs'] or ''} |")
    return "\n".join(lines) + "\n"


def engine_diff(
    stack: str,
    base_checkout: Path | None,
    out: Path,
    *,
    head_checkout: Path = engine.PROJECT_DIR,
    log: Callable[[str], None] | None = None,
    timeout: float = 600.0,
) -> tuple[Result | None, Result]:
    """Deploy the base's Kubernetes half (if the base has the stack), preview the head against it; write engine.md/json."""
    from gpudask.local.cluster.controlplane import ControlPlane
    from gpudask.local.cluster.nodes import stack_nodes
    from gpudask.local.cluster.runtime import dask_namespace
    from gpudask.record.recorder import run_program

    say = log or (lambda _line: None)
    began = time.monotonic()
    rec = run_program(stack)  # the pull request's pools shape the nodes
    base: Result | None = None
    note = ""
    has_base = base_checkout is not None and (base_checkout / "stacks" / f"Pulumi.{stack}.yaml").exists()
    if base_checkout is None:
        note = "no base checkout given"
    elif not has_base:
        note = f"the base branch has no stacks/Pulumi.{stack}.yaml"
    with (
        tempfile.TemporaryDirectory(prefix="gpudask-engine-diff-") as tmp,
        ControlPlane(log=log) as cp,
        stack_nodes(cp, rec, process_backed_namespaces=(dask_namespace(rec),)),
    ):
        work = Path(tmp)
        if has_base and base_checkout is not None:
            try:
                with engine.stack_up(cp, rec, work, checkout=base_checkout, log=log, timeout=timeout) as up:
                    base = up.result
                    say(f"base up: {'ok' if base.ok else 'FAILED'} {base.summary}")
                    preview = up.engine.run("preview", checkout=head_checkout, timeout=timeout)
            except EngineError as err:
                base = Result("up", stack, False, error=str(err))
                preview = Engine(stack, cp.kubeconfig, work / "fresh", checkout=head_checkout).run(
                    "preview", timeout=timeout
                )
        else:
            preview = Engine(stack, cp.kubeconfig, work, checkout=head_checkout).run("preview", timeout=timeout)
    say(f"preview: {'ok' if preview.ok else 'FAILED'} {preview.summary} ({time.monotonic() - began:.1f} s in all)")
    out.mkdir(parents=True, exist_ok=True)
    (out / "engine.md").write_text(comment(stack, base, preview, note))
    record = {"stack": stack, "base": base.__dict__ if base else None, "preview": preview.__dict__}
    (out / "engine.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return base, preview
