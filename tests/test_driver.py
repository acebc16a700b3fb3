"""The NVIDIA driver: our DaemonSet against Google's manifest, its install script run for real,
`pulumi up` never waiting on it, and the driver each mode installs against each image's CUDA."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import driver_spec, gpu_drivers
from components.settings import SettingsError
from gpudask.plan import checks as recording_checks
from gpudask.record.recorder import Recording
from tests.conftest import settings_for

UPSTREAM = Path(__file__).with_name("data") / "nvidia-driver-installer-cos-preloaded-latest.yaml"
Run = Callable[..., Recording]

# Every field where our DaemonSet differs from the upstream copy (the file ours follows, at
# upstream HEAD), and why. Paths name list items by their `name` (containers, volumes, env,
# mounts) or `key` (match expressions).
DELIBERATE = {
    # Same behaviour in our own words (run for real below: skip when loaded, fail on a failed
    # install, chmod 755 after it).
    "spec.template.spec.initContainers[nvidia-driver-installer].command": "our wording of upstream's script",
    # Ours only: `pulumi up` must not wait for pods that only GPU nodes (possibly none) run.
    "metadata.annotations": "pulumi.com/skipAwait",
}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) and ("name" in v or "key" in v) for v in value):
        out = {}
        for v in value:
            out.update(_flatten(v, f"{prefix}[{v.get('name', v.get('key'))}]"))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _normalise(manifest: dict[str, Any]) -> dict[str, Any]:
    flat = _flatten(manifest)
    # Kubernetes reads "0.15" and "150m" as the same quantity; compare quantities, not spellings.
    return {k: ("150m" if v in ("0.15", "150m") else v) for k, v in flat.items()}


def _covered(path: str) -> bool:
    return any(path == d or path.startswith(d + ".") or path.startswith(d + "[") for d in DELIBERATE)


def test_daemonset_equals_upstream_but_for_the_listed_differences() -> None:
    ours, upstream = _normalise(driver_spec.driver_daemonset()), _normalise(yaml.safe_load(UPSTREAM.read_text()))
    differing = sorted(p for p in ours.keys() | upstream.keys() if ours.get(p) != upstream.get(p))
    unexplained = [(p, upstream.get(p), ours.get(p)) for p in differing if not _covered(p)]
    assert unexplained == [], "differences from upstream not listed in DELIBERATE (path, upstream, ours)"
    stale = [d for d in DELIBERATE if not any(p == d or p.startswith(d) for p in differing)]
    assert stale == [], "DELIBERATE lists differences that no longer exist"


def test_images_are_pinned_as_upstream_pins_them() -> None:
    spec = driver_spec.driver_daemonset()["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"].startswith("gke.gcr.io/pause:3.8@sha256:")
    partition = next(c for c in spec["initContainers"] if c["name"] == "partition-gpus")
    upstream = yaml.safe_load(UPSTREAM.read_text())["spec"]["template"]["spec"]
    upstream_partition = next(c for c in upstream["initContainers"] if c["name"] == "partition-gpus")
    assert partition["image"] == upstream_partition["image"]
    assert "@sha256:de12f85ebfb4" in partition["image"]


def _run_script(tmp_path: Path, lsmod_output: str, installer_rc: int) -> tuple[int, list[str]]:
    """The init container's script under bash, with lsmod, the installer and chmod stubbed."""
    log = tmp_path / "calls.log"
    command = driver_spec.driver_daemonset()["spec"]["template"]["spec"]["initContainers"][0]["command"]
    assert command[:2] == ["bash", "-c"]
    stubs = (
        f"lsmod() {{ printf '%s\\n' {lsmod_output!r}; }}\n"
        f'/cos-gpu-installer() {{ echo "installer $*" >> {log}; return {installer_rc}; }}\n'
        f'chmod() {{ echo "chmod $*" >> {log}; }}\n'
    )
    done = subprocess.run(["bash", "-c", stubs + command[2]], capture_output=True, text=True, check=False)
    return done.returncode, log.read_text().splitlines() if log.exists() else []


