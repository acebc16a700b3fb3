"""Dev clients may use what the README says (issue 21, point 7): a pod in a `clientNamespaces`
namespace reads the DaskCluster as `KubeCluster.from_name` does and scales a group, and can do
nothing else. The rendered Role and RoleBinding go into the local control plane's real API
server; its RBAC authorizer answers SubjectAccessReviews for the client namespace's
ServiceAccounts (what a notebook pod's token carries: user and groups)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from components import security_spec
from tests.conftest import settings_for

pytestmark = pytest.mark.control_plane


def _allowed(kube: Any, service_account: str, verb: str, group: str, resource: str, namespace: str) -> bool:
    sa_namespace, name = service_account.split("/")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{sa_namespace}:{name}",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}", "system:authenticated"],
            "resourceAttributes": {"namespace": namespace, "verb": verb, "group": group, "resource": resource},
        },
    }
    answer = kube.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review).data
    return bool(answer["status"].get("allowed"))


# (verb, API group, resource): what from_name does, then what conn.scale / KubeCluster.scale do.
FROM_NAME = [
    ("get", "kubernetes.dask.org", "daskclusters"),
    ("list", "kubernetes.dask.org", "daskworkergroups"),
    ("list", "", "pods"),
    ("get", "", "services"),
    ("patch", "kubernetes.dask.org", "daskworkergroups"),
]
REFUSED = [
    ("delete", "kubernetes.dask.org", "daskautoscalers"),  # KubeCluster.scale() would drop the autoscaler
    ("delete", "kubernetes.dask.org", "daskclusters"),
    ("get", "", "secrets"),  # the TLS keys
    ("create", "", "pods/exec"),
]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_client_namespaces_read_the_dask_cluster_and_nothing_more(
    shared_control_plane: Any, control_plane_namespace: str, stack: str
) -> None:
    dask = replace(settings_for(stack).dask, namespace=control_plane_namespace)
    assert dask.client_namespaces, (
        f"{stack}: no clientNamespaces: no pod can reach 8786 (README: the address is enough)"
    )
    role, binding = security_spec.client_role(dask), security_spec.client_role_binding(dask)
    assert role and binding, f"{stack}: no Role lets its client namespaces read the DaskCluster (from_name)"
    kube = shared_control_plane.kube()
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{control_plane_namespace}"
    kube.request("POST", f"{rbac}/roles", role)
    kube.request("POST", f"{rbac}/rolebindings", binding)
    client = f"{dask.client_namespaces[0]}/default"
    ns = control_plane_namespace
    missing = [f"{v} {g or 'core'}/{r}" for v, g, r in FROM_NAME if not _allowed(kube, client, v, g, r, ns)]
    extra = [f"{v} {g or 'core'}/{r}" for v, g, r in REFUSED if _allowed(kube, client, v, g, r, ns)]
    outsider = [f"{v} {g or 'core'}/{r}" for v, g, r in FROM_NAME if _allowed(kube, "elsewhere/default", v, g, r, ns)]
    print(f"{stack}: {client} may {len(FROM_NAME)} from_name/scale verbs; refused {len(REFUSED)}")
    assert not missing, f"{stack}: {client} may not {missing}"
    assert not extra, f"{stack}: {client} may also {extra}"
    assert not outsider, f"{stack}: a ServiceAccount of another namespace may {outsider}"
