"""Inputs of the Checkov gate (`make scan`): the Terraform-plan-shaped GKE document, the
operator-built manifests, and a skip list where every entry says why."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import yaml

from gpudask.plan import report as planning
from gpudask.plan import tfplan
from gpudask.record.recorder import PROJECT_DIR, Recording

Run = Callable[..., Recording]


def test_every_checkov_skip_states_its_reason() -> None:
    text = (PROJECT_DIR / ".checkov.yaml").read_text()
    config = yaml.safe_load(text)
    entries = [*config["skip-check"], *config["skip-path"]]
    assert entries
    for entry in entries:
        line = next(line for line in text.splitlines() if re.match(rf"\s*- {re.escape(entry)}\b", line))
        reason = line.split("#", 1)[1].strip() if "#" in line else ""
        assert len(reason) > 20, f"{entry}: no reason"
    assert all(re.fullmatch(r"CKV2?_(K8S|GCP)_\d+", c) for c in config["skip-check"])


def test_terraform_plan_reads_like_the_google_provider(recorded: Run) -> None:
    document = tfplan.terraform_plan(recorded("prod"))
    resources = {r["type"]: r["values"] for r in document["planned_values"]["root_module"]["resources"]}
    cluster = resources["google_container_cluster"]
    # Nested blocks become one-element lists, fields snake_case, maps stay maps.
    assert cluster["private_cluster_config"][0]["enable_private_nodes"] is True
    assert cluster["master_authorized_networks_config"][0]["cidr_blocks"][0]["cidr_block"] == "198.51.100.0/24"
    assert cluster["remove_default_node_pool"] is True
    # By address: the scheduler's GPU pool has guest accelerators too, and registration order
    # (so the order of `resources`) varies from run to run.
    pool = next(
        r["values"]
        for r in document["planned_values"]["root_module"]["resources"]
        if r["address"] == "google_container_node_pool.gpu_a100_pool"
    )
    assert pool["node_config"][0].get("guest_accelerators")
    assert pool["node_config"][0]["workload_metadata_config"][0]["mode"] == "GKE_METADATA"
    assert isinstance(pool["node_config"][0]["labels"], dict)
    assert pool["node_config"][0]["taints"] == [{"effect": "NO_SCHEDULE", "key": "nvidia.com/gpu", "value": "present"}]
    assert {c["address"] for c in document["resource_changes"]} == {
        r["address"] for r in document["planned_values"]["root_module"]["resources"]
    }
    assert resources["google_compute_subnetwork"]["log_config"][0]["flow_sampling"] == 0.1


def test_plan_writes_what_the_scanner_reads(recorded: Run, tmp_path: Path) -> None:
    rec = recorded("dev")
    written = planning.write(planning.build_plan(rec), rec, tmp_path)
    operator = sorted(p.name for p in written if p.parent.name == "operator-manifests")
    assert operator == [
        "00-deployment-dask-rapids-scheduler.yaml",
        "01-service-dask-rapids-scheduler.yaml",
        "02-deployment-dask-rapids-default-worker-0000000000.yaml",
    ]
    worker = yaml.safe_load((tmp_path / "operator-manifests" / operator[2]).read_text())
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"port": "http-dashboard", "path": "/health"}
    assert (tmp_path / "tfplan.json").exists()
