"""The README's config reference cannot drift from the code."""

from __future__ import annotations

import re

from components.settings import DASK_KEYS, EXISTING_KEYS, GROUP_KEYS, POOL_KEYS, TOP_KEYS
from gpudask.engine import PROJECT_DIR


def test_readme_documents_every_config_key() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    reference = readme.split("## Config reference", 1)[1].split("## Connect a client", 1)[0]
    documented = set(re.findall(r"`([a-zA-Z]+)`", reference))
    missing = (TOP_KEYS | POOL_KEYS | DASK_KEYS | GROUP_KEYS | EXISTING_KEYS) - documented
    assert not missing, f"README config reference lacks {sorted(missing)}"


def test_gotchas_entries_are_dated_and_sourced() -> None:
    entries = [line for line in (PROJECT_DIR / "GOTCHAS.md").read_text().splitlines() if line.startswith("- ")]
    assert entries
    for entry in entries:
        assert re.match(r"- \d{4}-\d{2}-\d{2}\. ", entry), entry
        assert entry.rstrip().endswith(")"), f"no source: {entry}"
