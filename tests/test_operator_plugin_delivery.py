"""The stack's operator plugin reaches the operator as on GKE (issue 21, point 3's delivery).

The chart is rendered by the real helm with the stack's values (ConfigMap volume, mount,
PYTHONPATH); the local harness reads the Deployment as it does on the control plane
(`chart_operator`), writes the mounted ConfigMap's files where the kubelet would and moves the
env's paths there (`Operator.local_env`); then the operator's own controller module is imported
with that env in a fresh interpreter, as `kopf run -m dask_kubernetes.operator.controller` does:
its `entry_points(group="dask_operator_plugin")` must load the plugin, and the plugin's kopf
startup handler (which replaces `retire_workers`) must be registered."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import operator_plugin, operator_plugin_spec
from components.operator_spec import NAMESPACE, operator_values
from gpudask.local.cluster.operator import Operator, chart_folder, chart_operator
from gpudask.upstream import programs as upstream

pytestmark = pytest.mark.process
HANG_S = 120

PROBE = """
import kopf
from dask_kubernetes.operator.controller import controller
print("plugins:", sorted(p.__name__ for p in controller.PLUGINS))
handlers = kopf.get_default_registry()._activities.get_all_handlers()
print("startup:", sorted(h.id for h in handlers))
"""


def _deployment(tmp_path: Path) -> dict:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(operator_values("system")))
    rendered = subprocess.run(
        [str(upstream.binary("helm")), "template", "dask-kubernetes-operator", str(chart_folder()), "-n", NAMESPACE,
         "-f", str(values)],
        capture_output=True, text=True, check=True, timeout=HANG_S,
    ).stdout  # fmt: skip
    [deployment] = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment"]
    return deployment


def test_the_operator_loads_the_stacks_plugin_from_its_config_map(tmp_path: Path) -> None:
    pod = chart_operator(_deployment(tmp_path), NAMESPACE)
    assert pod.config_map_mounts, "the chart's Deployment mounts no ConfigMap: the plugin never reaches the operator"
    config_map = operator_plugin_spec.config_map(NAMESPACE)
    operator = Operator(
        pod, tmp_path / "kubeconfig", tmp_path / "op", config_maps={config_map["metadata"]["name"]: config_map["data"]}
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASK_", "PYTHONPATH"))} | operator.local_env()
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_S
    )
    print(done.stdout, done.stderr[-2000:])
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"'{operator_plugin.MODULE}'" in done.stdout.split("plugins:")[1].splitlines()[0], done.stdout
    assert "gpudask_retire_workers" in done.stdout.split("startup:")[1], done.stdout


@pytest.mark.control_plane
def test_the_local_operator_reads_the_plugin_from_the_api_server(
    shared_control_plane: Any, control_plane_namespace: str, tmp_path: Path
) -> None:
    """What the local harness does on the control plane: the ConfigMap the stack applies is read back
    from the real API server (`config_maps_for`) and the operator's env then loads the plugin."""
    from dataclasses import replace

    from gpudask.local.cluster.operator import config_maps_for

    kube = shared_control_plane.kube()
    config_map = operator_plugin_spec.config_map(control_plane_namespace)
    kube.request("POST", f"/api/v1/namespaces/{control_plane_namespace}/configmaps", config_map)
    pod = replace(chart_operator(_deployment(tmp_path), NAMESPACE), namespace=control_plane_namespace)
    found = config_maps_for(kube, pod)
    assert set(found) == {operator_plugin_spec.CONFIG_MAP}, found
    operator = Operator(pod, tmp_path / "kubeconfig", tmp_path / "op", config_maps=found)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASK_", "PYTHONPATH"))} | operator.local_env()
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_S
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"'{operator_plugin.MODULE}'" in done.stdout.split("plugins:")[1].splitlines()[0], done.stdout
