"""A certificate renewal reaches the pods: Dask loads its certificates once, so a renewed
Secret alone changes nothing running. The certificates' digest sits in the DaskCluster's
scheduler metadata, a replaceOnChanges path: a renewal replaces the cluster."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable

from components.dask_spec import TLS_DIGEST_ANNOTATION
from gpudask.plan import report as planning
from gpudask.record.recorder import Recording

Run = Callable[..., Recording]
CLUSTER_KEY = "kubernetes:kubernetes.dask.org/v1:DaskCluster::dask-cluster"


def _cert(rec: Recording, name: str) -> str:
    return next(r for r in rec.resources.values() if r.name == name).outputs["certPem"]


def test_the_scheduler_carries_the_digest_of_the_certificates_it_loads(recorded: Run) -> None:
    rec = recorded("prod")  # tls: true
    cluster = next(r for r in rec.resources.values() if r.type.endswith(":DaskCluster"))
    annotations = cluster.inputs["spec"]["scheduler"]["metadata"]["annotations"]
    pems = [_cert(rec, "dask-tls-ca"), _cert(rec, "dask-tls-scheduler-cert"), _cert(rec, "dask-tls-worker-cert")]
    assert annotations[TLS_DIGEST_ANNOTATION] == hashlib.sha256("".join(pems).encode()).hexdigest()
    assert "spec.scheduler" in cluster.replace_on_changes


def test_a_renewed_certificate_replaces_the_dask_cluster(recorded: Run) -> None:
    base = planning.build_plan(recorded("prod")).to_json()
    head = copy.deepcopy(base)
    cluster = next(r for r in head["resources"] if r["key"] == CLUSTER_KEY)
    cluster["inputs"]["spec"]["scheduler"]["metadata"]["annotations"][TLS_DIGEST_ANNOTATION] = "0" * 64
    diff = planning.diff_plans(base, head)
    assert CLUSTER_KEY in diff.replaced()


def test_clusters_without_tls_carry_no_digest(recorded: Run) -> None:
    rec = recorded("dev")  # tls: false
    cluster = next(r for r in rec.resources.values() if r.type.endswith(":DaskCluster"))
    assert TLS_DIGEST_ANNOTATION not in (cluster.inputs["spec"]["scheduler"].get("metadata") or {}).get(
        "annotations", {}
    )
