"""One Automation API operation of the real Pulumi engine on a stack's Kubernetes half, in a process of its own.

Run by path (`python gpudask/local/engine/program.py REQUEST.json`) by `gpudask.local.engine`, never imported by it:
- a process of its own, because the Automation API's gRPC threads make a later fork() crash its child
  (the operator the harness starts); one operation per process avoids it (issue 25);
- by path, so the program's `components` (and `__main__.py`) come from the checkout the request names:
  the PR job previews the PR's program against state the base branch's program made.

The program is the stack's own. An existingCluster stack runs its real `__main__.py`, unchanged, with
`existingCluster` pointing at the local control plane. A stack that creates GKE runs its Kubernetes half
(`components.kubernetes_half`, which `__main__.py` declares too, same names) on a provider named as the
real one ("gke") and built from the ambient KUBECONFIG: the GCP half is not declared, because the GCP
provider cannot be built here (GOTCHAS.md). Two stand-ins, each named in the output: pulumi-tls (not
buildable either) by certificates the harness made, and, for the internal load balancer, the reserved
address `gcp.compute.Address` would hold.

The last line of stdout is one JSON object: ok, summary, outputs, steps (the engine's own verdict per
resource), seconds, error.
"""

from __future__ import annotations

import json
import runpy
import sys
import time
import traceback
from pathlib import Path
from typing import Any, cast

# Run by path: the folder of this file is sys.path[0]; it must not shadow top-level names.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

STAND_IN_TLS_TYPE = "gpu-dask:engine:StandInTls"


def _program(request: dict[str, Any]) -> Any:
    checkout = Path(request["checkout"])

    def program() -> None:
        import pulumi
        import pulumi_kubernetes as k8s

        from components import kubernetes_half

        for spec in request.get("variants", []):
            _register_variant(spec)
        settings = kubernetes_half.settings_from_config()
        hooks = [_load(spec) for spec in request.get("hooks", [])]
        if settings.existing_cluster is not None:
            # The real program, as `pulumi up` runs it: nothing of it is stood in.
            runpy.run_path(str(checkout / "__main__.py"), run_name="__main__")
            return
        provider = k8s.Provider("gke", enable_server_side_apply=True)
        dask = kubernetes_half.declare(
            settings,
            provider,
            tls_issuer=_stand_in_tls(Path(request["tls_dir"])) if settings.dask.tls else None,
            **_address_stand_in(kubernetes_half, request),
        )
        kubernetes_half.export_outputs(settings, dask)
        pulumi.export("engineStandIns", sorted(request.get("stand_ins", [])))
        for hook in hooks:  # a broken variant that declares something more (named in the test id)
            hook(settings, dask, provider)

    return program


def _load(spec: str) -> Any:
    import importlib

    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def _register_variant(spec: str) -> None:
    """A broken variant, `module:function`: function(type_, name, props, opts) edits a resource's inputs as
    the engine sees them (camelCase, resolved) or its options, and returns True when it changed something."""
    import copy

    import pulumi

    edit = _load(spec)

    def tree_copy(value: Any) -> Any:
        """Dicts and lists copied, everything else shared: an input may be an Output, which cannot be deep-copied."""
        if isinstance(value, dict):
            return {k: tree_copy(v) for k, v in value.items()}
        if isinstance(value, list):
            return [tree_copy(v) for v in value]
        return value

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        props = tree_copy(dict(args.props))
        opts = copy.copy(args.opts)
        if edit(args.type_, args.name, props, opts):
            return pulumi.ResourceTransformResult(props, opts)
        return None

    pulumi.runtime.register_resource_transform(transform)


