"""The Dask namespace's guard rails, checked against what the operator really builds, and
mutual TLS, checked with real processes."""

from __future__ import annotations

import copy
import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dask.config
import pytest
from distributed import Client

from components import security_spec
from components.operator_spec import NAMESPACE as OPERATOR_NAMESPACE
from gpudask.client.connect import ConnectError, connect, stack_outputs
from gpudask.local.rehearse import Rehearsal, rehearsal
from gpudask.record import dask_operator
from gpudask.record.recorder import Recording, load_config, run_program
from tests.conftest import recording

from .conftest import STACKS, manifests_of, operator_pods, selects, settings_for

Run = Callable[..., Recording]


@pytest.mark.parametrize("stack", STACKS)
def test_namespace_enforces_pod_security_restricted_and_every_pod_meets_it(recorded: Run, stack: str) -> None:
    rec, s = recorded(stack), settings_for(stack)
    namespace = next(m for m in manifests_of(rec, "Namespace") if m["metadata"]["name"] == s.dask.namespace)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for _labels, pod in operator_pods(rec):
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] == security_spec.service_account_name(s.dask)
        assert {next(iter(v.keys() - {"name"})) for v in pod.get("volumes") or []} <= {"secret", "emptyDir"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["runAsNonRoot"] is True and context["runAsUser"] == 1001


@pytest.mark.parametrize("stack", STACKS)
def test_network_policies_select_the_pods_the_operator_builds(recorded: Run, stack: str) -> None:
    rec, s = recorded(stack), settings_for(stack)
    policies = {m["metadata"]["name"]: m["spec"] for m in manifests_of(rec, "NetworkPolicy")}
    pods = operator_pods(rec)
    deny = policies[f"{s.dask.name}-default-deny-ingress"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    intra = policies[f"{s.dask.name}-intra-cluster"]
    assert all(selects(intra["podSelector"], labels) for labels, _ in pods)  # every scheduler and worker
    assert all(selects(intra["ingress"][0]["from"][0]["podSelector"], labels) for labels, _ in pods)
    clients = policies[f"{s.dask.name}-scheduler-clients"]
    selected = [labels["dask.org/component"] for labels, _ in pods if selects(clients["podSelector"], labels)]
    assert selected == ["scheduler"]
    rules = clients["ingress"]
    operator_rule = rules[0]
    assert operator_rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": OPERATOR_NAMESPACE}}}
    ]
    assert operator_rule["ports"] == [{"protocol": "TCP", "port": 8787}]  # HTTP API only, never 8786
    peers = [p for rule in rules[1:] for p in rule["from"]]
    assert [p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p] == list(s.dask.client_cidrs)
    namespaces = [
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in peers if "namespaceSelector" in p
    ]
    assert namespaces == list(s.dask.client_namespaces)
    if peers:
        # Clients: the comm port only; 8787 (dashboard, unauthenticated HTTP API) is the operator's.
        assert {p["port"] for p in rules[1]["ports"]} == {8786}


@pytest.mark.parametrize("stack", STACKS)
def test_workers_have_a_disruption_budget_and_the_scheduler_the_http_api(recorded: Run, stack: str) -> None:
    rec = recorded(stack)
    pdb = next(m for m in manifests_of(rec, "PodDisruptionBudget") if m["metadata"]["name"].endswith("-workers"))[
        "spec"
    ]
    pods = operator_pods(rec)
    assert pdb["maxUnavailable"] == 1
    assert [labels["dask.org/component"] for labels, _ in pods if selects(pdb["selector"], labels)] == ["worker"] * (
        len(pods) - 1
    )
    scheduler = next(pod for labels, pod in pods if labels["dask.org/component"] == "scheduler")
    env = {e["name"]: e["value"] for e in scheduler["containers"][0]["env"]}
    # What dask itself makes of the variable: a list that includes the operator's API.
    parsed = dask.config.collect_env(
        {"DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES": env["DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES"]}
    )
    routes = parsed["distributed"]["scheduler"]["http"]["routes"]
    assert "distributed.http.scheduler.api" in routes
    assert set(dask.config.get("distributed.scheduler.http.routes")) <= set(routes)  # nothing default lost


def test_tls_stack_wires_certificates_into_pods_and_outputs(recorded: Run) -> None:
    rec, s = recorded("prod"), settings_for("prod")
    assert s.dask.tls
    keys = [r for r in rec.of_type("tls:index/privateKey:PrivateKey")]
    assert len(keys) == 4 and all(k.inputs == {"algorithm": "ECDSA", "ecdsaCurve": "P256"} for k in keys)
    secret = rec.one("kubernetes:core/v1:Secret")
    assert set(secret.inputs["stringData"]) == set(security_spec.TLS_FILES)
    assert "stringData" in secret.secret_inputs
    for labels, pod in operator_pods(rec):
        env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
        assert env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] == "True"
        tls_volumes = [v for v in pod["volumes"] if "secret" in v]
        assert tls_volumes == [{"name": "dask-tls", "secret": {"secretName": "rapids-tls", "defaultMode": 0o440}}]
        if labels["dask.org/component"] == "worker":
            assert env["DASK_SCHEDULER_ADDRESS"] == rec.outputs["schedulerAddress"]
        else:
            assert pod["containers"][0]["args"][-2:] == ["--protocol", "tls"]
    assert rec.outputs["schedulerAddress"].startswith("tls://")
    assert "tlsClientKeyPem" in rec.secret_outputs


