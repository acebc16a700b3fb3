"""Manifests checked against upstream schemas: nothing here restates a schema by hand.

- Kubernetes objects: the Kubernetes OpenAPI schemas shipped by `kubernetes-validate`, strict.
- Dask custom resources: the CRDs shipped in the installed `dask-kubernetes` wheel, made
  strict (the API server silently prunes unknown fields; we want to hear about them).
- Helm values: the chart's own values.yaml from the same wheel.

What the operator would create from a DaskCluster is `gpudask.record.dask_operator`'s (it renders; the
objects it renders are checked here like any other Kubernetes object).
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import dask_kubernetes
import jsonschema
import kubernetes_validate
import yaml

# Kubernetes minor the schemas are taken from. A choice, not a fact about GKE: keep it at or below the
# minor of the clusters you deploy to (`gcloud container get-server-config`, STABLE channel).
KUBERNETES_VERSION = "1.33"
OPERATOR_DIR = Path(dask_kubernetes.__file__).parent / "operator"
CHART_DIR = OPERATOR_DIR / "deployment" / "helm" / "dask-kubernetes-operator"
# libyaml's loader where PyYAML has it: the DaskCluster CRD alone is ~284 KB, which the
# pure-Python loader takes seconds to read.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CRD_FILES = {
    "DaskCluster": "daskcluster.yaml",
    "DaskWorkerGroup": "daskworkergroup.yaml",
    "DaskAutoscaler": "daskautoscaler.yaml",
    "DaskJob": "daskjob.yaml",
}
# CRDs not shipped by any installed package: the upstream file, unmodified below a header that
# says where and when it was taken from.
VENDORED_CRDS = {
    "PodMonitoring": Path(__file__).parent / "gmp_podmonitorings_crd.yaml",
    "PodMonitor": Path(__file__).parent / "prometheus_operator_podmonitors_crd.yaml",
}
CRD_KINDS = (*CRD_FILES, *VENDORED_CRDS)


def _path(parts: Any) -> str:
    return ".".join(str(p) for p in parts) or "(root)"


@functools.cache
def _kubernetes_validator(kind: str, api_version: str, version: str) -> jsonschema.Draft202012Validator:
    """The strict validator `kubernetes_validate.validate` builds for (kind, apiVersion), built
    once: that function re-reads the schema and the ~1 MB `_definitions.json` on every call,
    which made it most of the fast tests' time (issue 19). Same schema files (through
    `kubernetes_validate.utils`), same version choice, same registry, same draft."""
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    chosen = [v for v in utils.all_versions() if utils.major_minor(v) <= utils.major_minor(version)][-1]
    folder = f"kubernetes-json-schema/v{chosen}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(f"{folder}/{kind.lower()}-{group}.json", version)
    except FileNotFoundError as err:
        raise kubernetes_validate.SchemaNotFoundError(
            version=utils.major_minor(version), kind=kind, api_version=api_version
        ) from err
    definitions = utils.schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def kubernetes_findings(manifest: dict[str, Any], version: str = KUBERNETES_VERSION) -> list[str]:
    """Strict OpenAPI validation of a built-in Kubernetes object ('' list when valid): the first
    violation, as `kubernetes_validate.validate(manifest, version, strict=True)` reports it."""
    validator = _kubernetes_validator(manifest["kind"], manifest["apiVersion"], version.removeprefix("v"))
    for err in validator.iter_errors(manifest):
        return [f"{_path(err.absolute_path)}: {err.message}"]
    return []


@functools.cache
def crd_schema(kind: str) -> dict[str, Any]:
    """The CRD's openAPIV3Schema for `kind` (its first served version), strict: unknown fields are errors."""
    path = VENDORED_CRDS[kind] if kind in VENDORED_CRDS else CHART_DIR / "crds" / CRD_FILES[kind]
    crd = yaml.load(path.read_text(), Loader=_YAML_LOADER)
    version = next(v for v in crd["spec"]["versions"] if v.get("served", True))
    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
    # The API server itself handles the envelope; CRD schemas leave it out.
    schema.setdefault("properties", {}).update(
        apiVersion={"type": "string", "enum": [f"{crd['spec']['group']}/{version['name']}"]},
        kind={"type": "string", "enum": [crd["spec"]["names"]["kind"]]},
        metadata={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    )
    return _strict(schema)


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for value in schema:
            _strict(value)
    return schema


def crd_findings(manifest: dict[str, Any]) -> list[str]:
    """Every violation of the CRD schema of the manifest's kind, each with its field path."""
    kind = manifest.get("kind", "")
    if kind not in CRD_KINDS:
        return [f"kind: {kind!r} is not a custom resource with a known CRD; known: {', '.join(CRD_KINDS)}"]
    validator = jsonschema.Draft7Validator(crd_schema(kind))
    findings = []
    for err in sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path))):
        message = err.message
        if err.validator == "additionalProperties":
            message = f"unknown field (the API server would silently drop it): {err.message}"
        findings.append(f"{_path(err.absolute_path)}: {message}")
    return findings


@functools.cache
def chart_values() -> dict[str, Any]:
    return yaml.load((CHART_DIR / "values.yaml").read_text(), Loader=_YAML_LOADER)


def helm_value_findings(values: dict[str, Any], known: dict[str, Any] | None = None, prefix: str = "") -> list[str]:
    """Keys the chart's values.yaml does not know (Helm ignores them without a word)."""
    known = chart_values() if known is None else known
    findings = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in known:
            findings.append(f"{path}: unknown chart value; the chart knows {', '.join(sorted(known))}")
        elif isinstance(value, dict) and isinstance(known[key], dict) and known[key]:
            findings.extend(helm_value_findings(value, known[key], f"{path}."))
    return findings
