"""CI workflows: valid, audited, covering every stack, secret-free where forks run, and the
comment they post built by a tested function."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpudask.plan import report as planning
from gpudask.record.recorder import PROJECT_DIR, run_program, stacks
from tests.conftest import EXISTING_STACKS, GKE_STACKS, recording

WORKFLOWS = PROJECT_DIR / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
BIN = Path(sys.executable).parent
STACK_FILES = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (PROJECT_DIR / "stacks").glob("Pulumi.*.yaml"))


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _jobs() -> dict[tuple[str, str], dict[str, Any]]:
    return {(p.stem, name): job for p in FILES for name, job in _load(p)["jobs"].items()}


def test_there_are_pull_request_deploy_and_drift_workflows() -> None:
    assert {p.stem for p in FILES} == {"pull-request", "deploy", "drift"}


@pytest.mark.process
def test_workflows_validate_against_the_github_actions_schema() -> None:
    done = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *FILES],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.process
def test_workflows_pass_zizmor_audits() -> None:
    done = subprocess.run(
        [BIN / "zizmor", "--offline", "--no-progress", WORKFLOWS], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings" in done.stdout + done.stderr


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    for path in FILES:
        for line in path.read_text().splitlines():
            if "uses:" in line:
                assert re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), f"{path.name}: {line}"


def _stacks_listed_by(jobs: dict[tuple[str, str], dict[str, Any]], workflow: str, reference: str) -> list[str]:
    """Run the very `gpudask stacks` command the referenced job runs, and return its list."""
    match = re.fullmatch(r"\$\{\{ fromJSON\(needs\.([\w-]+)\.outputs\.([\w-]+)\) \}\}", reference)
    assert match, reference
    job, output = match.groups()
    published = re.search(r"steps\.([\w-]+)\.outputs", jobs[(workflow, job)]["outputs"][output])
    assert published, jobs[(workflow, job)]["outputs"]
    step_id = published.group(1)
    step = next(s for s in jobs[(workflow, job)]["steps"] if s.get("id") == step_id)
    # The step's whole command, so the list it publishes is exactly what runs below.
    command = re.fullmatch(
        rf'echo "{output}=\$\(\.venv/bin/python -m gpudask stacks([^)]*)\)" >> "\$GITHUB_OUTPUT"', step["run"].strip()
    )
    assert command, step["run"]
    args = command.group(1)
    done = subprocess.run(
        [sys.executable, "-m", "gpudask", "stacks", *shlex.split(args)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.process
def test_matrices_cover_exactly_the_stacks_in_stacks_dir() -> None:
    jobs = _jobs()
    assert stacks() == STACK_FILES and len(STACK_FILES) >= 2
    matrices = {key: job["strategy"]["matrix"]["stack"] for key, job in jobs.items() if "strategy" in job}
    assert set(matrices) == {
        ("pull-request", "plan"),
        ("pull-request", "preview"),
        ("deploy", "promote"),
        ("drift", "refresh"),
    }
    for (workflow, job), reference in matrices.items():
        covered = _stacks_listed_by(jobs, workflow, reference)
        if (workflow, job) == ("deploy", "promote"):
            # dev deploys first in its own job; the rest follow it behind their environments.
            assert "dev" not in covered
            covered = ["dev", *covered]
        # The offline plan covers every stack; the cloud jobs the stacks whose cluster CI reaches
        # (no runner has a kubeconfig with an existingCluster stack's context).
        wanted = STACK_FILES if (workflow, job) == ("pull-request", "plan") else sorted(GKE_STACKS)
        assert sorted(covered) == wanted, (workflow, job)


@pytest.mark.process
def test_stacks_left_out_of_the_cloud_jobs_are_named_with_the_reason() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gpudask", "stacks", "--ci-reachable"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == GKE_STACKS
    assert EXISTING_STACKS, "the example existingCluster stack is what this is about"
    for stack in EXISTING_STACKS:
        assert f"left out {stack}: an existingCluster stack reaches its cluster through context " in done.stderr


def test_the_offline_part_needs_no_secrets_and_cloud_jobs_are_gated() -> None:
    jobs = _jobs()
    for key in (("pull-request", "stacks"), ("pull-request", "check"), ("pull-request", "plan")):
        text = yaml.safe_dump(jobs[key])
        assert "secrets." not in text and "id-token" not in text, key
        assert not any("google-github-actions" in str(s.get("uses", "")) for s in jobs[key]["steps"]), key
    for key, job in jobs.items():
        uses = [str(s.get("uses", "")) for s in job.get("steps", [])]
        if any(u.startswith("pulumi/actions") for u in uses):
            assert "vars.GCP_WORKLOAD_IDENTITY_PROVIDER != ''" in str(job.get("if", "")) or key == (
                "deploy",
                "promote",
            ), key
            assert job["permissions"]["id-token"] == "write", key
            auth = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("google-github-actions/auth"))
            assert set(auth["with"]) == {"workload_identity_provider", "service_account"}, "no key files"
    assert "head.repo.full_name == github.repository" in jobs[("pull-request", "preview")]["if"]
    # promote runs only after dev, which carries the gate.
    assert "dev" in jobs[("deploy", "promote")]["needs"]


def test_updates_are_serialised_per_stack_and_checked_for_a_clean_second_preview() -> None:
    jobs = _jobs()
    for key in (("deploy", "dev"), ("deploy", "promote"), ("drift", "refresh")):
        group = jobs[key]["concurrency"]
        assert group["group"] in ("pulumi-dev", "pulumi-${{ matrix.stack }}"), key
        assert group["cancel-in-progress"] is False, key
    for key in (("deploy", "dev"), ("deploy", "promote")):
        pulumi = [s["with"] for s in jobs[key]["steps"] if str(s.get("uses", "")).startswith("pulumi/actions")]
        assert [p["command"] for p in pulumi] == ["up", "preview"], key
        assert pulumi[1].get("expect-no-changes") is True, key
        assert pulumi[0].get("policyPacks") == "policies", key
    assert jobs[("deploy", "promote")]["environment"] == "${{ matrix.stack }}"
    drift = jobs[("drift", "refresh")]["steps"][-1]["run"]
    # preview --refresh diffs the cloud against the program with ignoreChanges applied;
    # refresh --preview-only would flag autoscaler node counts, version bumps and CR status.
    assert "pulumi preview" in drift and "--refresh" in drift and "--expect-no-changes" in drift
    assert "pulumi refresh" not in drift and "--preview-only" not in drift


CLOUD_JOBS = (("deploy", "dev"), ("deploy", "promote"), ("drift", "refresh"), ("pull-request", "preview"))


def test_cloud_jobs_reach_the_control_plane_through_the_dns_endpoint() -> None:
    """GitHub-hosted runners are in no authorizedNetworks range (and 0.0.0.0/0 is refused):
    the jobs that talk to the cluster do so through GKE's DNS-based endpoint with IAM, which
    needs the stack's kubeconfig to point there, the auth plugin, and Workload Identity
    credentials as application-default credentials (what the kubeconfig's plugin reads)."""
    import yaml as _yaml

    jobs = _jobs()
    for key in CLOUD_JOBS:
        job = jobs[key]
        assert str(job["runs-on"]).startswith("ubuntu-"), key  # GitHub-hosted, by choice
        uses = [str(s.get("uses", "")) for s in job["steps"]]
        auth = next(i for i, u in enumerate(uses) if u.startswith("google-github-actions/auth"))
        gcloud = next(i for i, u in enumerate(uses) if u.startswith("google-github-actions/setup-gcloud"))
        pulumi = max(i for i, u in enumerate(uses) if u.startswith("pulumi/actions"))
        assert auth < gcloud < pulumi, key
        assert job["steps"][gcloud]["with"]["install_components"] == "gke-gcloud-auth-plugin", key
    for path in FILES:
        assert "GKE's DNS-based endpoint" in path.read_text(), path.name
    # Only stacks that create their cluster export a kubeconfig; an existingCluster stack
    # reaches its cluster through a context of the ambient kubeconfig.
    for stack in GKE_STACKS:
        rec = recording(stack)
        config = _yaml.safe_load(rec.outputs["kubeconfig"])
        assert config["clusters"][0]["cluster"]["server"].endswith(".gke.goog"), stack
        assert config["users"][0]["user"]["exec"]["args"] == ["--use_application_default_credentials"], stack


def test_preview_comments_and_fails_on_policy_violations() -> None:
    preview = _jobs()[("pull-request", "preview")]
    step = next(s for s in preview["steps"] if str(s.get("uses", "")).startswith("pulumi/actions"))
    assert step["with"]["command"] == "preview"
    assert step["with"]["comment-on-pr"] is True and step["with"]["policyPacks"] == "policies"


# --- what the plan job posts --------------------------------------------------------------------
@pytest.fixture(scope="module")
def dev_plan() -> planning.Plan:
    return planning.build_plan(recording("dev"))


def test_comment_shows_a_pool_max_nodes_change(dev_plan: planning.Plan) -> None:
    pools = {"a100": {"machineType": "a2-highgpu-1g", "minNodes": 0, "maxNodes": 3, "spot": True}}
    head = planning.build_plan(run_program("dev", overrides={"gpu-dask:gpuNodePools": pools}))
    diff = planning.diff_plans(dev_plan.to_json(), head.to_json())
    comment = planning.pr_comment(head, diff)
    assert comment.splitlines()[0] == planning.comment_marker("dev") == "<!-- gpu-dask-plan:dev -->"
    assert "⚠️ 1 warning(s)" in comment and "is pinned by tag only" in comment  # dev's image (issue 21)
    assert "0 to add, 1 to change (0 replaced, 0 recreating their nodes), 0 to remove" in comment
    assert "`inputs.autoscaling.totalMaxNodeCount`: `2.0` → `3.0`" in comment
    assert "<details><summary>Full plan summary</summary>" in comment
    assert len(comment) < 65_536


def test_comment_flags_replacements_and_findings(dev_plan: planning.Plan) -> None:
    pools = {"a100": {"machineType": "a2-highgpu-2g", "minNodes": 0, "maxNodes": 2, "spot": True}}
    head = planning.build_plan(run_program("dev", overrides={"gpu-dask:gpuNodePools": pools}))
    head.findings.append(
        {"resource": "DaskCluster/dask/rapids", "path": "spec", "reason": "example finding", "severity": "error"}
    )
    comment = planning.pr_comment(head, planning.diff_plans(dev_plan.to_json(), head.to_json()))
    assert "❌ 1 error(s)" in comment and "example finding" in comment
    assert "⚠️ Replacing resources deletes and recreates them" in comment
    assert "gcp:container/nodePool:NodePool::gpu-a100-pool" in comment.split("⚠️ Replacing", 1)[1].splitlines()[0]


def test_comment_without_a_base_plan_says_so(dev_plan: planning.Plan) -> None:
    assert "No base plan to compare with" in planning.pr_comment(dev_plan, None)


def test_every_workflow_runs_the_python_minor_of_the_rapids_image() -> None:
    """cloudpickle does not cross Python minors: CI must run what the image and the venv run (issue 21, point 5)."""
    from components import settings
    from gpudask.client import versions

    image_python = versions.image_python(settings.DEFAULT_RAPIDS_IMAGE)
    found = []
    for (workflow, job), body in _jobs().items():
        for step in body.get("steps") or []:
            version = ((step.get("with") or {}).get("python-version")) if isinstance(step, dict) else None
            if version is not None:
                found.append((workflow, job, str(version)))
    assert found, "no setup-python step found in the workflows"
    wrong = [f"{w}/{j}: {v}" for w, j, v in found if ".".join(v.split(".")[:2]) != image_python]
    assert not wrong, f"workflows not on the image's Python {image_python}: {wrong}"
    assert versions.running_python() == image_python, "this venv is not on the image's Python minor"
