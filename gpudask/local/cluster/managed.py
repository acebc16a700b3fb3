"""The monitoring CRDs a stack's cluster already has, on a local control plane: Managed Prometheus'
PodMonitoring (GKE installs it with the add-on) and the Prometheus operator's PodMonitor (an existing
cluster that runs the operator has it).

A local control plane has neither, so a stack that declares one would be refused with 404. These are the upstream files kept unmodified in gpudask/upstream/
(with their source and date), applied as a stand-in for the add-on and named so in every report.
"""

from __future__ import annotations

import time
from typing import Any

import yaml

from gpudask.upstream.schemas import VENDORED_CRDS

FIELD_MANAGER = "gke-managed-add-ons-stand-in"


class ManagedCrdError(RuntimeError):
    """A CRD was applied but never became Established."""


def install_managed_crds(kube: Any, timeout: float = 60.0) -> list[str]:
    """Apply every vendored CRD and wait until each is Established; returns their names."""
    names = []
    for path in VENDORED_CRDS.values():
        crd = yaml.safe_load(path.read_text())
        kube.apply(crd, FIELD_MANAGER)
        names.append(crd["metadata"]["name"])
    deadline = time.monotonic() + timeout
    for name in names:
        crd_path = kube.path("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
        while not any(
            c.get("type") == "Established" and c.get("status") == "True"
            for c in (kube.get(crd_path).get("status") or {}).get("conditions") or []
        ):
            if time.monotonic() > deadline:
                raise ManagedCrdError(f"CRD {name} not Established {timeout:.0f} s after it was applied")
            time.sleep(0.2)
    return names
