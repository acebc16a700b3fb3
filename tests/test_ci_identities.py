"""CI identities: what docs/deploy.md grants, read from its commands, against what the workflows use.

A pull request runs its own branch's workflow file: whatever a PR job can impersonate, any writer
can use with commands of their choosing. These tests fail on each overgrant the 2026-12-03 review
found: the PR preview identity holding container.developer (Secrets, exec) and prod's state key,
usable from any branch; the deploy identity's project-wide serviceAccountUser and unconditioned
projectIamAdmin; federation on the repository's name instead of its numeric id.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from gpudask.record.recorder import PROJECT_DIR, run_program

DOC = (PROJECT_DIR / "docs" / "deploy.md").read_text()
WORKFLOWS = PROJECT_DIR / ".github" / "workflows"
# What a read-only identity may hold in an environment project.
READ_ONLY = {"roles/viewer", "roles/iam.securityReviewer", "roles/container.viewer", "roles/container.clusterViewer"}
# Roles that reach Secrets or exec in the cluster.
CLUSTER_WRITE = {"roles/container.developer", "roles/container.admin", "roles/editor", "roles/owner"}


def _commands() -> list[str]:
    """Every command of the doc's bash blocks, continuation lines joined and `for x in ...; do`
    loops unrolled (loop variables substituted), so a loop's grants count like written-out ones."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC, flags=re.S)
    text = "\n".join(blocks).replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    variables = dict(re.findall(r'^([A-Z_]+)="([^"$]*)"', "\n".join(lines), flags=re.M))

    def unroll(body: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(body):
            loop = re.match(r"for (\w+) in (.*); do$", body[i])
            if not loop:
                out.append(body[i])
                i += 1
                continue
            depth, j = 1, i + 1
            while depth:
                depth += body[j].startswith("for ") - (body[j] == "done")
                j += 1
            values = re.sub(r"\$(\w+)", lambda m: variables.get(m.group(1), m.group(0)), loop.group(2)).split()
            for value in values:
                out += [re.sub(rf"\${loop.group(1)}\b", value, line) for line in unroll(body[i + 1 : j - 1])]
            i = j
        return out

    return unroll(lines)


def _flag(command: str, name: str) -> str | None:
    found = re.search(rf"--{name}[ =](\"[^\"]*\"|'[^']*'|\S+)", command)
    return found.group(1).strip("\"'") if found else None


def _identity(member: str | None) -> str:
    return (member or "").removeprefix("serviceAccount:").lstrip("$")


def project_bindings() -> list[dict[str, Any]]:
    out = []
    for c in _commands():
        if c.startswith("gcloud projects add-iam-policy-binding"):
            condition = _flag(c, "condition")
            out.append(
                {
                    "who": _identity(_flag(c, "member")),
                    "role": _flag(c, "role"),
                    "condition": None if condition in (None, "None") else condition,
                    "project": c.split()[3],
                }
            )
    return out


def kms_bindings() -> list[tuple[str, str, str]]:
    """(identity, key, role) of every `gcloud kms keys add-iam-policy-binding`."""
    out = []
    for c in _commands():
        if c.startswith("gcloud kms keys add-iam-policy-binding"):
            out.append((_identity(_flag(c, "member")), c.split()[4], _flag(c, "role") or ""))
    return out


def impersonators() -> dict[str, list[str]]:
    """Identity -> the principal sets that may impersonate it (workloadIdentityUser)."""
    out: dict[str, list[str]] = {}
    for c in _commands():
        if c.startswith("gcloud iam service-accounts add-iam-policy-binding") and "workloadIdentityUser" in c:
            sa = c.split()[4].lstrip("$")
            out.setdefault(sa, []).append((_flag(c, "member") or "").split("$POOL/", 1)[-1])
    return out


def _pr_preview_job() -> dict[str, Any]:
    workflow = yaml.safe_load((WORKFLOWS / "pull-request.yml").read_text())
    return workflow["jobs"]["preview"]


def _auth_service_account(job: dict[str, Any]) -> str:
    step = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("google-github-actions/auth@"))
    return step["with"]["service_account"]


