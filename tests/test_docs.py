"""The README's config reference cannot drift from the code."""

from __future__ import annotations

import difflib
import re
import subprocess
from pathlib import Path

import yaml

from components.settings import PULUMI_TYPES, SCALAR_KEYS, TOP
from gpudask.__main__ import main
from gpudask.docs import config_reference
from gpudask.record.recorder import PROJECT_DIR


def test_readme_config_reference_is_the_generated_one() -> None:
    """The table between the README markers is exactly what the config declaration says: a default
    or meaning edited in the README alone, or in components/settings/keys.py without `docs`, fails here."""
    current = config_reference.readme_section((PROJECT_DIR / "README.md").read_text())
    wanted = config_reference.render()
    assert current == wanted, "README.md's config reference is stale: run `python -m gpudask docs`\n" + "\n".join(
        difflib.unified_diff(current.splitlines(), wanted.splitlines(), "README.md", "generated", lineterm="")
    )


def test_pulumi_yaml_config_block_is_the_generated_one() -> None:
    """Pulumi.yaml's `config:` block (the defaults the CLI applies) is exactly what the declaration says."""
    current = config_reference.pulumi_config_section((PROJECT_DIR / "Pulumi.yaml").read_text())
    wanted = config_reference.render_pulumi_config()
    assert current == wanted, "Pulumi.yaml's config block is stale: run `python -m gpudask docs`\n" + "\n".join(
        difflib.unified_diff(current.splitlines(), wanted.splitlines(), "Pulumi.yaml", "generated", lineterm="")
    )


def test_the_generated_pulumi_yaml_reads_back_as_the_declaration() -> None:
    """What YAML (and so the Pulumi CLI) reads from the generated block: every scalar key with its
    declared type, meaning and default, and nothing else; the quoting of '', [], `:` survives."""
    project = yaml.safe_load(config_reference.render_pulumi_config())["config"]
    scalars = {k.name: k for k in TOP.values() if k.type in PULUMI_TYPES}
    assert list(project) == list(scalars) and set(project) == SCALAR_KEYS
    for name, key in scalars.items():
        assert project[name]["type"] == PULUMI_TYPES[key.type], name
        assert project[name]["description"] == key.description, name
        assert project[name]["default"] == key.default, name
    # The CLI requires every key without a default of every stack (issue 25): an empty default,
    # which the program refuses for a stack that creates GKE and accepts with existingCluster.
    assert project["authorizedNetworks"]["default"] == [] and project["authorizedNetworks"]["items"] == {
        "type": "string"
    }
    assert project["operatorChart"]["default"] == ""


def test_docs_command_checks_and_rewrites_only_the_generated_parts(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{config_reference.BEGIN}\n| `minNodes` | `7` | stale |\n{config_reference.END}\noutro\n")
    assert config_reference.write(readme) is True
    text = readme.read_text()
    assert text.startswith(f"intro\n{config_reference.BEGIN}\n") and text.endswith(f"{config_reference.END}\noutro\n")
    assert config_reference.readme_section(text) == config_reference.render()
    assert config_reference.write(readme) is False
    pulumi_yaml = tmp_path / "Pulumi.yaml"
    pulumi_yaml.write_text("name: x\n# kept\nconfig:\n  location:\n    type: string\n    default: stale\n")
    assert config_reference.write_pulumi_yaml(pulumi_yaml) is True
    assert pulumi_yaml.read_text() == "name: x\n# kept\n" + config_reference.render_pulumi_config()
    assert config_reference.write_pulumi_yaml(pulumi_yaml) is False
    assert config_reference.stale(readme, pulumi_yaml) == []
    assert main(["docs", "--check"]) == 0


def test_nothing_cites_a_file_outside_the_repo() -> None:
    """Sources are upstream documents or files in this repository (the team's notes are neither)."""
    tracked = subprocess.run(["git", "ls-files"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
    citing = [
        path
        for path in tracked.stdout.split()
        if path != "tests/test_docs.py"
        and (PROJECT_DIR / path).is_file()
        and "FACTS.md" in (PROJECT_DIR / path).read_text(errors="replace")
    ]
    assert citing == []


def test_gotchas_entries_are_dated_and_sourced() -> None:
    entries = [line for line in (PROJECT_DIR / "GOTCHAS.md").read_text().splitlines() if line.startswith("- ")]
    assert entries
    for entry in entries:
        assert re.match(r"- \d{4}-\d{2}-\d{2}\. ", entry), entry
        assert entry.rstrip().endswith(")"), f"no source: {entry}"


def test_gotchas_names_the_command_the_drift_job_runs() -> None:
    """The drift job's `Us:` line in GOTCHAS says what drift.yml runs, not the earlier command."""
    workflow = (PROJECT_DIR / ".github" / "workflows" / "drift.yml").read_text()
    gotchas = (PROJECT_DIR / "GOTCHAS.md").read_text()
    runs = re.findall(r"^\s*pulumi (preview|refresh) [^\n]*--expect-no-changes", workflow, flags=re.MULTILINE)
    assert runs == ["preview"] and "--refresh" in workflow, runs
    us_lines = [line for line in gotchas.splitlines() if line.strip().startswith("- Us:") and "drift job" in line]
    assert us_lines, "GOTCHAS has no Us: line about the drift job"
    for line in us_lines:
        assert "refresh --preview-only" not in line, line


def test_image_cache_doc_builds_the_image_the_stacks_run() -> None:
    """A cache disk built from another tag than the pods' image is never used."""
    import json

    from gpudask.record.recorder import load_config
    from tests.conftest import GKE_STACKS

    doc = (PROJECT_DIR / "docs" / "image-cache.md").read_text()
    (built,) = re.findall(r"^IMAGE=(\S+)", doc, flags=re.MULTILINE)
    images = {json.loads(load_config(stack)["gpu-dask:dask"])["image"] for stack in GKE_STACKS}
    assert built in images, (built, images)


def test_no_tracked_file_holds_a_merge_conflict_marker() -> None:
    """A merge landed with its conflict unresolved (README.md on main, 2026-12-03) reads as prose to
    every other test; the markers themselves never belong in a file."""
    tracked = subprocess.run(["git", "ls-files"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
    markers = re.compile(r"^(<{7} |>{7} |={7}$)", flags=re.MULTILINE)
    found = [
        path
        for path in tracked.stdout.split()
        if (PROJECT_DIR / path).is_file()
        and (PROJECT_DIR / path).stat().st_size < 2_000_000
        and markers.search((PROJECT_DIR / path).read_text(errors="replace"))
    ]
    assert found == [], f"merge conflict markers in {found}"
