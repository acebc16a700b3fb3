"""The program recorder: runs the real Pulumi program under `pulumi.runtime.Mocks` and records it.

`run_program("dev")` loads `Pulumi.yaml` (its config defaults, as the CLI applies them)
and `stacks/Pulumi.dev.yaml`, runs `__main__.py` in-process, and returns every resource
registered: type, name, parent, inputs, computed outputs, dependencies and resource
options, plus the stack outputs. No cloud account, no Pulumi CLI, no provider plugins.
"""

from __future__ import annotations

import base64
import contextvars
import copy
import json
import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

from gpudask.record import pulumi_internals as sdk
from gpudask.record.resource_types import CLUSTER, NODE_POOL, RELEASE

sdk.require_compatible_sdk()

PROJECT_DIR = Path(__file__).resolve().parents[2]
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class Recorded:
    """One registered (or read) resource, as the recorder saw it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    provider: str = ""
    dependencies: list[str] = field(default_factory=list)
    protect: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    replace_on_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    deleted_with: str = ""
    replace_with: list[str] = field(default_factory=list)
    read: bool = False
    secret_inputs: list[str] = field(default_factory=list)
    aliases: list[dict[str, Any]] = field(default_factory=list)
    """As sent to the engine: `{"spec": {"type": <old type>, ...}}` or `{"urn": <old URN>}`."""
    registered_outputs: dict[str, Any] | None = None
    """A component's `register_outputs(...)`, None until it calls it."""


class ProgramFailed(Exception):
    """The program raised: `cause` is its exception, `recording` what it declared before that."""

    def __init__(self, cause: BaseException, recording: Recording):
        super().__init__(str(cause))
        self.cause = cause
        self.recording = recording


@dataclass
class Recording:
    stack: str
    resources: dict[str, Recorded]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    config: dict[str, str] = field(default_factory=dict)
    """The config the program ran with (Pulumi.yaml defaults, stack file, overrides)."""

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources.values() if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Recorded:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} {name or ''}, found {[r.name for r in found]}")
        return found[0]

    def ancestors_and_dependencies(self, urn: str) -> set[str]:
        """Every URN this resource waits for, directly or through its dependencies and parents."""
        seen: set[str] = set()
        stack = [urn]
        while stack:
            current = self.resources.get(stack.pop())
            if current is None:
                continue
            for nxt in [
                *current.dependencies,
                current.parent,
                current.provider.split("::")[0] if "::" in current.provider else "",
            ]:
                nxt = urn_of_provider_ref(nxt)
                if nxt and nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen


_SECRET_SIG = sdk.SECRET_SIG


def _unwrap_secrets(value: Any) -> Any:
    """Replace Pulumi's wire form of a secret ({sig: secret, value: ...}) with its value."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG[0]) == _SECRET_SIG[1]:
            return _unwrap_secrets(value.get("value"))
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


def _secret_keys(props: dict[str, Any]) -> list[str]:
    return sorted(k for k, v in props.items() if isinstance(v, dict) and v.get(_SECRET_SIG[0]) == _SECRET_SIG[1])


_ALIAS_SPEC_FIELDS = ("name", "type", "stack", "project", "parentUrn", "noParent")


def _alias(alias: Any) -> dict[str, Any]:
    """An alias as the SDK sent it: a whole old URN, or a spec of the fields that differ."""
    if alias.urn:
        return {"urn": alias.urn}
    return {"spec": {key: value for key in _ALIAS_SPEC_FIELDS if (value := getattr(alias.spec, key))}}


def urn_of_provider_ref(ref: str) -> str:
    """The provider's URN from a recorded provider reference (`Recorded.provider`, a dependency)."""
    # Provider references are "<urn>::<id>"; a URN itself contains "::" separators.
    if ref.startswith("urn:pulumi:") and ref.count("::") > 3:
        return ref.rsplit("::", 1)[0]
    return ref


# --- computed outputs: what the cloud would fill in ----------------------------------------
# What a reserved internal gcp.compute.Address gets (inside the stacks' default subnet range).
MOCK_RESERVED_ADDRESS = "10.10.0.42"
_FAKE_CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMOCK\n-----END CERTIFICATE-----\n").decode()


