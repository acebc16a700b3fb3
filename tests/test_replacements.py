"""The replacement table: every field the stacks set has a sourced kind, the provider's
ForceNew fields replace, GKE's node-recreating updates roll, and `plan --diff` shows the
three kinds apart."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from gpudask.plan import report as planning
from gpudask.plan.replacements import TABLE_KINDS, dotted, entry, is_shrinkage, replacement_kind, table
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
            assert spec["kind"] in TABLE_KINDS, (type_token, field)
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
    diff = planning.diff_plans(base, head)
    assert diff.node_rolls() == ["gcp:container/nodePool:NodePool::gpu-a100-pool"]
    assert sorted(diff.replaced()) == ["gcp:container/nodePool:NodePool::gke-system-pool"]
    text = diff.markdown()
    assert "🔄 update, GKE recreates every node of `gcp:container/nodePool:NodePool::gpu-a100-pool`" in text
    assert "`inputs.nodeConfig.diskSizeGb`: `300.0` → `400.0` **(GKE recreates every node)**" in text
    assert "🔁 replace `gcp:container/nodePool:NodePool::gke-system-pool`" in text
    assert "✏️ update `gcp:compute/subnetwork:Subnetwork::network-subnet`" in text


def test_ignored_fields_are_shown_as_ignored(recorded: Run) -> None:
    base = planning.build_plan(recorded("prod")).to_json()
    head = copy.deepcopy(base)
    cluster = next(r for r in head["resources"] if r["type"] == CLUSTER)
    cluster["inputs"]["nodeConfig"]["imageType"] = "UBUNTU_CONTAINERD"
    diff = planning.diff_plans(base, head)
    assert diff.replaced() == []
    assert "(ignored: ignoreChanges)" in diff.markdown()


SUBNET_KEY = "gcp:compute/subnetwork:Subnetwork::network-subnet"
CLUSTER_KEY = "gcp:container/cluster:Cluster::gke-cluster"


def test_a_vpc_rename_replaces_everything_that_holds_its_id(recorded: Run) -> None:
    base = planning.build_plan(recorded("prod")).to_json()
    head = copy.deepcopy(base)
    vpc = next(r for r in head["resources"] if r["key"] == "gcp:compute/network:Network::network-vpc")
    vpc["inputs"]["name"] = "renamed-vpc"
    diff = planning.diff_plans(base, head)
    replaced = set(diff.replaced())
    assert {
        "gcp:compute/network:Network::network-vpc",
        SUBNET_KEY,
        "gcp:compute/router:Router::network-router",
        CLUSTER_KEY,
        "gcp:container/nodePool:NodePool::gpu-a100-pool",
    } <= replaced, sorted(replaced)
    assert '`inputs.name`: `"gpu-dask-prod-vpc"` → `"renamed-vpc"` **(forces replacement)**' in diff.markdown()


@pytest.mark.parametrize(
    ("old", "new", "shrinks"),
    [
        ("10.10.0.0/20", "10.10.0.0/19", False),  # expansion: update in place
        ("10.10.0.0/20", "10.10.0.0/20", False),
        ("10.10.0.0/20", "10.10.0.0/21", True),  # shrink
        ("10.10.0.0/20", "10.20.0.0/20", True),  # moved: not a superset either
    ],
)
def test_a_subnet_range_change_replaces_unless_it_expands(old: str, new: str, shrinks: bool) -> None:
    assert is_shrinkage(old, new) is shrinks
    kind = replacement_kind("gcp:compute/subnetwork:Subnetwork", "ipCidrRange", old, new)
    assert kind == ("replace" if shrinks else "update")


def _subnet_range_diff(recorded: Run, cidr: str) -> planning.Diff:
    base = planning.build_plan(recorded("prod")).to_json()
    head = copy.deepcopy(base)
    subnet = next(r for r in head["resources"] if r["key"] == SUBNET_KEY)
    subnet["inputs"]["ipCidrRange"] = cidr
    return planning.diff_plans(base, head)


def test_a_subnet_shrink_replaces_the_subnet_and_then_the_cluster(recorded: Run) -> None:
    diff = _subnet_range_diff(recorded, "10.10.0.0/21")
    assert SUBNET_KEY in diff.replaced()
    # The cluster holds the subnet's id in `subnetwork` (ForceNew): a new subnet, a new cluster.
    assert CLUSTER_KEY in diff.replaced()
    assert "🔁 replace `gcp:container/cluster:Cluster::gke-cluster`" in diff.markdown()


def test_a_subnet_expansion_is_an_in_place_update(recorded: Run) -> None:
    diff = _subnet_range_diff(recorded, "10.10.0.0/19")
    assert diff.replaced() == [] and SUBNET_KEY in diff.changed
