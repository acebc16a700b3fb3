"""What a first `pulumi up` needs on the GCP side: image streaming's prerequisites, and a
default node pool that never runs as the Compute Engine default service account."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from gpudask.plan import checks as recording_checks
from gpudask.record.recorder import Recording
from tests.conftest import GKE_STACKS

Run = Callable[..., Recording]


def _findings(rec: Recording) -> list[str]:
    return [str(f) for f in recording_checks.prerequisite_findings(rec)]


@pytest.mark.parametrize("stack", GKE_STACKS)  # existingCluster creates no pools
def test_image_streaming_pools_have_the_role_and_the_api(recorded: Run, stack: str) -> None:
    rec = recorded(stack)
    streaming = [
        p
        for p in rec.of_type(recording_checks.NODE_POOL)
        if (p.inputs["nodeConfig"].get("gcfsConfig") or {}).get("enabled")
    ]
    assert streaming, "no pool streams images: this test would prove nothing"
    assert _findings(rec) == []
    role = [r for r in rec.of_type(recording_checks.IAM_MEMBER) if r.inputs["role"] == recording_checks.STREAMING_ROLE]
    assert [r.inputs["member"] for r in role] == [
        f"serviceAccount:{streaming[0].inputs['nodeConfig']['serviceAccount']}"
    ]
    api = rec.one(recording_checks.PROJECT_SERVICE)
    assert api.inputs["service"] == recording_checks.STREAMING_API and api.inputs["disableOnDestroy"] is False
    # The pools wait for both: nodes that boot first fail to start streamed pods.
    for pool in streaming:
        assert any("serviceusage-consumer" in d for d in pool.dependencies), pool.dependencies
        assert any("api-containerfilesystem" in d for d in pool.dependencies), pool.dependencies


def test_plan_reports_streaming_without_the_role(recorded: Run) -> None:
    rec = copy.deepcopy(recorded("dev"))
    for urn in [
        u
        for u, r in rec.resources.items()
        if r.type == recording_checks.IAM_MEMBER and r.inputs["role"] == recording_checks.STREAMING_ROLE
    ]:
        del rec.resources[urn]
    found = _findings(rec)
    assert any("nodeConfig.gcfsConfig.enabled: image streaming, but the node service account" in f for f in found), (
        found
    )


def test_plan_reports_streaming_without_the_api(recorded: Run) -> None:
    rec = copy.deepcopy(recorded("dev"))
    for urn in [u for u, r in rec.resources.items() if r.type == recording_checks.PROJECT_SERVICE]:
        del rec.resources[urn]
    found = _findings(rec)
    assert any(f"nothing enables {recording_checks.STREAMING_API}" in f for f in found), found


@pytest.mark.parametrize("stack", GKE_STACKS)  # existingCluster uses the operator's kubeconfig
def test_kubeconfig_reaches_the_dns_endpoint_with_application_default_credentials(recorded: Run, stack: str) -> None:
    """One auth story: `gcloud auth application-default login` (laptop) or
    google-github-actions/auth (CI) serves both the GCP provider and the Kubernetes provider,
    through GKE's DNS-based endpoint, which IAM guards instead of an IP allowlist."""
    import yaml

    rec = recorded(stack)
    cluster = rec.one(recording_checks.CLUSTER)
    assert cluster.inputs["controlPlaneEndpointsConfig"] == {"dnsEndpointConfig": {"allowExternalTraffic": True}}
    config = yaml.safe_load(rec.outputs["kubeconfig"])
    server = config["clusters"][0]["cluster"]["server"]
    assert server.startswith("https://gke-") and server.endswith(".gke.goog"), server
    assert "certificate-authority-data" not in config["clusters"][0]["cluster"]  # publicly trusted
    plugin = config["users"][0]["user"]["exec"]
    assert plugin["command"] == "gke-gcloud-auth-plugin"
    assert plugin["args"] == ["--use_application_default_credentials"]
    assert "kubeconfig" in rec.secret_outputs