def _computed(type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    state = dict(inputs)
    project = inputs.get("project", "mock-project")
    if type_ == CLUSTER:
        dns = {**(inputs.get("controlPlaneEndpointsConfig") or {}).get("dnsEndpointConfig", {})}
        if dns:  # GKE's format: gke-<hash>-<project number>.<location>.gke.goog
            dns["endpoint"] = f"gke-0123456789abcdef0123456789abcdef-123456789012.{inputs.get('location')}.gke.goog"
        state.update(
            endpoint="203.0.113.10",
            controlPlaneEndpointsConfig={**(inputs.get("controlPlaneEndpointsConfig") or {}), "dnsEndpointConfig": dns},
            masterAuth={**inputs.get("masterAuth", {}), "clusterCaCertificate": _FAKE_CA},
            selfLink=f"https://container.googleapis.com/v1/projects/{project}/locations/{inputs.get('location')}/clusters/{inputs.get('name')}",
        )
        return f"projects/{project}/locations/{inputs.get('location')}/clusters/{inputs.get('name')}", state
    if type_ == "gcp:serviceaccount/account:Account":
        email = f"{inputs.get('accountId')}@{project}.iam.gserviceaccount.com"
        state.update(email=email, member=f"serviceAccount:{email}", uniqueId="100000000000000000001")
        return f"projects/{project}/serviceAccounts/{email}", state
    if type_ == NODE_POOL:
        return f"{inputs.get('cluster')}/nodePools/{inputs.get('name')}", state
    if type_ == "gcp:compute/address:Address":
        # GCP picks a free address in the subnet when none is asked for.
        state.setdefault("address", MOCK_RESERVED_ADDRESS)
    if type_.startswith("gcp:compute/"):
        kind = type_.rsplit(":", 1)[-1].lower() + "s"
        state.setdefault(
            "selfLink", f"https://www.googleapis.com/compute/v1/projects/{project}/{kind}/{inputs.get('name')}"
        )
        return f"projects/{project}/{kind}/{inputs.get('name')}", state
    if type_ == RELEASE:
        state["status"] = {
            "name": inputs.get("name"),
            "namespace": inputs.get("namespace"),
            "status": "deployed",
            "version": inputs.get("version"),
            "chart": inputs.get("chart"),
        }
        return f"{inputs.get('namespace')}/{inputs.get('name')}", state
    if type_.startswith("tls:index/"):
        # Key material exists only after `pulumi up`; the plan shows where it will go.
        field = {
            "tls:index/privateKey:PrivateKey": "privateKeyPem",
            "tls:index/selfSignedCert:SelfSignedCert": "certPem",
            "tls:index/locallySignedCert:LocallySignedCert": "certPem",
            "tls:index/certRequest:CertRequest": "certRequestPem",
        }.get(type_)
        if field:
            state[field] = f"<{field} of {name}, made by pulumi-tls at apply>"
        return f"{name}-id", state
    if type_ == "kubernetes:core/v1:Service":
        # A load balancer takes the Service's loadBalancerIP when it has one (GKE), else its own.
        ip = ((inputs.get("spec") or {}).get("loadBalancerIP")) or "10.10.0.50"
        state["status"] = {"loadBalancer": {"ingress": [{"ip": ip}]}}
    meta = inputs.get("metadata") or {}
    if isinstance(meta, dict) and meta.get("name"):
        return f"{meta.get('namespace', '')}/{meta['name']}".lstrip("/"), state
    return f"{name}-id", state


class RecordingMocks(pulumi.runtime.Mocks):
    """Fills in realistic computed outputs; the recording is done by the monitor."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.resource_id:  # a read of an existing resource
            _resource_id, state = _computed(args.typ, args.name, args.inputs)
            return args.resource_id, state
        return _computed(args.typ, args.name, args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(sdk.MockMonitor):
    """The SDK's mock monitor, keeping what it is told: dependencies and resource options."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.recorded: dict[str, Recorded] = {}
        self.stack_outputs: dict[str, Any] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == STACK_TYPE:
            return response
        urn = response.urn
        registration = self.resources.get(urn)
        raw_inputs = sdk.deserialize_properties(request.object) if request.object else {}
        self.recorded[urn] = Recorded(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=bool(request.custom),
            inputs=_unwrap_secrets(raw_inputs),
            secret_inputs=_secret_keys(raw_inputs),
            outputs=_unwrap_secrets(dict(registration.state)) if registration else {},
            id=registration.id if registration else None,
            provider=request.provider,
            dependencies=list(request.dependencies),
            protect=bool(request.protect),
            ignore_changes=list(request.ignoreChanges),
            replace_on_changes=list(request.replaceOnChanges),
            delete_before_replace=bool(request.deleteBeforeReplace),
            deleted_with=request.deletedWith,
            replace_with=list(request.replace_with),
            aliases=[_alias(alias) for alias in request.aliases],
        )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        response = super().RegisterResourceOutputs(request)
        if request.urn in self.recorded:
            outputs = sdk.deserialize_properties(request.outputs) if request.outputs else {}
            self.recorded[request.urn].registered_outputs = _unwrap_secrets(outputs)
        return response

    def ReadResource(self, request: Any) -> Any:
        response = super().ReadResource(request)
        registration = self.resources.get(response.urn)
        self.recorded[response.urn] = Recorded(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=True,
            inputs={},
            outputs=dict(registration.state) if registration else {},
            id=request.id,
            provider=request.provider,
            dependencies=list(request.dependencies),
            read=True,
        )
        return response


# --- config: what the Pulumi CLI would hand the program --------------------------------------
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_parsed: dict[Path, tuple[tuple[int, int], Any]] = {}


def read_yaml(path: Path) -> Any:
    """`yaml.safe_load` of a file, parsed once per content (keyed on its mtime and size), each
    caller getting its own copy: Pulumi.yaml and the stack files were parsed hundreds of times
    per test run (issue 19)."""
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _parsed.get(path)
    if cached is None or cached[0] != key:
        cached = (key, yaml.load(path.read_text(), Loader=_YAML_LOADER))
        _parsed[path] = cached
    return copy.deepcopy(cached[1])


def project_config_defaults(project_dir: Path = PROJECT_DIR) -> tuple[str, dict[str, Any]]:
    project = read_yaml(project_dir / "Pulumi.yaml")
    name = project["name"]
    defaults = {
        key if ":" in key else f"{name}:{key}": spec["default"]
        for key, spec in (project.get("config") or {}).items()
        if isinstance(spec, dict) and "default" in spec
    }
    return name, defaults


def stack_file(stack: str, project_dir: Path = PROJECT_DIR) -> Path:
    project = read_yaml(project_dir / "Pulumi.yaml")
    return project_dir / project.get("stackConfigDir", ".") / f"Pulumi.{stack}.yaml"


def stacks(project_dir: Path = PROJECT_DIR) -> list[str]:
    folder = stack_file("x", project_dir).parent
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in folder.glob("Pulumi.*.yaml"))


