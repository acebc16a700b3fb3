"""Command line: `python -m gpudask plan|rehearse|connect <stack> ...` (see --help)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from components.catalog import GPU_RESOURCE
from gpudask.plan import report as planning
from gpudask.record.recorder import PROJECT_DIR, ProgramFailed, Recording, load_config, run_program, stacks

if TYPE_CHECKING:
    from gpudask.local.cluster.runtime import DaskRuntime

EXIT_CLEAN, EXIT_FINDINGS, EXIT_PROGRAM_FAILED = 0, 1, 2


def _record(stack: str, console: Console) -> tuple[Recording | None, list[str]]:
    """The stack's recording, or None and the problems (already printed) when it cannot run."""
    try:
        with console.status(f"running __main__.py for stack {stack} under the recorder (Pulumi mocks)"):
            return run_program(stack), []
    except FileNotFoundError as err:
        console.print(f"[red]{err}[/red]")
        return None, [str(err)]
    except ProgramFailed as failed:
        problems = getattr(failed.cause, "problems", None) or [str(failed.cause)]
        console.print(f"[red bold]The program failed for stack {stack}; nothing was declared.[/red bold]")
        for problem in problems:
            console.print(f"  - {problem}", markup=False, highlight=False)
        return None, problems


def _plan_json(stack_or_file: str, console: Console) -> dict:
    path = Path(stack_or_file)
    if path.suffix == ".json" and path.exists():
        return json.loads(path.read_text())
    with console.status(f"recording stack {stack_or_file} for the diff"):
        rec = run_program(stack_or_file)
    return planning.build_plan(rec).to_json()


def cmd_plan(args: argparse.Namespace) -> int:
    console = Console(stderr=args.json)
    out = Path(args.out) if args.out else PROJECT_DIR / "build" / args.stack
    rec, problems = _record(args.stack, console)
    if rec is None:
        if args.json:
            print(json.dumps({"stack": args.stack, "error": problems}))
        return EXIT_PROGRAM_FAILED

    with console.status("validating against Kubernetes, CRD, chart and GKE schemas"):
        plan = planning.build_plan(rec)
    written = planning.write(plan, rec, out)
    diff = None
    if args.diff:
        base = _plan_json(args.diff, console)
        diff = planning.diff_plans(base, plan.to_json())
        (out / "diff.md").write_text(diff.markdown())
    if diff is None:
        (out / "diff.md").unlink(missing_ok=True)  # never leave an older run's diff behind
    (out / "comment.md").write_text(planning.pr_comment(plan, diff))

    if args.json:
        result = plan.to_json() | {"out": str(out)}
        if diff is not None:
            result["diff"] = {
                "added": diff.added,
                "removed": diff.removed,
                "renamed": diff.renamed,
                "replaced": diff.replaced(),
                "nodeRolls": diff.node_rolls(),
                "changed": {k: [c[0] for c in v] for k, v in diff.changed.items()},
            }
        print(json.dumps(result, indent=2, default=str))
        return EXIT_FINDINGS if plan.fails(args.strict) else EXIT_CLEAN

    kinds: dict[str, int] = {}
    for r in plan.resources:
        kinds[r["type"]] = kinds.get(r["type"], 0) + 1
    table = Table(title=f"stack {args.stack}: {len(plan.resources)} resources", show_lines=False)
    table.add_column("type")
    table.add_column("count", justify="right")
    for kind, count in sorted(kinds.items()):
        table.add_row(kind, str(count))
    console.print(table)
    costs = Table(title="cost per hour (estimates; machine + boot disk per node)")
    for col in ("pool", "machine", "spot", "nodes idle / min-max", "$/node-hour", "$/h idle", "$/h max"):
        costs.add_column(col)
    for c in plan.costs:
        costs.add_row(
            c.pool,
            c.machine_type,
            "yes" if c.spot else "no",
            f"{c.idle_nodes} / {c.min_nodes}-{c.max_nodes}",
            f"{c.hourly:.3f}" + (f" (unpriced: {c.unpriced})" if c.unpriced else ""),
            f"{c.idle_hourly:.2f}",
            f"{c.max_hourly:.2f}",
        )
    console.print(costs)
    console.print(
        f"idle ${plan.idle_hourly:.2f}/h (what runs when nobody works, cluster fee included), "
        f"full scale ${plan.max_hourly:.2f}/h ({plan.prices_note})"
    )
    quota_table = Table(title="quotas needed at full scale (ask before the first up)")
    for col in ("region", "metric", "needed", "for pools"):
        quota_table.add_column(col)
    for q in plan.quotas:
        quota_table.add_row(q["region"], q["metric"], f"{q['count']:g}", q["for"])
    console.print(quota_table)
    console.print(f"schedulerAddress: [bold]{plan.outputs.get('schedulerAddress')}[/bold]")
    console.print(f"judged by {plan.engine_note}", markup=False, highlight=False)
    if diff is not None:
        console.print(diff.markdown(), markup=False, highlight=False)
    if plan.errors:
        console.print(f"[red bold]{len(plan.errors)} error(s):[/red bold]")
        for f in plan.errors:
            console.print(f"  - {f['resource']}: {f['path']}: {f['reason']}", markup=False, highlight=False)
    if plan.warnings:
        fails = "failing the plan (--strict)" if args.strict else "not failing the plan (--strict would)"
        console.print(f"[yellow bold]{len(plan.warnings)} warning(s)[/yellow bold], {fails}:")
        for f in plan.warnings:
            console.print(f"  - {f['resource']}: {f['path']}: {f['reason']}", markup=False, highlight=False)
    if not plan.findings:
        console.print("[green]no findings[/green]: schemas, operator output, Helm values, GKE enums, scheduling")
    console.print(
        f"wrote {out}/ (plan.json, summary.md, {sum(p.parent.name == 'manifests' for p in written)} manifests, "
        f"{sum(p.parent.name == 'operator-manifests' for p in written)} operator-built, tfplan.json"
        f"{', diff.md' if diff else ''}, comment.md)"
    )
    return EXIT_FINDINGS if plan.fails(args.strict) else EXIT_CLEAN


