"""The real engine's pins, its build recipe and the PR comment it feeds: no process started."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
from packaging.version import Version

from gpudask.local import engine
from gpudask.local.engine import Result
from gpudask.local.engine.diff import comment
from gpudask.upstream.programs import UpstreamError, load_programs

ROOT = Path(__file__).resolve().parent.parent


def test_the_sdks_are_the_versions_the_engine_runs() -> None:
    programs = load_programs()
    # The SDK asks the engine for the provider plugin of its own version: they must be equal.
    assert programs["pulumi-kubernetes"].schema_version == metadata.version("pulumi-kubernetes")
    assert f"pulumi-kubernetes=={metadata.version('pulumi-kubernetes')}" in (ROOT / "requirements.txt").read_text()
    # ReplaceWith (GpuDaskCluster's owned groups) first shipped in the SDK 3.207.0.
    assert Version(metadata.version("pulumi")) >= Version("3.207.0")
    assert programs["pulumi"].version == "v3.276.0"
    # Inline destroy and refresh need a CLI >= 3.181.
    assert Version(programs["pulumi"].version.lstrip("v")) >= Version("3.181.0")


def test_the_provider_is_built_from_our_copy_of_its_main_package() -> None:
    provider = load_programs()["pulumi-kubernetes"]
    assert provider.main_from_module == ("cmd/pulumi-resource-kubernetes",)
    assert provider.package("pulumi-resource-kubernetes") == (
        "gpu-dask.local/upstream/pulumi-kubernetes/cmd/pulumi-resource-kubernetes"
    )
    # Our copy is not imported from the module (its embed files are not in the module zip).
    assert "cmd/pulumi-resource-kubernetes" not in provider.tools_go()
    assert "\tgithub.com/pulumi/pulumi-kubernetes/sdk/v4 => github.com/pulumi/pulumi-kubernetes/sdk/v4 v4.25.0\n" in (
        provider.go_mod("1.24.7")
    )
    assert "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=4.25.0" in provider.ldflags


def test_bad_generate_keys_are_reported_with_key_and_value(tmp_path: Path) -> None:
    bad = tmp_path / "versions.toml"
    bad.write_text(
        '[a]\nmodule = "x.io/a"\nversion = "v1.0.0"\nbinaries = {a = "cmd/a"}\nschema_version = "v1.0.0"\n'
        '[b]\nmodule = "x.io/b"\nversion = "v1.0.0"\nbinaries = {b = "cmd/b"}\nschema_version = "1.0.0"\n'
        '[c]\nmodule = "x.io/c"\nversion = "v1.0.0"\nbinaries = {c = "cmd/c"}\nmain_from_module = "cmd/c"\n'
    )
    with pytest.raises(UpstreamError) as err:
        load_programs(bad)
    text = str(err.value)
    assert "a.schema_version: 'v1.0.0' must be a release without 'v'" in text
    assert "b.schema_version: needs main_from_module" in text
    assert "c.main_from_module: 'cmd/c' must be a list of package paths" in text


def _step(op: str, name: str, kind: str, diffs: str = "") -> dict[str, str]:
    return {"op": op, "urn": f"urn:pulumi:dev::gpu-dask::{kind}::{name}", "type": kind, "diffs": diffs}


def test_the_pr_comment_shows_the_engines_verdicts_dangerous_first_and_names_both_judges() -> None:
    preview = Result(
        "preview",
        "dev",
        True,
        summary={"same": 12, "update": 1, "replace": 1},
        steps=[
            _step("update", "dask-operator-release", "kubernetes:helm.sh/v3:Release", "values"),
            # A replacement is three steps of one resource: one row, its strongest verdict, the fields named.
            _step("delete-replaced", "dask-cluster", "kubernetes:kubernetes.dask.org/v1:DaskCluster"),
            _step("replace", "dask-cluster", "kubernetes:kubernetes.dask.org/v1:DaskCluster", "spec"),
            _step("create-replacement", "dask-cluster", "kubernetes:kubernetes.dask.org/v1:DaskCluster"),
            _step("same", "dask-namespace", "kubernetes:core/v1:Namespace"),
        ],
    )
    text = comment("dev", Result("up", "dev", True, summary={"create": 14}), preview)
    lines = text.splitlines()
    assert lines[0] == "<!-- gpu-dask engine diff: dev -->"
    assert f"CLI {engine.cli_version()}" in text and f"pulumi-resource-kubernetes {engine.provider_version()}" in text
    assert "The GCP half is judged by the offline plan above (the program under mocks)" in text
    rows = [line for line in lines if line.startswith("| ") and "verdict" not in line]
    assert rows[0].startswith("| **replace** | `dask-cluster`") and rows[1].startswith(
        "| update | `dask-operator-release`"
    )
    assert "dask-namespace" not in text  # unchanged: counted in the summary only
    assert "Summary: 1 replace, 12 same, 1 update." in text


def test_the_pr_comment_says_when_nothing_changes_or_the_engine_refuses() -> None:
    quiet = Result(
        "preview", "prod", True, summary={"same": 14}, steps=[_step("same", "x", "kubernetes:core/v1:Namespace")]
    )
    assert "No change to the Kubernetes half (14 same)." in comment("prod", None, quiet, "the stack is new")
    refused = Result("preview", "prod", False, error="error: Service.get: not found")
    text = comment("prod", None, refused)
    assert "**The engine refused this pull request's program:**" in text and "Service.get: not found" in text
