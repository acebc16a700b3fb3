"""The README's config reference cannot drift from the code."""

from __future__ import annotations

import difflib
import re
import subprocess
from pathlib import Path

from gpudask.__main__ import main
from gpudask.docs import config_reference
from gpudask.record.recorder import PROJECT_DIR


def test_readme_config_reference_is_the_generated_one() -> None:
    """The table between the README markers is exactly what Pulumi.yaml and the parser say:
    a default edited in the README, Pulumi.yaml or components/settings/ alone fails here."""
    current = config_reference.readme_section((PROJECT_DIR / "README.md").read_text())
    wanted = config_reference.render()
    assert current == wanted, "README.md's config reference is stale: run `python -m gpudask docs`\n" + "\n".join(
        difflib.unified_diff(current.splitlines(), wanted.splitlines(), "README.md", "generated", lineterm="")
    )


def test_every_key_the_parser_accepts_is_documented() -> None:
    assert config_reference.undocumented() == []


def test_docs_command_checks_and_rewrites_only_between_the_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{config_reference.BEGIN}\n| `minNodes` | `7` | stale |\n{config_reference.END}\noutro\n")
    assert config_reference.write(readme) is True
    text = readme.read_text()
    assert text.startswith(f"intro\n{config_reference.BEGIN}\n") and text.endswith(f"{config_reference.END}\noutro\n")
    assert config_reference.readme_section(text) == config_reference.render()
    assert config_reference.write(readme) is False
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
