"""Shared fixtures: the real program under Pulumi's mocks, recorded (gpudask.record.recorder)."""

from __future__ import annotations

import copy
import itertools
import pickle
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from components.settings import TOP_KEYS, StackSettings, parse_settings
from gpudask.record import dask_operator
from gpudask.record.recorder import Recording, load_config, run_program, stacks
from gpudask.record.view import kubernetes_manifests

STACKS = stacks()
PROJECT = "gpu-dask"
# Stacks that create their GKE cluster, and stacks that deploy onto an existing one.
EXISTING_STACKS = [s for s in STACKS if f"{PROJECT}:existingCluster" in load_config(s)]
GKE_STACKS = [s for s in STACKS if s not in EXISTING_STACKS]


def raw_config(stack: str, **overrides: Any) -> tuple[dict[str, Any], str | None]:
    """The raw values __main__.py hands to parse_settings for `stack`, with overrides applied."""
    config = load_config(stack)
    raw: dict[str, Any] = {key: config.get(f"{PROJECT}:{key}") for key in TOP_KEYS}
    for key, value in overrides.items():
        raw[key] = value
    return raw, config.get("gcp:project")


def settings_for(stack: str, **overrides: Any) -> StackSettings:
    raw, project = raw_config(stack, **overrides)
    return parse_settings(raw, project)


_cache: dict[str, bytes] = {}  # stack -> its recording, pickled (a copy is one loads: 1 ms, deepcopy 12 ms)

# Tiers (pyproject.toml registers them). A test with none of the slow markers is `fast`:
# `make test-fast` runs only those, the edit loop; `make test` runs everything (CI).
SLOW_TIERS = ("process", "control_plane", "real_pulumi")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not any(item.get_closest_marker(tier) for tier in SLOW_TIERS):
            item.add_marker(pytest.mark.fast)


@pytest.fixture
def recorded() -> Callable[..., Recording]:
    """`recorded("dev")` runs the program for a stack under mocks (the run is cached per
    stack; each call hands out its own deep copy, so a test may edit what it gets);
    `recorded("dev", overrides={"gpu-dask:driver": "gke-latest"})` runs a variant afresh."""

    def run(stack: str, overrides: dict[str, Any] | None = None) -> Recording:
        if overrides:
            return run_program(stack, overrides=copy.deepcopy(overrides))
        return recording(stack)

    return run


def recording(stack: str) -> Recording:
    """The stack's program run under mocks, once per test session; each call hands out its own
    copy (a test may edit it). For module-level fixtures and helpers that cannot take `recorded`."""
    if stack not in _cache:
        _cache[stack] = pickle.dumps(run_program(stack))
    return pickle.loads(_cache[stack])


# --- one local control plane per test session (control_plane tier) -------------------------------
# As dask-kubernetes' own suite shares one kind cluster: tests that only need an API server, its
# controllers and a namespace of their own take `shared_control_plane` + `control_plane_namespace`.
# Tests that change what is cluster-wide (nodes, CRDs, the stack's fixed namespaces, the control
# plane's own processes) keep a `ControlPlane()` of their own and say why.
@pytest.fixture(scope="session")
def shared_control_plane() -> Iterator[Any]:
    """The session's local control plane (gpudask.local.cluster.controlplane.ControlPlane),
    started on first use and stopped when the session ends."""
    from gpudask.local.cluster.controlplane import ControlPlane

    with ControlPlane() as cp:
        yield cp


_namespaces = itertools.count()


@pytest.fixture
def control_plane_namespace(shared_control_plane: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace in the shared control plane for this test, deleted after it (not waited
    for: the next test gets a new name). The name says which test made it."""
    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t{next(_namespaces)}-{slug}"
    kube = shared_control_plane.kube()
    kube.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kube.request("DELETE", f"/api/v1/namespaces/{name}")


def manifests_of(rec: Recording, kind: str) -> list[dict[str, Any]]:
    """The recorded stack's Kubernetes manifests of one kind."""
    return [m for _, m in kubernetes_manifests(rec) if m["kind"] == kind]


def operator_pods(rec: Recording) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """(labels, pod spec) of every Deployment the operator would create for the stack."""
    cluster = manifests_of(rec, "DaskCluster")[0]
    groups = manifests_of(rec, "DaskWorkerGroup")
    return [
        (obj["spec"]["template"]["metadata"]["labels"], obj["spec"]["template"]["spec"])
        for obj in dask_operator.created_objects(cluster, groups)
        if obj["kind"] == "Deployment"
    ]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector's matchLabels select `labels`."""
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())