def _one_line(arg: str) -> str:
    """An argument as one printed line: a preload's module text becomes a placeholder."""
    return f"<{arg.count(chr(10)) + 1}-line text>" if "\n" in arg else arg


# Set when a signal stopped the rehearsal: the command line then exits at once (see below).
_STOPPED_BY_SIGNAL = threading.Event()


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def cmd_rehearse_cluster(args: argparse.Namespace) -> int:
    """The stack's Kubernetes half up by the real Pulumi engine on a local control plane; what Kubernetes did with it."""
    import tempfile

    from gpudask.local import engine
    from gpudask.local.cluster.controlplane import ControlPlane, ControlPlaneError
    from gpudask.local.cluster.nodes import NodesError, stack_nodes
    from gpudask.local.cluster.observe import settle, stack_namespaces
    from gpudask.local.cluster.runtime import dask_namespace, print_runtime, settle_dask
    from gpudask.upstream import programs as upstream

    console = Console(stderr=True)
    rec, _ = _record(args.stack, console)
    if rec is None:
        return EXIT_PROGRAM_FAILED
    started = time.monotonic()
    problems: list[str] = []
    log = lambda line: console.print(line, markup=False, highlight=False)  # noqa: E731

    try:
        with (
            tempfile.TemporaryDirectory(prefix="gpudask-engine-") as work,
            ControlPlane(log=log) as cp,
            stack_nodes(cp, rec, process_backed_namespaces=(dask_namespace(rec),)) as nodes,
        ):
            version = cp.version()
            programs = upstream.load_programs()
            print(f"kube-apiserver /version: {version['gitVersion']} ({version['goVersion']}, {version['platform']})")
            for name in ("etcd", "kwok", "helm", "pulumi", "pulumi-kubernetes"):
                print(f"{name}: {programs[name].module}@{programs[name].version}")
            print(f"control plane ready in {cp.timings['ready_s']:.1f} s at {cp.server}")
            print(f"nodes ({len(nodes.names)}, Ready in {nodes.ready_s:.1f} s):")
            for node in nodes.objects:
                labels = node["metadata"]["labels"]
                alloc = node["status"]["allocatable"]
                gpus = alloc.get(GPU_RESOURCE, "0")
                print(
                    f"  {node['metadata']['name']}: pool {labels['cloud.google.com/gke-nodepool']}, "
                    f"{labels['node.kubernetes.io/instance-type']}, allocatable cpu {alloc['cpu']} "
                    f"memory {alloc['memory']} gpu {gpus}"
                    + (", spot" if labels.get("cloud.google.com/gke-spot") else "")
                )
            with engine.stack_up(cp, rec, Path(work), timeout=args.engine_timeout, log=log) as up:
                result = up.result
                print(
                    f"pulumi up (the real engine: CLI {engine.cli_version()}, pulumi-resource-kubernetes "
                    f"{engine.provider_version()}): {'ok' if result.ok else 'FAILED'} in {result.seconds:.1f} s, "
                    f"{result.summary}"
                )
                for step in result.steps:
                    if step["type"] != "pulumi:pulumi:Stack":
                        print(f"  {step['op']} {step['urn'].rsplit('::', 1)[-1]} ({step['type']})")
                for note in up.engine.notes:
                    print(f"  note: {note}")
                for stand_in in result.outputs.get("engineStandIns", []):
                    print(f"  stand-in: {stand_in}")
                if not result.ok:
                    problems.append(result.failure())
                for key in ("schedulerAddress", "dashboardUrl", "internalLoadBalancerIp"):
                    if key in result.outputs:
                        print(f"output {key}: {result.outputs[key]}")
                runtime = up.runtime
                dask_s, dask_problems = settle_dask(runtime, args.timeout)
                placement = settle(cp.kube(), rec, timeout=args.timeout)
                print(f"pods ({placement.seconds:.1f} s to settle):")
                for place in placement.pods:
                    print(f"  {place.line}")
                print(f"Dask pods backed by processes ({dask_s:.1f} s until Ready):")
                print_runtime(runtime)
                events = [
                    e
                    for ns in stack_namespaces(rec)
                    for e in cp.kube().list("v1", "Event", ns)
                    if e.get("source", {}).get("component") not in ("default-scheduler",)
                    and e.get("reportingComponent") not in ("default-scheduler",)
                ]
                if events:
                    print("events (controllers and the operator):")
                    for e in events:
                        obj = e.get("involvedObject") or {}
                        print(
                            f"  {obj.get('kind')}/{obj.get('namespace')}/{obj.get('name')}: {e.get('reason')}: {e.get('message')}"
                        )
                problems += placement.problems + dask_problems
                rss = cp.rss_mb()
                print(f"memory: {sum(rss.values()):.0f} MiB RSS ({', '.join(f'{k} {v:.0f}' for k, v in rss.items())})")
                if args.serve:
                    _serve_cluster(rec, runtime, console)
    except (ControlPlaneError, NodesError, upstream.UpstreamError) as err:
        console.print(f"[red bold]control plane failed:[/red bold] {escape(str(err))}", highlight=False, soft_wrap=True)
        return EXIT_PROGRAM_FAILED
    except engine.EngineError as err:
        problems.append(str(err))
    print(f"total {time.monotonic() - started:.1f} s, everything stopped")
    if problems:
        console.print(f"[red bold]{len(problems)} problem(s):[/red bold]")
        for problem in problems:
            console.print(f"  - {problem}", markup=False, highlight=False)
        return EXIT_FINDINGS
    console.print("[green]everything that should run runs[/green]")
    return EXIT_CLEAN


