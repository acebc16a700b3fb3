"""An in-memory stand-in for the few Kubernetes API calls the pinned operator's handlers make.

The handlers themselves are the real ones from the installed dask-kubernetes wheel
(`dask_kubernetes.operator.controller.controller`); only their kr8s object classes, kopf's
owner-reference helpers and the Service address lookup are pointed at this store. Dask is
never faked: scheduler calls go to a real scheduler on loopback (`addresses`).

`delete_hooks` play the kubelet: when a worker Deployment is deleted, its pod's preStop
hook and SIGTERM happen there.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import kopf
import kr8s
import pytest


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class KubeStore:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.log: list[tuple[str, str, str]] = []
        self.history: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.addresses: dict[str, str] = {}
        self.delete_hooks: list[Callable[[str, dict[str, Any]], Awaitable[None]]] = []
        self.ready_pods = True

    # --- what a test reads -------------------------------------------------------------
    def names(self, kind: str, labels: dict[str, str] | None = None) -> list[str]:
        return sorted(
            name
            for (k, name), body in self.objects.items()
            if k == kind and (labels or {}).items() <= (body["metadata"].get("labels") or {}).items()
        )

    def put(self, kind: str, body: dict[str, Any]) -> None:
        key = (kind, body["metadata"]["name"])
        self.objects[key] = copy.deepcopy(body)
        self.history.setdefault(key, []).append(copy.deepcopy(body))

    def patch(self, kind: str, name: str, patch: dict[str, Any]) -> None:
        body = self.objects[(kind, name)]
        _merge(body, patch)
        self.history.setdefault((kind, name), []).append(copy.deepcopy(body))
        self.log.append(("patch", kind, name))

    # --- the classes the controller instantiates ----------------------------------------
    def _class(self, kind: str) -> type:
        store = self

        class Obj:
            def __init__(self, body: Any, namespace: str | None = None, **_: Any) -> None:
                if isinstance(body, str):
                    self.name = body
                    self.raw = copy.deepcopy(store.objects.get((kind, body), {"metadata": {"name": body}}))
                else:
                    self.raw = copy.deepcopy(dict(body))
                    self.name = self.raw["metadata"]["name"]

            def __await__(self) -> Any:
                async def itself() -> Obj:
                    return self

                return itself().__await__()

            @classmethod
            async def get(cls, name: str | None = None, namespace: str | None = None, **kwargs: Any) -> Obj:
                if name is None:
                    selector = kwargs.get("label_selector") or {}
                    matches = store.names(kind, selector)
                    if not matches:
                        raise kr8s.NotFoundError(f"{kind} {selector}")
                    name = matches[0]
                if (kind, name) not in store.objects:
                    raise kr8s.NotFoundError(f"{kind}/{name}")
                return cls(name)

            async def exists(self) -> bool:
                return (kind, self.name) in store.objects

            async def create(self) -> None:
                store.put(kind, self.raw)
                store.log.append(("create", kind, self.name))

            async def delete(self) -> None:
                body = store.objects.pop((kind, self.name))
                store.log.append(("delete", kind, self.name))
                for hook in store.delete_hooks:
                    await hook(kind, body)

            async def patch(self, patch: dict[str, Any], **_: Any) -> None:
                store.patch(kind, self.name, patch)

            async def annotate(self, annotations: dict[str, str]) -> None:
                store.patch(kind, self.name, {"metadata": {"annotations": annotations}})

            async def scale(self, replicas: int) -> None:
                store.patch(kind, self.name, {"spec": {"worker": {"replicas": replicas}}})
                store.log.append(("scale", kind, f"{self.name}={replicas}"))

            async def ready(self) -> bool:
                return store.ready_pods

            async def cluster(self) -> Obj:
                return store._classes["DaskCluster"](self.body["spec"]["cluster"])

            @property
            def body(self) -> dict[str, Any]:
                return store.objects.get((kind, self.name), self.raw)

            @property
            def labels(self) -> dict[str, str]:
                return self.body["metadata"].get("labels") or {}

            @property
            def annotations(self) -> dict[str, str]:
                return self.body["metadata"].get("annotations") or {}

            @property
            def replicas(self) -> int:
                return int(self.body["spec"]["worker"]["replicas"])

        Obj.__name__ = kind
        return Obj

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Any:
        """Point the real controller at this store; returns the controller module."""
        from dask_kubernetes.operator.controller import controller

        self._classes = {
            kind: self._class(kind)
            for kind in ("Deployment", "Service", "Pod", "DaskCluster", "DaskWorkerGroup", "DaskAutoscaler")
        }
        for kind, cls in self._classes.items():
            monkeypatch.setattr(controller, kind, cls)

        plural = {"deployments": "Deployment", "pods": "Pod", "services": "Service"}

        async def get(resource: str, namespace: str | None = None, label_selector: Any = None, **_: Any) -> Any:
            async def listing() -> AsyncIterator[Any]:
                # An API server lists by name (etcd key order).
                for name in self.names(plural[resource], label_selector or {}):
                    yield self._classes[plural[resource]](name)

            return listing()

        async def address(service_name: str, namespace: str, port_name: str = "tcp-comm", **_: Any) -> str:
            return self.addresses[port_name]

        def adopt(objs: Any, owner: Any = None, **_: Any) -> None:
            return None

        def label(objs: Any, labels: Any = None, **_: Any) -> None:
            objs.setdefault("metadata", {}).setdefault("labels", {}).update(labels or {})

        monkeypatch.setattr(kr8s.asyncio, "get", _AsyncGen(get))
        monkeypatch.setattr(controller, "get_scheduler_address", address)
        monkeypatch.setattr(kopf, "adopt", adopt)
        monkeypatch.setattr(kopf, "label", label)
        return controller


class _AsyncGen:
    """`kr8s.asyncio.get(...)` is used as `async for x in kr8s.asyncio.get(...)`."""

    def __init__(self, factory: Callable[..., Awaitable[Any]]) -> None:
        self.factory = factory

    def __call__(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        factory = self.factory

        async def gen() -> AsyncIterator[Any]:
            async for item in await factory(*args, **kwargs):
                yield item

        return gen()


def run(coro: Any) -> Any:
    """Like `asyncio.run`, but leaves the thread's event loop setting alone: `asyncio.run`
    unsets it, and Pulumi's mocks in later tests call `asyncio.get_event_loop()`."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
