"""Two plans of the same code print the same files.

The program's resources register in the order their inputs resolve, and a mock's outputs come
back through protobuf Structs, whose keys have no order: both varied from run to run, so the
PR comment's pool table, tfplan.json and the manifests changed order between two plans of the
same commit, and a reviewer's diff showed changes nobody made.
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gpudask.plan.report import canonical, manifest_files

ROOT = Path(__file__).resolve().parent.parent


def _reversed_keys(value: object) -> object:
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


MANIFESTS = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dask", "labels": {"b": "2", "a": "1"}}},
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "plugin", "namespace": "dask-operator"},
        "data": {"module.py": "x = 1\n", "METADATA": "Name: p\n"},
    },
    {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"namespace": "dask", "name": "rapids"},
        "spec": {"ports": [{"port": 8786, "name": "tcp-comm"}]},
    },
]


def test_manifest_files_do_not_depend_on_the_order_of_manifests_or_of_their_keys() -> None:
    files = manifest_files(MANIFESTS)
    shuffled = manifest_files([_reversed_keys(m) for m in reversed(MANIFESTS)])  # type: ignore[misc]
    assert shuffled == files
    assert list(files) == [
        "00-configmap-dask-operator-plugin.yaml",
        "01-namespace-cluster-dask.yaml",
        "02-service-dask-rapids.yaml",
    ]
    service = files["02-service-dask-rapids.yaml"]
    assert service.splitlines()[:3] == ["apiVersion: v1", "kind: Service", "metadata:"], service
    assert yaml.safe_load(service) == MANIFESTS[2], "canonical order changed the content"


def test_canonical_keeps_list_order() -> None:
    assert canonical({"args": ["b", "a"], "env": [{"value": "1", "name": "X"}]}) == {
        "args": ["b", "a"],
        "env": [{"name": "X", "value": "1"}],
    }


@pytest.mark.process
def test_two_plans_of_the_same_code_write_the_same_files(tmp_path: Path) -> None:
    """`gpudask plan prod` twice, in fresh interpreters with different hash seeds: every file it
    writes (PR comment, summary, plan.json, tfplan.json, manifests) is byte-identical."""
    builds = []
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-m", "gpudask", "plan", "prod", "--out", str(tmp_path / seed)],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        builds.append(tmp_path / seed)
    first, second = builds
    compared = filecmp.dircmp(first, second)
    differing: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str = "") -> None:
        differing.extend(f"{prefix}{name}" for name in cmp.diff_files + cmp.left_only + cmp.right_only)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(compared)
    assert sorted(p.name for p in first.iterdir()), "the plan wrote nothing"
    assert not differing, f"two plans of the same code differ in {differing}"