def cmd_engine_diff(args: argparse.Namespace) -> int:
    """engine.md: the provider's own verdicts for this checkout's Kubernetes half against the base's."""
    from gpudask.local.cluster.controlplane import ControlPlaneError
    from gpudask.local.engine import EngineError
    from gpudask.local.engine.diff import engine_diff
    from gpudask.upstream import programs as upstream

    console = Console(stderr=True)
    log = lambda line: console.print(line, markup=False, highlight=False)  # noqa: E731
    try:
        _base, preview = engine_diff(args.stack, args.base, args.out, log=log, timeout=args.timeout)
    except (ControlPlaneError, EngineError, upstream.UpstreamError) as err:
        console.print(f"[red bold]engine diff failed:[/red bold] {escape(str(err))}", highlight=False, soft_wrap=True)
        return EXIT_PROGRAM_FAILED
    print((args.out / "engine.md").read_text())
    return EXIT_CLEAN if preview.ok else EXIT_FINDINGS


def _serve_cluster(rec: Recording, runtime: DaskRuntime, console: Console) -> None:
    """Keep the control plane, the operator and the Dask processes up until Ctrl-C / SIGTERM,
    after saying how to reach them (the seeds' own commands work against them)."""
    from gpudask.local.rehearse import dask_cluster_and_groups

    cluster, _ = dask_cluster_and_groups(rec)
    name = cluster["metadata"]["name"]
    print(f"kubeconfig: {runtime.cp.kubeconfig}", flush=True)
    print(f"scheduler: {runtime.scheduler_address(name)}", flush=True)
    if runtime.tls_dir is not None and (runtime.tls_dir / "client.pem").exists():
        folder = runtime.tls_dir
        print(f"tls: ca={folder / 'ca.pem'} cert={folder / 'client.pem'} key={folder / 'client-key.pem'}", flush=True)
    print(f"try: KUBECONFIG=... kubectl get all -n {runtime.namespace} -l dask.org/cluster-name={name}", flush=True)
    previous = {signum: signal.signal(signum, _raise_interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        console.print("serving until Ctrl-C / SIGTERM")
        threading.Event().wait()
    except KeyboardInterrupt:
        console.print("stopping the control plane, the operator and the Dask processes")
        _STOPPED_BY_SIGNAL.set()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def cmd_rehearse(args: argparse.Namespace) -> int:
    if args.cluster:
        return cmd_rehearse_cluster(args)
    from distributed import Client

    from gpudask.local import rehearse, smoke

    console = Console(stderr=True)
    rec, _ = _record(args.stack, console)
    if rec is None:
        return EXIT_PROGRAM_FAILED
    # SIGINT and SIGTERM both unwind (so every process is stopped), set explicitly: a process
    # started in the background by a non-interactive shell inherits SIGINT ignored, and Python
    # then never installs its KeyboardInterrupt handler.
    previous = {signum: signal.signal(signum, _raise_interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with rehearse.rehearsal(rec, timeout=args.timeout) as running:
            print(f"scheduler: {running.address}", flush=True)
            print(f"dashboard: {running.dashboard}", flush=True)
            if running.tls_files:
                files = running.tls_files
                print(f"tls: ca={files['ca']} cert={files['client']} key={files['client-key']}", flush=True)
            for process in running.processes:
                print(f"{process.component} {process.name}: {' '.join(map(_one_line, process.argv))}", flush=True)
                for note in process.notes:
                    print(f"  note: {note}", flush=True)
            with Client(running.address, timeout=args.timeout, security=running.security()) as client:
                result = smoke.run(client, use_gpu_library=running.gpu)
            print(json.dumps({"stack": args.stack, **result}), flush=True)
            if not result["ok"]:
                console.print("[red bold]smoke workload failed[/red bold]: see the JSON line")
                return EXIT_FINDINGS
            if args.serve:
                console.print(f"serving {running.address} until Ctrl-C / SIGTERM")
                threading.Event().wait()
    except rehearse.RehearsalError as err:
        console.print(f"[red bold]rehearsal failed:[/red bold] {escape(str(err))}", highlight=False, soft_wrap=True)
        return EXIT_PROGRAM_FAILED
    except KeyboardInterrupt:
        console.print("stopped; every process of the rehearsal has exited")
        _STOPPED_BY_SIGNAL.set()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return EXIT_CLEAN


def cmd_connect(args: argparse.Namespace) -> int:
    from gpudask.client.connect import ConnectError, connect

    console = Console(stderr=True)
    try:
        with (
            console.status("connecting"),
            connect(
                stack=args.stack, outputs=args.outputs, timeout=args.timeout, check_versions=not args.no_version_check
            ) as conn,
        ):
            info = conn.client.scheduler_info()
            workers = info["workers"]
            gpus = sum((w.get("resources") or {}).get("GPU", 0) for w in workers.values())
            print(f"scheduler: {info['address']}")
            print(f"via: {conn.via}")
            print(f"dashboard: {conn.dashboard_command}")
            if conn.outputs.get("monitoringDashboardUrl"):
                # Cloud Monitoring (Managed Prometheus): no port-forward needed.
                print(f"monitoring: {conn.outputs['monitoringDashboardUrl']}")
            print(f"workers: {len(workers)} ({gpus:g} GPU)")
    except ConnectError as err:
        console.print(f"[red bold]cannot connect:[/red bold] {escape(str(err))}", highlight=False, soft_wrap=True)
        return EXIT_PROGRAM_FAILED
    return EXIT_CLEAN


def cmd_stacks(args: argparse.Namespace) -> int:
    """The stacks in stacks/, as a JSON list: CI derives its matrices from this. With
    --ci-reachable, the stacks left out (and why) are said on stderr."""
    listed = [s for s in stacks() if s not in set(args.exclude or [])]
    if args.ci_reachable:
        for stack in [s for s in listed if unreachable_from_ci(s)]:
            print(f"gpudask stacks: left out {stack}: {unreachable_from_ci(stack)}", file=sys.stderr)
            listed.remove(stack)
    print(json.dumps(listed))
    return EXIT_CLEAN


def unreachable_from_ci(stack: str) -> str | None:
    """Why CI's cloud jobs (preview, up, drift) cannot reach this stack's cluster, or None."""
    existing = load_config(stack).get("gpu-dask:existingCluster")
    if existing is None:
        return None
    context = json.loads(existing).get("context")
    return (
        f"an existingCluster stack reaches its cluster through context {context} of the ambient kubeconfig "
        "(KUBECONFIG), which no CI runner has; its offline plan still runs"
    )


def cmd_docs(args: argparse.Namespace) -> int:
    """Regenerate README.md's config reference and Pulumi.yaml's `config:` block from the config
    declaration (or, with --check, say which of them is stale)."""
    from gpudask.docs import config_reference

    if args.check:
        stale = config_reference.stale()
        print(
            f"stale: {', '.join(stale)}: run `python -m gpudask docs`"
            if stale
            else "README.md and Pulumi.yaml up to date"
        )
        return EXIT_FINDINGS if stale else EXIT_CLEAN
    changed = [
        name
        for name, write in (("README.md", config_reference.write), ("Pulumi.yaml", config_reference.write_pulumi_yaml))
        if write()
    ]
    print(f"updated: {', '.join(changed)}" if changed else "README.md and Pulumi.yaml already up to date")
    return EXIT_CLEAN


def cmd_upstream(args: argparse.Namespace) -> int:
    """Pinned upstream programs: print the pins, or build what is missing into the per-user cache."""
    from gpudask.upstream import programs as upstream

    console = Console(stderr=True)
    try:
        programs = upstream.load_programs()
        if args.action == "versions":
            for program in programs.values():
                state = "built" if upstream.is_built(program) else "not built"
                binaries = " ".join(program.binaries)
                print(f"{program.name}\t{program.module}@{program.version}\t{binaries}\t{state}")
            return EXIT_CLEAN
        results = upstream.build(args.programs, log=lambda line: console.print(line, markup=False, highlight=False))
    except upstream.UpstreamError as err:
        console.print(f"[red bold]upstream:[/red bold] {escape(str(err))}", highlight=False, soft_wrap=True)
        return EXIT_PROGRAM_FAILED
    for result in results:
        what = f"built in {result.seconds:.0f} s with go {result.go_version}" if result.built else "cached"
        print(f"{result.program.name} {result.program.version} {result.path / 'bin'} ({what})")
        reported = upstream.reported_version(result.program)
        if reported:
            print(f"  {next(iter(result.program.binaries))} reports: {reported}")
    return EXIT_CLEAN


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gpudask", description="gpu-dask tooling that needs no cloud account"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan", help="record, validate and price a stack offline")
    p.add_argument("stack", help=f"stack name ({', '.join(stacks())})")
    p.add_argument("--out", help="output folder (default build/<stack>/)")
    p.add_argument("--diff", metavar="OTHER", help="another stack name, or a saved plan.json, to diff against")
    p.add_argument("--json", action="store_true", help="print the plan as JSON on stdout")
    p.add_argument(
        "--strict", action="store_true", help="exit 1 on warnings too (by default only errors fail the plan)"
    )
    p.set_defaults(func=cmd_plan)
    r = sub.add_parser(
        "rehearse", help="run the stack's scheduler and workers as local processes, then a smoke workload"
    )
    r.add_argument("stack", help=f"stack name ({', '.join(stacks())})")
    r.add_argument(
        "--serve",
        action="store_true",
        help="keep the cluster up until Ctrl-C / SIGTERM (with --cluster: the control plane, operator and Dask "
        "processes; prints kubeconfig: and scheduler: lines)",
    )
    r.add_argument("--timeout", type=float, default=120.0, help="seconds for the cluster to start (default 120)")
    r.add_argument(
        "--cluster",
        action="store_true",
        help="`pulumi up` of the stack's Kubernetes half by the real engine onto a local Kubernetes control plane "
        "(etcd, API server, scheduler, kwok nodes), the operator and Dask pods as local processes",
    )
    r.add_argument(
        "--engine-timeout", type=float, default=600.0, help="seconds `pulumi up` may take with --cluster (default 600)"
    )
    r.set_defaults(func=cmd_rehearse)
    e = sub.add_parser(
        "engine-diff",
        help="the real engine's preview of the Kubernetes half against the base branch's, deployed on a local control plane",
    )
    e.add_argument("stack", help=f"stack name ({', '.join(stacks())})")
    e.add_argument("--base", type=Path, help="a checkout of the base branch (omitted: preview from an empty state)")
    e.add_argument("--out", type=Path, required=True, help="folder for engine.md and engine.json")
    e.add_argument("--timeout", type=float, default=600.0, help="seconds each engine operation may take (default 600)")
    e.set_defaults(func=cmd_engine_diff)
    c = sub.add_parser("connect", help="connect a client to a deployed stack's DaskCluster and report it")
    c.add_argument("stack", nargs="?", help="stack name, read with `pulumi stack output` (or give --outputs)")
    c.add_argument("--outputs", help="a saved `pulumi stack output --json --show-secrets` file")
    c.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the scheduler (default 10)")
    c.add_argument("--no-version-check", action="store_true", help="connect despite dask/distributed/python skew")
    c.set_defaults(func=cmd_connect)
    u = sub.add_parser("upstream", help="pinned upstream programs (Kubernetes, etcd, kwok, helm): versions | build")
    u.add_argument("action", choices=["versions", "build"], help="print the pins, or build what is missing")
    u.add_argument("programs", nargs="*", help="programs to build (default: all pinned)")
    u.set_defaults(func=cmd_upstream)
    st = sub.add_parser("stacks", help="the stacks in stacks/ as a JSON list (CI matrices)")
    st.add_argument("--except", dest="exclude", action="append", metavar="STACK", help="leave this stack out")
    st.add_argument(
        "--ci-reachable",
        action="store_true",
        help="only stacks whose cluster CI's cloud jobs can reach (not existingCluster ones: why, on stderr)",
    )
    st.set_defaults(func=cmd_stacks)
    d = sub.add_parser(
        "docs",
        help="regenerate README.md's config reference and Pulumi.yaml's config block from components/settings/keys.py",
    )
    d.add_argument("--check", action="store_true", help="only report whether it is stale (exit 1 if so)")
    d.set_defaults(func=cmd_docs)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    code = main()
    if _STOPPED_BY_SIGNAL.is_set():
        # Every process of the rehearsal is stopped and reaped; interpreter finalization after
        # the recorded program and Dask clients takes ~8 s more in C code (measured), which a
        # Ctrl-C / SIGTERM must not wait for.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
