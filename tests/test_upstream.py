"""Pinned upstream programs: the versions file, the generated build module, the per-user cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpudask.upstream import programs as upstream
from gpudask.upstream.programs import Program, UpstreamError, load_programs

ROOT = Path(__file__).resolve().parent.parent


def test_versions_file_pins_the_control_plane_programs() -> None:
    programs = load_programs()
    assert {"kubernetes", "etcd", "kwok", "helm"} <= set(programs)
    kube = programs["kubernetes"]
    assert kube.module == "k8s.io/kubernetes"
    assert kube.version.startswith("v1.34.")
    # Every staging module at the matching v0.<minor>.<patch> release: the build cannot resolve otherwise.
    staging = "v0" + kube.version.removeprefix("v1")
    assert kube.replace and set(kube.replace.values()) == {staging}
    assert {"kube-apiserver", "kube-controller-manager", "kube-scheduler"} <= set(kube.binaries)
    assert f"-X k8s.io/component-base/version.gitVersion={kube.version}" in kube.ldflags


def test_generated_module_requires_the_pin_and_replaces_staging() -> None:
    kube = load_programs()["kubernetes"]
    mod = kube.go_mod("1.24.0")
    assert "\tk8s.io/kubernetes v1.34.4\n" in mod
    assert "\tk8s.io/api => k8s.io/api v0.34.4\n" in mod
    assert '_ "k8s.io/kubernetes/cmd/kube-apiserver"' in kube.tools_go()
    assert load_programs()["etcd"].package("etcd") == "go.etcd.io/etcd/server/v3"


def test_bad_pins_are_all_reported_with_key_and_value(tmp_path: Path) -> None:
    bad = tmp_path / "versions.toml"
    bad.write_text(
        '[a]\nmodule = "x.io/a"\nversion = "1.2.3"\nbinaries = {a = "cmd/a"}\ncolour = "red"\n'
        '[b]\nmodule = "x.io/b"\nversion = "v1.0.0"\nbinaries = {a = "cmd/a"}\n'
        '[c]\nversion = "v1.0.0"\nbinaries = {}\nreplace = {"x.io/y" = "a b c"}\n'
    )
    with pytest.raises(UpstreamError) as err:
        load_programs(bad)
    text = str(err.value)
    assert "a.version: '1.2.3' is not a Go module version" in text
    assert "a.colour: unknown key" in text
    assert "c.module: None must be a non-empty string" in text
    assert "c.binaries: {} must map binary name -> package path" in text
    assert "c.replace.x.io/y: 'a b c' must be 'version' or 'module version'" in text


def _local_program(tmp_path: Path, greeting: str = "hello") -> Program:
    """A program whose module is a local folder (replace => path): a real `go build`, no network."""
    src = tmp_path / "hello"
    src.mkdir(exist_ok=True)
    (src / "go.mod").write_text("module example.com/hello\n\ngo 1.22\n")
    (src / "main.go").write_text(
        'package main\n\nimport "fmt"\n\nvar version = "unset"\n\n'
        f'func main() {{ fmt.Println("{greeting}", version) }}\n'
    )
    return Program(
        name="hello",
        module="example.com/hello",
        version="v0.0.0",
        binaries={"hello": "."},
        ldflags=("-X main.version=v0.0.0",),
        version_args=("--version",),
        replace={"example.com/hello": str(src)},
    )


@pytest.mark.process
def test_build_caches_by_version_and_rebuilds_only_on_a_recipe_change(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    program = _local_program(tmp_path)
    first = upstream.build_program(program, cache)
    assert first.built and first.path == cache / "hello-v0.0.0"
    out = subprocess.run([str(first.path / "bin" / "hello")], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "hello v0.0.0"  # the ldflags reached the binary
    record = json.loads((first.path / "build.json").read_text())
    assert record["version"] == "v0.0.0" and record["sizes"]["hello"] > 0

    again = upstream.build_program(program, cache)
    assert not again.built  # a second run builds nothing

    changed = Program(**{**program.__dict__, "ldflags": ("-X main.version=other",)})
    assert upstream.build_program(changed, cache).built  # same version, different recipe: rebuilt


@pytest.mark.process
def test_a_failed_build_says_what_and_leaves_no_half_cache(tmp_path: Path) -> None:
    program = _local_program(tmp_path)
    (tmp_path / "hello" / "main.go").write_text("package main\n\nfunc main() { undefined() }\n")
    with pytest.raises(
        UpstreamError, match=r"building hello of example.com/hello@v0.0.0 failed(.|\n)*undefined: undefined"
    ):
        upstream.build_program(program, tmp_path / "cache")
    assert not upstream.is_built(program, tmp_path / "cache")
    assert not (tmp_path / "cache" / "hello-v0.0.0" / "bin").exists()


def test_binary_names_the_build_command_when_not_building(tmp_path: Path) -> None:
    with pytest.raises(UpstreamError, match=r"run: python -m gpudask upstream build kubernetes"):
        upstream.binary("kube-apiserver", build_missing=False, root=tmp_path)
    with pytest.raises(UpstreamError, match=r"no pinned program builds 'kubelet'"):
        upstream.binary("kubelet", build_missing=False, root=tmp_path)


@pytest.mark.process
def test_cli_versions_prints_every_pin() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gpudask", "upstream", "versions"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    for program in load_programs().values():
        assert f"{program.name}\t{program.module}@{program.version}" in done.stdout