def load_config(stack: str, project_dir: Path = PROJECT_DIR, overrides: dict[str, Any] | None = None) -> dict[str, str]:
    """Stack config as the CLI passes it to a program: Pulumi.yaml defaults, then the stack file."""
    _, merged = project_config_defaults(project_dir)
    path = stack_file(stack, project_dir)
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path}; stacks here: {', '.join(stacks(project_dir))}")
    merged.update((read_yaml(path) or {}).get("config") or {})
    merged.update(overrides or {})
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in merged.items()
        if value is not None
    }


def run_program(
    stack: str,
    project_dir: Path = PROJECT_DIR,
    config: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Recording:
    """Run `__main__.py` for `stack` under mocks and return what it declared."""
    values = config if config is not None else load_config(stack, project_dir, overrides)
    project_name, _ = project_config_defaults(project_dir)
    return contextvars.copy_context().run(_run, project_name, stack, project_dir, values)


def _run(project_name: str, stack: str, project_dir: Path, values: dict[str, str]) -> Recording:
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    return _record(
        project_name, stack, values, lambda: runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")
    )


def record(build: Callable[[], object], stack: str = "test", config: dict[str, str] | None = None) -> Recording:
    """Run `build` (e.g. one component constructed on its own, in a test) under the same mocks
    and recorder as the whole program, and return what it declared."""
    project_name, _ = project_config_defaults()
    return contextvars.copy_context().run(_record, project_name, stack, dict(config or {}), build)


def _record(project_name: str, stack: str, values: dict[str, str], build: Callable[[], object]) -> Recording:
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    sdk.reset_root_resource()
    pulumi.runtime.set_all_config(values)
    pulumi.runtime.set_mocks(mocks, project=project_name, stack=stack, preview=False, monitor=monitor)

    outputs: dict[str, Any] = {}
    secrets: set[str] = set()

    async def program() -> None:
        build()
        root = sdk.root_resource()
        exported: dict[str, Any] = getattr(root, "outputs", {}) or {}
        for key, value in exported.items():
            output = pulumi.Output.from_input(value)
            outputs[key] = await output.future(with_unknowns=True)
            if await output.is_secret():
                secrets.add(key)

    try:
        sdk.run_to_completion(program)
    except Exception as exc:
        partial = Recording(
            stack=stack, resources=in_urn_order(monitor.recorded), outputs={}, secret_outputs=set(), config=values
        )
        raise ProgramFailed(exc, partial) from exc
    return Recording(
        stack=stack, resources=in_urn_order(monitor.recorded), outputs=outputs, secret_outputs=secrets, config=values
    )


def in_urn_order(recorded: dict[str, Recorded]) -> dict[str, Recorded]:
    """The resources by URN. The order they registered in follows when their inputs resolved,
    which varies from run to run; everything printed from a recording (the PR comment's pool
    table, tfplan.json, the manifests) must not."""
    return dict(sorted(recorded.items()))
