"""Packaging: pyproject declares what the code imports, agrees with requirements*.txt, and
`gpudask.client.connect` installs on its own (the `client` extra) without the Pulumi SDK."""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from gpudask.record.recorder import PROJECT_DIR

PYPROJECT = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
# Dask and the operator's client: clients must run the cluster's (the image's) Dask.
DASK_FAMILY = {"dask", "distributed", "dask-kubernetes", "rapids-dask-dependency"}
# Imported only where the RAPIDS image provides them (a GPU host); never installed by us.
# cupy, cudf: the RAPIDS image; kopf, aiohttp: the operator image, where components/operator_plugin.py runs
# (dask-kubernetes depends on both, so the venv has them for the plugin's tests).
FROM_THE_IMAGE = {"cupy", "cudf", "kopf", "aiohttp"}


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def _requirements(*files: str) -> dict[str, str]:
    """name -> specifier, from requirements files (following -r lines)."""
    found: dict[str, str] = {}
    for file in files:
        for line in (PROJECT_DIR / file).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("-r "):
                found |= _requirements(line[3:].strip())
            elif line and not line.startswith("-"):
                found[_name(line)] = str(Requirement(line).specifier)
    return found


def _imports(paths: list[Path]) -> set[str]:
    """Modules imported by these files (dotted), other than the project's and the stdlib."""
    modules: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module)
    own = {"components", "gpudask", "policies", "tests", "__future__"}
    return {m for m in modules if m.split(".")[0] not in own | sys.stdlib_module_names}


@functools.cache
def _packages_distributions() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()  # scans every installed distribution: once per run


@functools.cache
def _distribution_files(name: str) -> tuple[str, ...]:
    return tuple(str(f) for f in metadata.files(name) or [])


def _distributions(modules: set[str]) -> set[str]:
    """The installed distributions that provide these modules (a namespace package such as
    `google` is shared by several: the one holding the module's own folder is taken)."""
    by_top = _packages_distributions()
    found = set()
    for module in modules:
        candidates = by_top.get(module.split(".")[0], [module])
        if len(candidates) > 1:
            folder = module.replace(".", "/") + "/"
            candidates = [d for d in candidates if any(f.startswith(folder) for f in _distribution_files(d))] or list(
                candidates
            )
        found |= {_name(d) for d in candidates}
    return found


def test_every_range_in_pyproject_is_the_one_in_requirements_files() -> None:
    pinned = _requirements("requirements-dev.txt")
    for extra, requirements in EXTRAS.items():
        for requirement in requirements:
            name = _name(requirement)
            assert name in pinned, f"[{extra}] {requirement}: not in requirements*.txt"
            assert str(Requirement(requirement).specifier) == pinned[name], (
                f"[{extra}] {requirement} differs from requirements*.txt ({name}{pinned[name]})"
            )


# Declared in [tools] though no file of gpudask/, components/ or __main__.py imports them: each says why.
NOT_IMPORTED = {
    "rapids-dask-dependency": "pins dask and distributed to the RAPIDS image's",
    "pandas": "dask.dataframe's backend (the rehearsal's smoke workload)",
    "numpy": "dask.array's and pandas' backend (the smoke workload)",
    "pyarrow": "dask.dataframe's string and shuffle backend (the smoke workload)",
    "psutil": "the process tests (tests/test_rehearse*.py)",
}


def _tools_files() -> list[Path]:
    # Subpackages too (gpudask/local/cluster/): `**/*.py`.
    files = [*(PROJECT_DIR / "gpudask").glob("**/*.py"), *(PROJECT_DIR / "components").glob("**/*.py")]
    assert PROJECT_DIR / "gpudask" / "local" / "cluster" / "kube.py" in files
    return [*files, PROJECT_DIR / "__main__.py"]


def test_the_tools_extra_declares_only_what_is_imported_or_says_why() -> None:
    declared = {_name(r) for r in EXTRAS["tools"]}
    unused = declared - _distributions(_imports(_tools_files()))
    assert unused == set(NOT_IMPORTED), (
        f"declared in pyproject [tools], imported by nothing: {sorted(unused - set(NOT_IMPORTED))}"
    )


def test_the_tools_extra_declares_everything_the_tools_and_program_import() -> None:
    declared = {_name(r) for r in EXTRAS["tools"]}
    undeclared = _distributions(_imports(_tools_files())) - declared - FROM_THE_IMAGE
    assert not undeclared, f"imported by gpudask/components but not declared in pyproject [tools]: {sorted(undeclared)}"


def test_the_client_extra_declares_what_connect_imports_and_follows_the_dask_pin() -> None:
    declared = {_name(r) for r in EXTRAS["client"]}
    undeclared = _distributions(_imports([PROJECT_DIR / "gpudask" / "client" / "connect.py"])) - declared - {"dask"}
    # dask itself comes with distributed / dask-kubernetes; the pin below is what matters.
    assert not undeclared, f"gpudask.client.connect imports {sorted(undeclared)}, not in pyproject [client]"
    runtime = _requirements("requirements-dev.txt")
    client = {_name(r): str(Requirement(r).specifier) for r in EXTRAS["client"]}
    for name in DASK_FAMILY & set(runtime):
        assert client.get(name) == runtime[name], (
            f"requirements*.txt pin {name}{runtime[name]} (the image's Dask); pyproject [client] has {client.get(name)}"
        )


@pytest.mark.process
def test_connect_imports_without_the_pulumi_sdk() -> None:
    """What a notebook image with only the client extra would do."""
    code = "import sys, gpudask.client.connect; bad = {'pulumi', 'pulumi_gcp', 'jsonschema'} & set(sys.modules); assert not bad, bad"
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.process
def test_the_wheel_holds_the_package_and_its_extras(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("gpu_dask-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert {"gpudask/client/connect.py", "gpudask/__main__.py"} <= names
    assert not any(n.startswith(("components/", "tests/", "policies/")) for n in names)
    assert "Provides-Extra: client" in meta
    assert re.search(r"Requires-Dist: dask-kubernetes.*; extra == \"client\"", meta)


@pytest.mark.process
def test_pre_commit_config_is_valid() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
