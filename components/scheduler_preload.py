"""Scheduler preload: no count-only worker retirement (shipped as `dask scheduler --preload <this text>`).

The pinned operator (dask-kubernetes 2026.3.0, controller `retire_workers`) scales a worker
group down by asking the scheduler for `n` workers to retire: first `POST /api/v1/retire_workers
{"n": n}` on 8787, then the RPC `workers_to_close(n=n)` on 8786. The scheduler does not know
which group is being scaled, so it may answer with another group's idle worker, whose
Deployment the operator then deletes (https://github.com/dask/dask-kubernetes/issues/914); and it never names a worker
that has not connected yet, so that worker's Deployment (and its GPU node) stays (https://github.com/dask/dask-kubernetes/issues/817).

This preload makes both count-only paths fail. The operator then takes its last path: it
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
from typing import Any

REFUSAL = (
    "gpu-dask: retiring workers by count is refused; the operator then scales the worker group "
    "by its own Deployments (dask/dask-kubernetes#914, #817)"
)


def dask_setup(scheduler: Any) -> None:
    original = scheduler.workers_to_close

    def workers_to_close(*args: Any, n: int | None = None, **kwargs: Any) -> Any:
        if n:
            logging.getLogger("distributed.scheduler").info(REFUSAL)
            raise RuntimeError(REFUSAL)
        return original(*args, **kwargs)

    # The HTTP API handler calls the attribute; the RPC table holds the bound method.
    scheduler.workers_to_close = workers_to_close
    scheduler.handlers["workers_to_close"] = workers_to_close
