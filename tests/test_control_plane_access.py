"""A DNS-only control-plane endpoint for new stacks, and the opt-in move for stacks already up
(issue 22, point 7).

`controlPlaneAccess` defaults to `dns-only` in Pulumi.yaml (what a new stack gets): the DNS-based
endpoint only, IP endpoints off, no authorized networks, no `masterIpv4CidrBlock` (GKE then builds
a Private Service Connect-based cluster). dev and prod pin `dns-and-ip`, so their recorded inputs
are today's. Field names and ForceNew flags are held to the provider schema kept in tests/data
and to GKE's own API types; the move of a stack already up is a plan diff with nothing replaced.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from google.cloud.container_v1 import types as gke

from components.settings import SettingsError, parse_settings
from gpudask.plan import report as planning
from gpudask.record.recorder import Recording
from tests.conftest import raw_config

Run = Callable[..., Recording]
ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "gcp:container/cluster:Cluster"
CLUSTER_KEY = f"{CLUSTER}::gke-cluster"
NEW_STACK = {"gpu-dask:controlPlaneAccess": "dns-only", "gpu-dask:authorizedNetworks": []}
SCHEMA = json.loads((ROOT / "tests" / "data" / "tpg-container-schema.json").read_text())["resources"][
    "google_container_cluster"
]


def _cluster(rec: Recording) -> dict[str, object]:
    return rec.one(CLUSTER).inputs


def test_a_new_stack_gets_the_dns_endpoint_only() -> None:
    default = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]["controlPlaneAccess"]["default"]
    assert default == "dns-only"
    for stack in ("dev", "prod"):  # the stack files pin the old access; a stack file without the key gets the default
        assert (
            "gpu-dask:controlPlaneAccess"
            in yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
        )


def test_dns_only_turns_the_ip_endpoint_off_and_sends_no_peering_range(recorded: Run) -> None:
    inputs = _cluster(recorded("dev", overrides=NEW_STACK))
    assert inputs["controlPlaneEndpointsConfig"] == {
        "dnsEndpointConfig": {"allowExternalTraffic": True},
        "ipEndpointsConfig": {"enabled": False},
    }
    # No masterIpv4CidrBlock: a PSC-based cluster; no allowlist for an endpoint that is off.
    assert inputs["privateClusterConfig"] == {"enablePrivateNodes": True}
    assert "masterAuthorizedNetworksConfig" not in inputs


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stacks_already_up_keep_their_inputs(recorded: Run, stack: str) -> None:
    inputs = _cluster(recorded(stack))
    assert inputs["controlPlaneEndpointsConfig"] == {"dnsEndpointConfig": {"allowExternalTraffic": True}}
    assert inputs["privateClusterConfig"] == {
        "enablePrivateNodes": True,
        "enablePrivateEndpoint": False,
        "masterIpv4CidrBlock": "172.16.0.32/28",
    }
    assert inputs["masterAuthorizedNetworksConfig"]["cidrBlocks"]  # type: ignore[index]


def _snake(path: str) -> str:
    return ".".join("".join(f"_{c.lower()}" if c.isupper() else c for c in part) for part in path.split("."))


def test_the_fields_exist_in_the_provider_schema_and_gkes_api_and_none_replaces(recorded: Run) -> None:
    inputs = _cluster(recorded("dev", overrides=NEW_STACK))
    paths = [
        p
        for p in planning._flatten(inputs)
        if p.startswith(("controlPlaneEndpointsConfig", "privateClusterConfig", "masterAuthorizedNetworksConfig"))
    ]
    assert paths
    kinds = {p: SCHEMA.get(_snake(p)) for p in paths}
    assert kinds == dict.fromkeys(paths, "update"), kinds
    # The GKE API names the provider maps them to (google-cloud-container's types).
    assert "enabled" in gke.ControlPlaneEndpointsConfig.IPEndpointsConfig.meta.fields
    assert "allow_external_traffic" in gke.ControlPlaneEndpointsConfig.DNSEndpointConfig.meta.fields
    # The one ForceNew field dns-only stops sending.
    assert SCHEMA["private_cluster_config.master_ipv4_cidr_block"] == "replace"


def test_moving_a_stack_already_up_to_dns_only_replaces_nothing(recorded: Run) -> None:
    base = planning.build_plan(recorded("dev")).to_json()
    head = planning.build_plan(recorded("dev", overrides=NEW_STACK)).to_json()
    diff = planning.diff_plans(base, head)
    assert diff.replaced() == [] and not diff.added and not diff.removed
    assert list(diff.changed) == [CLUSTER_KEY]
    rows = {path: (old, new, kind) for path, old, new, kind in diff.changed[CLUSTER_KEY]}
    assert rows["inputs.controlPlaneEndpointsConfig.ipEndpointsConfig.enabled"] == (None, False, "update")
    # Optional + Computed in the provider: no longer sent, the /28 is kept (not a ForceNew change).
    assert rows["inputs.privateClusterConfig.masterIpv4CidrBlock"] == ("172.16.0.32/28", None, "kept")
    assert all(kind in ("update", "kept") for _, _, kind in rows.values())
    assert "no longer sent: Optional + Computed" in diff.markdown()


def _problems(**overrides: object) -> list[str]:
    raw, project = raw_config("dev", **overrides)
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, project)
    return caught.value.problems


def test_authorized_networks_follow_the_access_mode() -> None:
    (problem,) = _problems(controlPlaneAccess="dns-only")  # dev's authorizedNetworks left in
    assert problem.startswith("authorizedNetworks: ['203.0.113.0/24'] has no effect with controlPlaneAccess: dns-only")
    (problem,) = _problems(authorizedNetworks=[])
    assert problem.startswith("authorizedNetworks: [] must list at least one CIDR")
    (problem,) = _problems(controlPlaneAccess="ip-only")
    assert problem.startswith("controlPlaneAccess: 'ip-only'") and "dns-only" in problem
