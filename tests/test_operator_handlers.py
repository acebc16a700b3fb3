"""The pinned operator's own handlers, driven against our rendered DaskCluster.

`pulumi.com/waitFor` (point 1 of issue 10): the create handler (`daskcluster_create_components`)
patches `status.phase=Pending` when it returns, while `handle_scheduler_service_status` (a
handler on the scheduler Service's status) patches `Running` as soon as the Service exists.
Which lands last depends on timing (dask/dask-kubernetes#968). The stack's wait condition must
hold in the final state of both orders, stay true once true (Pulumi may miss transient
states), and not hold before the operator has accepted the cluster.
"""

from __future__ import annotations

import logging
import re
from typing import Any, cast

import kopf
import pytest

from components import dask_spec
from tests.conftest import settings_for
from tests.kube_store import KubeStore, run

LOG = logging.getLogger("operator")


def wait_for_matches(condition: str, obj: dict[str, Any]) -> bool:
    """pulumi-kubernetes' `jsonpath=` waitFor semantics for a dotted path: without a value the
    path must exist; with one, it must exist and equal it (provider/pkg/jsonpath/jsonpath.go,
    `Parsed.Matches`)."""
    m = re.fullmatch(r"jsonpath=\{\.([\w.]+)\}(?:=(.+))?", condition)
    assert m, f"not a jsonpath condition this test understands: {condition}"
    value: Any = obj
    for part in m.group(1).split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return m.group(2) is None or str(value) == m.group(2)


async def _create(store: KubeStore, body: dict[str, Any], controller: Any, service_handler_first: bool) -> None:
    """The handler sequence the operator runs for a new DaskCluster, in one of the two orders."""
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    store.put("DaskCluster", body)

    patch = kopf.Patch()
    await controller.daskcluster_create(name=name, namespace=namespace, patch=patch, logger=LOG)
    store.patch("DaskCluster", name, dict(patch))

    patch = kopf.Patch()
    kbody = kopf.Body(cast(Any, store.objects[("DaskCluster", name)]))
    await controller.daskcluster_create_components(
        spec=kbody.spec, name=name, namespace=namespace, logger=LOG, patch=patch, meta=kbody.meta
    )
    service = store.objects[("Service", f"{name}-scheduler")]

    async def service_status(status: dict[str, Any]) -> None:
        await controller.handle_scheduler_service_status(
            spec=service["spec"], labels=service["metadata"]["labels"], status=status, namespace=namespace
        )

    if service_handler_first:
        # The Service's status event is handled before kopf applies the create handler's patch.
        await service_status({})
        store.patch("DaskCluster", name, dict(patch))
    else:
        store.patch("DaskCluster", name, dict(patch))
        await service_status({})
    if service["spec"].get("type") == "LoadBalancer":
        # GKE assigns the internal load balancer's address: the Service's status changes again.
        await service_status({"loadBalancer": {"ingress": [{"ip": "10.10.0.50"}]}})


def _states(stack: str, service_handler_first: bool, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    s = settings_for(stack)
    body = dask_spec.dask_cluster(s.dask)
    store = KubeStore(s.dask.namespace)
    controller = store.install(monkeypatch)
    run(_create(store, body, controller, service_handler_first))
    return store.history[("DaskCluster", s.dask.name)]


@pytest.mark.parametrize("service_handler_first", [False, True], ids=["create-first", "service-first"])
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_wait_condition_holds_in_both_handler_orders(
    stack: str, service_handler_first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    states = _states(stack, service_handler_first, monkeypatch)
    condition = states[0]["metadata"]["annotations"][dask_spec.WAIT_FOR_ANNOTATION]
    seen = [wait_for_matches(condition, state) for state in states]
    # Not before the operator's create handler has accepted (validated) the cluster ...
    assert seen[0] is False
    # ... then true in every later state, the final one included: a watch that misses events
    # still ends satisfied.
    assert all(seen[1:]), list(zip(seen, [st.get("status") for st in states], strict=True))
    assert states[1]["status"] == {"phase": "Created"}


def test_the_old_running_condition_hangs_when_the_service_handler_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The race the issue measured (about 1 creation in 8): the final phase is Pending for good."""
    states = _states("dev", True, monkeypatch)
    assert states[-1]["status"]["phase"] == "Pending"
    assert not wait_for_matches("jsonpath={.status.phase}=Running", states[-1])
    # And in the other order it is Running: the old condition only ever worked by luck of timing.
    monkeypatch.undo()
    assert _states("dev", False, monkeypatch)[-1]["status"]["phase"] == "Running"


def test_the_operator_never_rejects_a_name_the_settings_accept() -> None:
    """`Error` would also satisfy a presence condition; the operator sets it only for a name
    `validate_cluster_name` refuses, which settings refuse first with the same function."""
    from components.settings import SettingsError

    with pytest.raises(SettingsError, match=r"dask\.name"):
        settings_for("dev", dask={"name": "Not_Valid"})
