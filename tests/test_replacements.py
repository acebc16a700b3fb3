"""The replacement table: every field the stacks set has a sourced kind, the provider's
ForceNew fields replace, GKE's node-recreating updates roll, and `plan --diff` shows the
three kinds apart."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from gpudask.plan import report as planning
from gpudask.plan.replacements import KINDS, dotted, entry, replacement_kind, table
from gpudask.record.recorder import Recording
from tests.conftest import STACKS

Run = Callable[..., Recording]
POOL, CLUSTER = "gcp:container/nodePool:NodePool", "gcp:container/cluster:Cluster"


@pytest.mark.parametrize("stack", STACKS)
def test_every_gcp_field_the_stack_sets_has_a_sourced_entry(recorded: Run, stack: str) -> None:
    missing = []
    for r in recorded(stack).resources.values():
        if not r.type.startswith("gcp:") or not r.custom:
            continue
        for path in planning._flatten(r.inputs):
            if entry(r.type, path) is None:
                missing.append(f"{r.type} {dotted(path)}")
    assert sorted(set(missing)) == [], "add these to gpudask/plan/replacement_kinds.yaml with their source"


def test_every_entry_names_a_known_kind_and_source() -> None:
    import yaml

    from gpudask.plan.replacements import DATA_FILE

    sources = set(yaml.safe_load(DATA_FILE.read_text())["sources"])
    for type_token, fields in table().items():
        for field, spec in fields.items():
            assert spec["kind"] in KINDS, (type_token, field)
            assert set(spec["source"].split(" + ")) <= sources, (type_token, field, spec["source"])


@pytest.mark.parametrize(
    ("type_token", "path", "kind"),
    [
        # The provider updates these in place; GKE recreates the nodes (issue 11, point 4).
        (POOL, "nodeConfig.machineType", "node-roll"),
        (POOL, "nodeConfig.diskSizeGb", "node-roll"),
        (POOL, "nodeConfig.diskType", "node-roll"),
        (POOL, "nodeConfig.imageType", "node-roll"),
        (POOL, "nodeLocations", "update"),
        # ForceNew in node_config.go, missing from the old list.
        (POOL, "nodeConfig.metadata.disable-legacy-endpoints", "replace"),
        (POOL, "nodeConfig.oauthScopes", "replace"),
        (POOL, "nodeConfig.shieldedInstanceConfig.enableSecureBoot", "replace"),
        (POOL, "nodeConfig.guestAccelerators[0].gpuDriverInstallationConfig.gpuDriverVersion", "replace"),
        (POOL, "nodeConfig.spot", "replace"),
        (POOL, "nodeConfig.secondaryBootDisks[0].diskImage", "replace"),
        (POOL, "name", "replace"),
        (POOL, "autoscaling.totalMaxNodeCount", "update"),
        (POOL, "nodeConfig.taints[0].value", "update"),
        # VPC and subnet renames replace them (and, through them, the cluster).
        ("gcp:compute/network:Network", "name", "replace"),
        ("gcp:compute/subnetwork:Subnetwork", "name", "replace"),
        (CLUSTER, "network", "replace"),
        (CLUSTER, "masterAuthorizedNetworksConfig.cidrBlocks[0].cidrBlock", "update"),
    ],
)
def test_kinds_follow_the_provider_schema(type_token: str, path: str, kind: str) -> None:
    assert replacement_kind(type_token, path) == kind


def test_plan_diff_shows_the_three_kinds_differently(recorded: Run) -> None:
    base = planning.build_plan(recorded("prod")).to_json()
    head = copy.deepcopy(base)
    resources = {r["key"]: r for r in head["resources"]}
    pool = resources["gcp:container/nodePool:NodePool::gpu-a100-pool"]
    pool["inputs"]["nodeConfig"]["diskSizeGb"] = 400.0  # node roll
    system = resources["gcp:container/nodePool:NodePool::gke-system-pool"]
    system["inputs"]["nodeConfig"]["metadata"]["extra"] = "x"  # replace
    resources["gcp:compute/subnetwork:Subnetwork::network-subnet"]["inputs"]["privateIpGoogleAccess"] = False
    resources["gcp:compute/network:Network::network-vpc"]["inputs"]["name"] = "renamed-vpc"
    diff = planning.diff_plans(base, head)
    assert diff.node_rolls() == ["gcp:container/nodePool:NodePool::gpu-a100-pool"]
    assert sorted(diff.replaced()) == [
        "gcp:compute/network:Network::network-vpc",
        "gcp:container/nodePool:NodePool::gke-system-pool",
    ]
    text = diff.markdown()
    assert "🔄 update, GKE recreates every node of `gcp:container/nodePool:NodePool::gpu-a100-pool`" in text
    assert "`inputs.nodeConfig.diskSizeGb`: `300.0` → `400.0` **(GKE recreates every node)**" in text
    assert "🔁 replace `gcp:container/nodePool:NodePool::gke-system-pool`" in text
    assert "✏️ update `gcp:compute/subnetwork:Subnetwork::network-subnet`" in text
    assert '`inputs.name`: `"gpu-dask-prod-vpc"` → `"renamed-vpc"` **(forces replacement)**' in text


def test_ignored_fields_are_shown_as_ignored(recorded: Run) -> None:
    base = planning.build_plan(recorded("prod")).to_json()
    head = copy.deepcopy(base)
    cluster = next(r for r in head["resources"] if r["type"] == CLUSTER)
    cluster["inputs"]["nodeConfig"]["imageType"] = "UBUNTU_CONTAINERD"
    diff = planning.diff_plans(base, head)
    assert diff.replaced() == []
    assert "(ignored: ignoreChanges)" in diff.markdown()
