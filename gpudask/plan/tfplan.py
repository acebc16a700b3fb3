"""The GCP resources of a recorded stack as a Terraform-plan-shaped JSON document.

Checkov has no Pulumi framework, but pulumi-gcp is generated from the Terraform Google
provider: the same resources with the same fields, camelCase instead of snake_case, nested
blocks as objects instead of one-element lists. Translating that back lets Checkov's
`terraform_plan` checks for GKE read what this stack declares (`checkov -f tfplan.json`).
"""

from __future__ import annotations

import re
from typing import Any

from gpudask.record.recorder import Recording

# pulumi-gcp type -> Terraform type, for the types this stack declares.
TERRAFORM_TYPES = {
    "gcp:container/cluster:Cluster": "google_container_cluster",
    "gcp:container/nodePool:NodePool": "google_container_node_pool",
    "gcp:compute/network:Network": "google_compute_network",
    "gcp:compute/subnetwork:Subnetwork": "google_compute_subnetwork",
    "gcp:compute/router:Router": "google_compute_router",
    "gcp:compute/routerNat:RouterNat": "google_compute_router_nat",
    "gcp:serviceaccount/account:Account": "google_service_account",
    "gcp:projects/iAMMember:IAMMember": "google_project_iam_member",
}
# Fields that are maps (attributes) in Terraform, not nested blocks.
MAP_FIELDS = {"labels", "resource_labels", "metadata", "node_labels", "resource_manager_tags"}


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _terraform_value(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        converted = {snake(k): _terraform_value(snake(k), v) for k, v in value.items()}
        if key in MAP_FIELDS:
            return dict(value)
        return [converted]  # a nested block
    if isinstance(value, list):
        return [
            {snake(k): _terraform_value(snake(k), v) for k, v in item.items()} if isinstance(item, dict) else item
            for item in value
        ]
    return value


def _values(inputs: dict[str, Any]) -> dict[str, Any]:
    return {snake(k): _terraform_value(snake(k), v) for k, v in inputs.items()}


def terraform_plan(rec: Recording) -> dict[str, Any]:
    resources, changes = [], []
    for r in rec.resources.values():
        tf_type = TERRAFORM_TYPES.get(r.type)
        if tf_type is None or r.read:
            continue
        name = re.sub(r"[^a-zA-Z0-9_]", "_", r.name)
        address = f"{tf_type}.{name}"
        values = _values(r.inputs)
        resources.append(
            {
                "address": address,
                "mode": "managed",
                "type": tf_type,
                "name": name,
                "provider_name": "registry.terraform.io/hashicorp/google",
                "values": values,
            }
        )
        changes.append(
            {
                "address": address,
                "mode": "managed",
                "type": tf_type,
                "name": name,
                "provider_name": "registry.terraform.io/hashicorp/google",
                "change": {"actions": ["create"], "before": None, "after": values},
            }
        )
    return {
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "planned_values": {"root_module": {"resources": resources}},
        "resource_changes": changes,
        "configuration": {"root_module": {"resources": []}},
    }