def _identities_used_by_pull_requests() -> dict[str, str]:
    """Doc identity variable -> the repository variable a pull_request job may pass to auth."""
    expression = _auth_service_account(_pr_preview_job())
    names = re.findall(r"vars\.GCP_(\w+)_SERVICE_ACCOUNT", expression)
    return {name: f"GCP_{name}_SERVICE_ACCOUNT" for name in names}


def test_federation_trusts_the_repositorys_numeric_id() -> None:
    provider = next(c for c in _commands() if "providers create-oidc" in c)
    condition = _flag(provider, "attribute-condition") or ""
    assert "assertion.repository_id ==" in condition, condition
    assert not re.search(r"assertion\.repository\s*==", condition), condition


def test_no_identity_a_pull_request_can_use_reaches_secrets_exec_or_prod() -> None:
    job = _pr_preview_job()
    used = _identities_used_by_pull_requests()
    assert used, "the PR preview job authenticates with no identity the doc defines"
    bindings = project_bindings()
    who_may = impersonators()
    for name in used:
        roles = {b["role"] for b in bindings if b["who"] == name}
        assert roles, f"{name}: no project roles in docs/deploy.md"
        assert not roles & CLUSTER_WRITE, f"{name}, usable from a PR, holds {sorted(roles & CLUSTER_WRITE)}"
        assert roles <= READ_ONLY, f"{name}, usable from a PR, holds {sorted(roles - READ_ONLY)}"
        prod_keys = [key for who, key, _ in kms_bindings() if who == name and "prod" in key]
        if prod_keys:
            # Only a protected environment's (or main's) tokens may impersonate an identity that
            # decrypts prod's state; a PR job gets them only through the environment's reviewers.
            members = who_may.get(name, [])
            assert members and all(
                m.startswith("attribute.environment/preview-") or m == "attribute.ref/refs/heads/main" for m in members
            ), f"{name} decrypts {prod_keys} and is impersonable by {members}"
            assert str(job.get("environment", "")).startswith("preview-"), "the PR preview job has no environment"
        else:
            prod_projects = [b["project"] for b in bindings if b["who"] == name and "prod" in b["project"]]
            assert prod_projects == [], f"{name} (repository-wide) holds roles in {prod_projects}"


def test_the_deploy_identity_acts_as_the_node_account_only() -> None:
    project_wide = [
        b for b in project_bindings() if b["who"] == "DEPLOY" and b["role"] == "roles/iam.serviceAccountUser"
    ]
    assert project_wide == [], "project-wide serviceAccountUser: actAs on every service account of the project"
    per_account = [
        c
        for c in _commands()
        if c.startswith("gcloud iam service-accounts add-iam-policy-binding")
        and "serviceAccount:$DEPLOY" in c
        and "roles/iam.serviceAccountUser" in c
    ]
    assert per_account and all(c.split()[4] == "$NODES" for c in per_account), per_account


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_deploy_identitys_iam_admin_grants_only_what_the_stack_grants(stack: str) -> None:
    granted = {m.inputs["role"] for m in run_program(stack).of_type("gcp:projects/iAMMember:IAMMember")}
    admin = [
        b for b in project_bindings() if b["who"] == "DEPLOY" and b["role"] == "roles/resourcemanager.projectIamAdmin"
    ]
    assert admin, "the deploy identity has no projectIamAdmin (the stack grants its node roles)"
    for binding in admin:
        condition = binding["condition"] or ""
        assert "iam.googleapis.com/modifiedGrantsByRole" in condition and ".hasOnly(" in condition, condition
    listed = re.search(r'NODE_ROLES="([^"]*)"', DOC)
    assert listed, "docs/deploy.md lists no NODE_ROLES"
    assert set(re.findall(r"'(roles/[^']+)'", listed.group(1))) == granted
