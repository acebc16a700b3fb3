"""The runtime's pure parts: `pulumi.com/waitFor` conditions, and the operator's command read
from the chart as real helm renders it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from gpudask.local.cluster.operator import CONTROLLER_MODULE, Operator, chart_folder, chart_operator, local_args
from gpudask.local.cluster.runtime import outside_cluster_rbac, wait_for_met
from gpudask.upstream import programs as upstream

PENDING = {"status": {"phase": "Pending"}}
RUNNING = {"status": {"phase": "Running"}}


@pytest.mark.parametrize(
    ("condition", "obj", "met"),
    [
        ("jsonpath={.status.phase}=Running", RUNNING, True),
        ("jsonpath={.status.phase}=Running", PENDING, False),  # the hang of dask/dask-kubernetes#968
        ("jsonpath={.status.phase}", PENDING, True),  # present, any value
        ("jsonpath={.status.phase}", {"status": {}}, False),
        ("jsonpath={.status.phase}", {}, False),
        ("jsonpath={.status.phase}", {"status": {"phase": ""}}, False),
    ],
)
def test_wait_for_conditions_read_like_kubectl_wait(condition: str, obj: dict, met: bool) -> None:
    assert wait_for_met(condition, obj) is met


def test_a_condition_that_is_not_jsonpath_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="condition=Ready"):
        wait_for_met("condition=Ready", RUNNING)


@pytest.fixture(scope="module")
def chart_objects() -> list[dict]:
    """The operator chart as real helm renders it into the `dask-operator` namespace."""
    rendered = subprocess.run(
        [
            str(upstream.binary("helm")),
            "template",
            "dask-kubernetes-operator",
            str(chart_folder()),
            "-n",
            "dask-operator",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(rendered) if d]


@pytest.fixture(scope="module")
def chart_deployment(chart_objects: list[dict]) -> dict:
    [deployment] = [d for d in chart_objects if d["kind"] == "Deployment"]
    return deployment


@pytest.mark.process
def test_the_operator_runs_what_the_chart_deployment_says(chart_deployment: dict, tmp_path) -> None:
    pod = chart_operator(chart_deployment, "dask-operator")
    assert pod.namespace == "dask-operator"
    assert pod.service_account == chart_deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert "--all-namespaces" in pod.args  # the chart's kopfArgs
    argv = Operator(pod, tmp_path / "kubeconfig", tmp_path, liveness_port=4321).argv()
    assert argv[1:6] == ["-m", "kopf", "run", "-m", CONTROLLER_MODULE]
    # The chart's liveness endpoint (0.0.0.0:8080) moves to loopback; nothing else changes.
    assert argv[6:] == [
        *[a for a in pod.args if not a.startswith("--liveness")],
        "--liveness=http://127.0.0.1:4321/healthz",
    ]
    assert local_args(["--liveness=http://0.0.0.0:8080/healthz", "-A"], 1) == [
        "-A",
        "--liveness=http://127.0.0.1:1/healthz",
    ]


@pytest.mark.process
def test_the_chart_lacks_only_port_forward_for_an_operator_outside_the_cluster(
    chart_objects: list[dict], chart_deployment: dict
) -> None:
    [role] = [d for d in chart_objects if d["kind"] == "ClusterRole"]
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert ("", "pods") in granted and ("", "pods/portforward") not in granted
    [extra, binding] = outside_cluster_rbac(chart_operator(chart_deployment, "dask-operator"))
    assert extra["rules"] == [{"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["get", "create"]}]
    assert binding["subjects"][0]["namespace"] == "dask-operator"


def test_the_client_security_follows_the_scheduler_address_scheme(tmp_path: Path) -> None:
    """A Security that requires encryption refuses a plain tcp:// scheduler: the runtime offers the
    stand-in client certificate only for a tls:// address."""
    from typing import Any, cast

    from gpudask.local.cluster.runtime import DaskRuntime

    for name in ("ca.pem", "client.pem", "client-key.pem"):
        (tmp_path / name).write_text("")
    none = cast(Any, None)
    runtime = DaskRuntime(none, none, "dask", none, none, none, tls_dir=tmp_path)
    assert runtime.client_security("tcp://127.0.0.1:8786") is None
    security = runtime.client_security("tls://127.0.0.1:8786")
    assert (
        security is not None
        and security.require_encryption
        and security.tls_client_cert == str(tmp_path / "client.pem")
    )
    assert DaskRuntime(none, none, "dask", none, none, none).client_security("tls://127.0.0.1:8786") is None