def test_without_the_explicit_address_the_operator_would_inject_tcp() -> None:
    """Why workers carry DASK_SCHEDULER_ADDRESS with TLS: the operator's builder fills in
    tcp:// when it is absent, which a require-encryption scheduler refuses."""
    rec = recording("prod")
    cluster = copy.deepcopy(manifests_of(rec, "DaskCluster")[0])
    container = cluster["spec"]["worker"]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "DASK_SCHEDULER_ADDRESS"]
    worker = next(
        o for o in dask_operator.created_objects(cluster) if o["metadata"]["labels"]["dask.org/component"] == "worker"
    )
    env = {e["name"]: e["value"] for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DASK_SCHEDULER_ADDRESS"].startswith("tcp://")
    assert env["DASK_SCHEDULER_ADDRESS"] != rec.outputs["schedulerAddress"]


# --- real processes -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_cluster() -> Iterator[Rehearsal]:
    dask_config = json.loads(load_config("dev")["gpu-dask:dask"]) | {"tls": True}
    with rehearsal(run_program("dev", overrides={"gpu-dask:dask": dask_config}), timeout=90) as running:
        yield running


@pytest.mark.process
def test_tls_client_works_and_plain_tcp_is_refused(tls_cluster: Rehearsal) -> None:
    assert tls_cluster.address.startswith("tls://127.0.0.1:")
    with Client(tls_cluster.address, security=tls_cluster.security(), timeout=30) as client:
        assert client.submit(sum, [1, 2], pure=False).result(timeout=30) == 3
        assert len(client.scheduler_info()["workers"]) == 1
    plain = tls_cluster.address.replace("tls://", "tcp://")
    with pytest.raises((OSError, TimeoutError)):
        Client(plain, timeout=5)


@pytest.mark.process
def test_scheduler_serves_the_operators_http_api(tls_cluster: Rehearsal) -> None:
    url = tls_cluster.dashboard.replace("/status", "/api/v1/get_workers")
    with urllib.request.urlopen(url, timeout=10) as response:
        workers = json.loads(response.read())["workers"]
    assert [w["name"] for w in workers] == ["rapids-default-worker-0000000000"]


def _tls_outputs(running: Rehearsal, dev_outputs: dict[str, Any]) -> dict[str, Any]:
    assert running.tls_files
    return dev_outputs | {
        "schedulerAddress": running.address,
        "tlsCaCertPem": running.tls_files["ca"].read_text(),
        "tlsClientCertPem": running.tls_files["client"].read_text(),
        "tlsClientKeyPem": running.tls_files["client-key"].read_text(),
    }


@pytest.mark.process
def test_connect_uses_the_tls_outputs(tls_cluster: Rehearsal, tmp_path: Path) -> None:
    outputs = _tls_outputs(tls_cluster, recording("dev").outputs)
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    with connect(outputs=path) as conn:
        assert conn.via == tls_cluster.address
        assert conn.client.submit(sum, [2, 3], pure=False).result(timeout=30) == 5


@pytest.mark.process
def test_tls_outputs_with_a_plain_address_are_refused(tls_cluster: Rehearsal) -> None:
    outputs = _tls_outputs(tls_cluster, recording("dev").outputs)
    outputs["schedulerAddress"] = outputs["schedulerAddress"].replace("tls://", "tcp://")
    with pytest.raises(ConnectError, match="is not a tls:// address, but the stack has TLS certificates"):
        stack_outputs(outputs=outputs)
    del outputs["tlsClientKeyPem"]
    outputs["schedulerAddress"] = tls_cluster.address
    with pytest.raises(ConnectError, match="lack tlsClientKeyPem"):
        stack_outputs(outputs=outputs)


# --- who may reach what: every NetworkPolicy of the stack, evaluated --------------------------------
def _admitted(
    policies: list[dict[str, Any]], source_ns: str, source: dict[str, str], target: dict[str, str], port: int
) -> bool:
    """Whether NetworkPolicies admit a pod (namespace, labels) to a Dask pod's TCP `port`
    (Kubernetes semantics: a selected pod takes the union of its policies' ingress rules;
    a peer's namespaceSelector and podSelector must both match)."""
    selecting = [p for p in policies if selects(p["spec"]["podSelector"], target)]
    assert selecting, "the default-deny policy selects every pod"
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            if rule.get("ports") and port not in {p["port"] for p in rule["ports"]}:
                continue
            for peer in rule.get("from") or [{}]:
                if "ipBlock" in peer:
                    continue  # addresses outside the cluster: not pods
                ns_selector = peer.get("namespaceSelector")
                ns_ok = (
                    selects(ns_selector, {"kubernetes.io/metadata.name": source_ns})
                    if ns_selector is not None
                    else source_ns == policy["metadata"]["namespace"]
                )
                pod_ok = selects(peer.get("podSelector") or {}, source)
                if ns_ok and pod_ok:
                    return True
    return False


COLLECTOR = ("gmp-system", {"app.kubernetes.io/name": "collector", "app": "managed-prometheus-collector"})


@pytest.mark.parametrize("stack", STACKS)
def test_the_metrics_collector_reaches_exactly_the_metrics_ports_and_nothing_more(recorded: Run, stack: str) -> None:
    s = settings_for(stack)
    gmp = stack != "existing"
    rec = recorded(stack) if gmp else recorded(stack, overrides={"gpu-dask:monitoring": {"collection": "gmp"}})
    policies = manifests_of(rec, "NetworkPolicy")
    pods = [labels for labels, _ in operator_pods(rec)]
    scheduler = next(p for p in pods if p["dask.org/component"] == "scheduler")
    workers = [p for p in pods if p["dask.org/component"] == "worker"]
    ports = (8786, 8787, 8788, 9400, 443)

    def reach(ns: str, labels: dict[str, str], target: dict[str, str]) -> set[int]:
        return {port for port in ports if _admitted(policies, ns, labels, target, port)}

    assert reach(*COLLECTOR, scheduler) == {8787}  # /metrics on the scheduler's HTTP server; never comms
    assert all(reach(*COLLECTOR, w) == {8788} for w in workers)  # each worker's --dashboard-address
    # Another pod of gmp-system (the operator, rule-evaluator...) and a collector-labelled pod in
    # any other namespace get nothing.
    for ns, labels in [
        ("gmp-system", {"app.kubernetes.io/name": "rule-evaluator"}),
        ("gmp-system", {}),
        ("default", COLLECTOR[1]),
        ("monitoring", {"app.kubernetes.io/name": "prometheus"}),
    ]:
        assert reach(ns, labels, scheduler) == set() and all(reach(ns, labels, w) == set() for w in workers)
    # What was admitted before stays admitted: the operator's HTTP API, the cluster's own pods.
    assert reach(OPERATOR_NAMESPACE, {}, scheduler) == {8787}
    assert reach(s.dask.namespace, workers[0], scheduler) == set(ports)
    # And without collection, the collector gets nothing at all.
    off = recorded(stack, overrides={"gpu-dask:monitoring": {"collection": "none", "dashboard": False}})
    policies = manifests_of(off, "NetworkPolicy")
    assert reach(*COLLECTOR, scheduler) == set() and all(reach(*COLLECTOR, w) == set() for w in workers)