@pytest.mark.process  # runs the script under bash
def test_install_script_skips_a_node_whose_driver_is_loaded(tmp_path: Path) -> None:
    assert _run_script(tmp_path, "nvidia_uvm 1234 0\nnvidia 5678 1", 0) == (0, [])


@pytest.mark.process  # runs the script under bash
def test_install_script_installs_then_opens_the_directory_to_non_root_pods(tmp_path: Path) -> None:
    assert _run_script(tmp_path, "ext4 1 0", 0) == (
        0,
        ["installer install --version=latest", "chmod 755 /root/home/kubernetes/bin/nvidia"],
    )


@pytest.mark.process  # runs the script under bash
def test_install_script_fails_the_pod_when_the_install_fails(tmp_path: Path) -> None:
    assert _run_script(tmp_path, "ext4 1 0", 3) == (1, ["installer install --version=latest"])


def test_pulumi_up_does_not_wait_for_the_daemonset(recorded: Run) -> None:
    rec = recorded("prod")  # driver: daemonset
    ds = next(
        r
        for r in rec.resources.values()
        if r.type == "kubernetes:apps/v1:DaemonSet" and r.name.startswith("nvidia-driver")
    )
    assert ds.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}


@pytest.mark.parametrize(
    ("image", "driver", "fits"),
    [
        ("rapidsai/base:25.10-cuda12.9-py3.12", "daemonset", True),
        ("rapidsai/base:26.10-cuda12-py3.12", "gke-default", True),
        ("rapidsai/base:26.10-cuda13-py3.12", "daemonset", False),
        ("rapidsai/base:26.10-cuda13-py3.12", "gke-default", False),
        ("rapidsai/base:26.10-cuda13-py3.12", "gke-latest", True),
    ],
)
def test_settings_refuse_an_image_the_driver_cannot_run(image: str, driver: str, fits: bool) -> None:
    if fits:
        settings_for("prod", driver=driver, dask={**_prod_dask(), "image": image})
        return
    with pytest.raises(SettingsError) as raised:
        settings_for("prod", driver=driver, dask={**_prod_dask(), "image": image})
    assert any(
        p.startswith(f"dask.image: {image!r} is a CUDA 13 image, which needs NVIDIA driver >= 580") and driver in p
        for p in raised.value.problems
    ), raised.value.problems


def _prod_dask() -> dict[str, Any]:
    from tests.conftest import raw_config

    raw, _ = raw_config("prod")
    return dict(yaml.safe_load(raw["dask"]) if isinstance(raw["dask"], str) else raw["dask"])


def test_every_mode_and_channel_has_a_sourced_driver() -> None:
    for mode in ("daemonset", "gke-default", "gke-latest"):
        assert gpu_drivers.driver_source(mode)
        for channel in ("RAPID", "REGULAR", "STABLE", "EXTENDED"):
            assert gpu_drivers.driver_branch(mode, channel) >= 535


def _findings(rec: Recording) -> list[str]:
    return [str(f) for f in recording_checks.all_findings(rec)]


def test_plan_refuses_a_cuda13_image_on_the_daemonset_driver(recorded: Run) -> None:
    rec = copy.deepcopy(recorded("prod"))  # driver: daemonset
    cluster = next(r for r in rec.resources.values() if r.type.endswith(":DaskCluster"))
    cluster.inputs["spec"]["worker"]["spec"]["containers"][0]["image"] = "rapidsai/base:26.10-cuda13-py3.12"
    found = _findings(rec)
    assert any(
        "spec.worker.spec.containers[0].image" in f
        and "needs NVIDIA driver >= 580" in f
        and "'daemonset' installs 535" in f
        for f in found
    ), found


def test_plan_finds_a_gpu_container_without_the_driver_libraries(recorded: Run) -> None:
    rec = copy.deepcopy(recorded("dev"))
    cluster = next(r for r in rec.resources.values() if r.type.endswith(":DaskCluster"))
    container = cluster.inputs["spec"]["worker"]["spec"]["containers"][0]
    container["env"] = [e for e in container.get("env", []) if e["name"] != "LD_LIBRARY_PATH"]
    found = _findings(rec)
    assert any("spec.worker.spec.containers[0].env: LD_LIBRARY_PATH does not include" in f for f in found), found
