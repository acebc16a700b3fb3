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
    a default edited in the README, Pulumi.yaml or components/settings.py alone fails here."""
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
