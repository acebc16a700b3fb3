"""One view of what a recording declared: the settings it parsed and its Kubernetes manifests.

The plan's checks, the rehearsal and the local control plane all read a recording through
these (not through each other).
"""

from __future__ import annotations

from typing import Any

from components.settings import TOP_KEYS, StackSettings, parse_settings
from gpudask.record.recorder import Recorded, Recording
from gpudask.record.resource_types import RELEASE


def recorded_settings(rec: Recording) -> StackSettings:
    """The settings the recorded program parsed (it ran, so they are valid)."""
    return parse_settings({key: rec.config.get(f"gpu-dask:{key}") for key in TOP_KEYS}, rec.config.get("gcp:project"))


# --- manifests -----------------------------------------------------------------------------
def whole_numbers(value: Any) -> Any:
    """Whole floats back to ints, everywhere: the recording keeps Pulumi's float64 numbers (8787.0), the
    Kubernetes provider sends integers, and the API server refuses a float where its schema says integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def kubernetes_manifests(rec: Recording) -> list[tuple[Recorded, dict[str, Any]]]:
    """Every Kubernetes object the program declares, as `kubectl apply -f` would take it."""
    out = []
    for r in rec.resources.values():
        if not r.custom or r.read or not r.type.startswith("kubernetes:") or r.type == RELEASE:
            continue
        if r.type.startswith("pulumi:providers:"):
            continue
        manifest = {k: v for k, v in r.inputs.items() if k not in ("apiVersion", "kind")}
        group_version, kind = r.type.split(":", 2)[1:]
        api_version = group_version.replace("core/", "")
        out.append(
            (r, {"apiVersion": r.inputs.get("apiVersion", api_version), "kind": r.inputs.get("kind", kind), **manifest})
        )
    return out
