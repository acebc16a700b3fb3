"""Scheduler preload: no count-only worker retirement (shipped as `dask scheduler --preload <this text>`).

The pinned operator (dask-kubernetes 2026.3.0, controller `retire_workers`) scales a worker
group down by asking the scheduler for `n` workers to retire: first `POST /api/v1/retire_workers
{"n": n}` on 8787, then the RPC `workers_to_close(n=n)` on 8786. The scheduler does not know
which group is being scaled, so it may answer with another group's idle worker, whose
Deployment the operator then deletes (https://github.com/dask/dask-kubernetes/issues/914); and it never names a worker
that has not connected yet, so that worker's Deployment (and its GPU node) stays (https://github.com/dask/dask-kubernetes/issues/817).

This preload makes both of the operator's count-only paths fail (the HTTP handler's call and
the RPC handler); a user's own `client.retire_workers(n=...)` (the scheduler's
`retire_workers` calling `workers_to_close` itself) is untouched. With the stack's operator
plugin (components/operator_plugin.py) the operator never takes these paths: it chooses the
group's own workers and retires them by address. The preload stays for an operator without
the plugin (an existing cluster's own). The operator then takes its last path: it
deletes `n` of the scaled group's own Deployments, chosen by the `dask.org/workergroup-name`
label. Each deleted worker leaves gracefully through its preStop hook
(`components/worker_prestop.py`), which asks the scheduler to retire it by name, so its data
moves to the remaining workers first. Retiring by name or address (`retire_workers(names=...)`,
`Client.retire_workers`) and adaptive targets are untouched.

Work goes where it can run (issue 21, point 2). When the scheduler's env names default
resources (`GPUDASK_DEFAULT_RESOURCES`, JSON, e.g. `{"GPU": 1}`: set by the stack when a CPU
worker group shares this scheduler with the GPU workers), two things change:
- every new task with no restriction of its own gets those resource restrictions (a scheduler
  plugin's `update_graph`, which distributed calls before the tasks' first transition), so an
  unannotated dask-cudf task never runs on a CPU worker; CPU work opts in with
  `dask.annotate(resources={"CPU": 1})` (what the CPU workers advertise);
- the active memory manager's recipient of a replica (what `RetireWorker` asks for when a worker
  retires: any running worker with the least memory, restrictions ignored) must offer the
  resources the key's task needed (its own restrictions, else the defaults), so a retiring GPU
  worker's data never lands on a CPU worker. With no such worker the key is not moved, and
  distributed does not retire the worker (the preStop hook then gives up; the key is recomputed).

Self-contained on purpose: the text is passed to `dask scheduler --preload`, which runs text
as a module (distributed.preloading), so the RAPIDS image needs nothing extra installed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

DEFAULT_RESOURCES_ENV = "GPUDASK_DEFAULT_RESOURCES"

REFUSAL = (
    "gpu-dask: retiring workers by count is refused; the operator then scales the worker group "
    "by its own Deployments (dask/dask-kubernetes#914, #817)"
)


HTTP_HANDLER_MODULE = "distributed.http.scheduler.api"  # RetireWorkersHandler.post calls workers_to_close(n=...)


def _called_by_the_http_api() -> bool:
    caller = sys._getframe(2)  # workers_to_close's caller
    return caller.f_globals.get("__name__") == HTTP_HANDLER_MODULE


def dask_setup(scheduler: Any) -> None:
    original = scheduler.workers_to_close

    def refuse() -> None:
        logging.getLogger("distributed.scheduler").info(REFUSAL)
        raise RuntimeError(REFUSAL)

    def workers_to_close(*args: Any, n: int | None = None, **kwargs: Any) -> Any:
        # The attribute is called by the HTTP API handler (the operator) and by the scheduler's
        # own retire_workers(n=...) (a user's client): refuse only the first.
        if n and _called_by_the_http_api():
            refuse()
        return original(*args, n=n, **kwargs)

    def workers_to_close_rpc(*args: Any, n: int | None = None, **kwargs: Any) -> Any:
        if n:  # the operator's RPC fallback asks by count
            refuse()
        return original(*args, n=n, **kwargs)

    scheduler.workers_to_close = workers_to_close
    scheduler.handlers["workers_to_close"] = workers_to_close_rpc
    defaults = default_resources()
    if defaults:
        restrict_by_default(scheduler, defaults)


def default_resources() -> dict[str, float]:
    """The scheduler env's default task resources; {} when unset."""
    text = os.environ.get(DEFAULT_RESOURCES_ENV, "").strip()
    value = json.loads(text) if text else {}
    if not isinstance(value, dict) or not all(isinstance(v, (int, float)) for v in value.values()):
        raise ValueError(f'{DEFAULT_RESOURCES_ENV}={text!r}: expected a JSON object of numbers, e.g. {{"GPU": 1}}')
    return {str(k): float(v) for k, v in value.items()}


def _offers(ws: Any, required: dict[str, float]) -> bool:
    return all(ws.resources.get(name, 0) >= amount for name, amount in required.items())


def restrict_by_default(scheduler: Any, defaults: dict[str, float]) -> None:
    """Unrestricted new tasks get `defaults`; replicas go only to workers offering a key's resources."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    class DefaultResources(SchedulerPlugin):
        name = "gpudask-default-resources"

        def update_graph(self, scheduler: Any, *, tasks: Any = (), **kwargs: Any) -> None:
            for key in tasks:
                ts = scheduler.tasks.get(key)
                if ts is None or ts.state != "released" or ts.run_spec is None:
                    continue
                if ts.resource_restrictions or ts.worker_restrictions or ts.host_restrictions:
                    continue
                ts.resource_restrictions = dict(defaults)

    scheduler.add_plugin(DefaultResources())
    amm = scheduler.extensions.get("amm")
    if amm is None:
        return
    find_recipient = amm._find_recipient  # distributed.active_memory_manager, called per replica

    def find_allowed_recipient(ts: Any, candidates: Any, pending_repl: Any) -> Any:
        required = ts.resource_restrictions or defaults
        pool = scheduler.running if candidates is None else candidates
        return find_recipient(ts, {ws for ws in pool if _offers(ws, required)}, pending_repl)

    amm._find_recipient = find_allowed_recipient