def _address_stand_in(kubernetes_half: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The reserved internal address, where the Kubernetes half takes one (it stands in for gcp.compute.Address)."""
    import inspect

    if "internal_address" in inspect.signature(kubernetes_half.declare).parameters:
        return {"internal_address": request.get("internal_address", "")}
    return {}


def _stand_in_tls(folder: Path) -> Any:
    """A TLS issuer with DaskTls' shape whose certificates the harness made (pulumi-tls cannot be built here)."""
    import hashlib

    import pulumi
    import pulumi_kubernetes as k8s

    from components import security_spec

    pems = {path.name: path.read_text() for path in folder.glob("*.pem")}

    class StandInTls(pulumi.ComponentResource):
        def __init__(self, name: str, args: Any, opts: pulumi.ResourceOptions | None = None):
            super().__init__(STAND_IN_TLS_TYPE, name, None, opts)
            self.secret = k8s.core.v1.Secret(
                f"{name}-secret",
                metadata=cast(Any, security_spec.tls_secret_metadata(args.dask_cluster, args.namespace)),
                type="Opaque",
                string_data={key: pulumi.Output.secret(pems[key]) for key in security_spec.TLS_SECRET_KEYS},
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
            )
            self.ca_cert_pem = pulumi.Output.from_input(pems["ca.pem"])
            digest = hashlib.sha256("".join(pems[k] for k in ("ca.pem", "scheduler.pem", "worker.pem")).encode())
            self.certificates_digest = pulumi.Output.from_input(digest.hexdigest())
            self.client_cert_pem = pulumi.Output.from_input(pems["client.pem"])
            self.client_key_pem = pulumi.Output.secret(pems["client-key.pem"])
            self.register_outputs({"caCertPem": self.ca_cert_pem})

    return StandInTls


def _steps_of(events: list[Any]) -> list[dict[str, str]]:
    """The engine's verdict per resource (create, update, replace, delete, same, ...), from its events."""
    steps = []
    for event in events:
        pre = getattr(event, "resource_pre_event", None)
        if pre is None:
            continue
        meta = pre.metadata
        op = getattr(meta.op, "value", str(meta.op))
        fields = list(meta.diffs or []) or list(meta.keys or []) or sorted((meta.detailed_diff or {}).keys())
        steps.append({"op": op, "urn": meta.urn, "type": meta.type, "diffs": ",".join(fields)})
    return steps


def main(request_file: str) -> int:
    request = json.loads(Path(request_file).read_text())
    sys.path.insert(0, request["checkout"])
    import pulumi.automation as auto

    began = time.monotonic()
    result: dict[str, Any] = {"ok": False, "op": request["op"], "stack": request["stack"]}
    events: list[Any] = []
    lines: list[str] = []
    try:
        command = auto.PulumiCommand(root=request["cli_root"], skip_version_check=True)
        stack = auto.create_or_select_stack(
            stack_name=request["stack"],
            project_name="gpu-dask",
            program=_program(request),
            opts=auto.LocalWorkspaceOptions(
                work_dir=request["project_dir"],
                pulumi_home=request["pulumi_home"],
                pulumi_command=command,
                env_vars=request["env"],
                secrets_provider="passphrase",
            ),
        )
        common: dict[str, Any] = {"on_output": lines.append, "on_event": events.append, "color": "never"}
        op = request["op"]
        if op == "up":
            done = stack.up(
                expect_no_changes=request.get("expect_no_changes") or None,
                refresh=request.get("refresh") or None,
                **common,
            )
            result["summary"] = dict(done.summary.resource_changes or {})
            result["outputs"] = {k: v.value for k, v in done.outputs.items()}
        elif op == "preview":
            done = stack.preview(
                expect_no_changes=request.get("expect_no_changes") or None,
                refresh=request.get("refresh") or None,
                diff=True,
                **common,
            )
            result["summary"] = {k: v for k, v in done.change_summary.items()}
        elif op == "refresh":
            done = stack.refresh(on_output=lines.append, on_event=events.append, color="never")
            result["summary"] = dict(done.summary.resource_changes or {})
        elif op == "destroy":
            done = stack.destroy(on_output=lines.append, on_event=events.append, color="never")
            result["summary"] = dict(done.summary.resource_changes or {})
        elif op == "outputs":
            result["outputs"] = {k: v.value for k, v in stack.outputs().items()}
        else:
            raise ValueError(f"op {op!r}: one of up, preview, refresh, destroy, outputs")
        result["ok"] = True
    except Exception as err:  # noqa: BLE001 - reported whole to the harness, which decides
        result["error"] = f"{type(err).__name__}: {err}"
        result["traceback"] = traceback.format_exc()[-4000:]
    result["steps"] = _steps_of(events)
    if "summary" not in result:  # a failed operation raises: its summary is in the engine's last event
        for event in events:
            summary = getattr(event, "summary_event", None)
            if summary is not None:
                result["summary"] = {str(k): int(v) for k, v in (summary.resource_changes or {}).items()}
    result["output"] = "".join(line if line.endswith("\n") else line + "\n" for line in lines)[-20000:]
    result["seconds"] = round(time.monotonic() - began, 1)
    sys.stdout.write("\n" + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
