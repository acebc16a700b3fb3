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

Self-contained on purpose: the text is passed to `dask scheduler --preload`, which runs text
as a module (distributed.preloading), so the RAPIDS image needs nothing extra installed.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

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
