"""The replacement truth, generated: the Terraform Google provider's own schema (which
pulumi-gcp is generated from) says which GKE fields force a new resource. The data file is
the output of upstream/tpgschema (`make provider-schema`); these tests hold the project's
replacement table and GOTCHAS to it."""

from __future__ import annotations

import json
import re

import pytest

from gpudask.plan import replacements
from gpudask.record.recorder import PROJECT_DIR

SCHEMA = json.loads((PROJECT_DIR / "tests" / "data" / "tpg-container-schema.json").read_text())
TERRAFORM_TYPES = {
    "gcp:container/nodePool:NodePool": "google_container_node_pool",
    "gcp:container/cluster:Cluster": "google_container_cluster",
}


def terraform_path(fields: dict[str, str], pulumi_path: str) -> str | None:
    """`nodeConfig.guestAccelerators.gpuDriverInstallationConfig` -> the provider's
    `node_config.guest_accelerator.gpu_driver_installation_config` (pulumi-gcp camel-cases
    names and pluralizes repeated blocks); None when the provider has no such field."""
    found: list[str] = []
    for segment in pulumi_path.split("."):
        snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", segment).lower()
        for candidate in (snake, snake[:-1] if snake.endswith("s") else ""):
            if candidate and ".".join([*found, candidate]) in fields:
                found.append(candidate)
                break
        else:
            return None
    return ".".join(found)


def test_the_data_file_comes_from_the_pinned_generator() -> None:
    go_mod = (PROJECT_DIR / "upstream" / "tpgschema" / "go.mod").read_text()
    assert f"{SCHEMA['module']} {SCHEMA['version']}" in go_mod, "run `make provider-schema` after changing the pin"
    assert set(SCHEMA["resources"]) == set(TERRAFORM_TYPES.values())


def test_path_mapping_follows_pulumi_naming() -> None:
    pool = SCHEMA["resources"]["google_container_node_pool"]
    assert terraform_path(pool, "nodeConfig.guestAccelerators.gpuDriverInstallationConfig.gpuDriverVersion") == (
        "node_config.guest_accelerator.gpu_driver_installation_config.gpu_driver_version"
    )
    assert terraform_path(pool, "nodeConfig.taints") == "node_config.taint"
    assert terraform_path(pool, "nodeConfig.noSuchField") is None


def test_gotchas_replacement_facts_hold_in_the_provider_schema() -> None:
    pool = SCHEMA["resources"]["google_container_node_pool"]
    # GOTCHAS: changing gpuDriverVersion replaces the node pool.
    assert pool["node_config.guest_accelerator.gpu_driver_installation_config.gpu_driver_version"] == "replace"
    # GOTCHAS: autoscaler node counts are ignored, not replaced.
    assert pool["node_count"] == "update" and pool["autoscaling"] == "update"


@pytest.mark.parametrize("type_token", sorted(TERRAFORM_TYPES))
def test_replacement_table_agrees_with_the_provider_schema(type_token: str) -> None:
    """Every GKE entry of gpudask/plan/replacement_kinds.yaml: `replace` exactly where the provider's
    field is ForceNew (`node-roll` and `update` are both in-place for the provider)."""
    fields = SCHEMA["resources"][TERRAFORM_TYPES[type_token]]
    entries = replacements.table()[type_token]
    assert entries
    wrong = []
    for path, entry in entries.items():
        tf = terraform_path(fields, path)
        if tf is None:
            wrong.append(f"{path}: no such field in the provider schema")
            continue
        says = "replace" if fields[tf] == "replace" else "in place"
        table = "replace" if entry["kind"] == "replace" else "in place"
        if says != table:
            wrong.append(f"{path} ({tf}): table says {entry['kind']}, the provider schema says {fields[tf]}")
    assert wrong == [], "\n".join(wrong)
