"""Worker preStop hook: leave the cluster gracefully (run as `python -c <this text>` in the worker container).

The operator scales a group down by deleting worker Deployments (see
`components/scheduler_preload.py`); before the kubelet sends SIGTERM, this hook asks the
scheduler to retire this worker by name, which moves the results it holds to other workers
and then closes it. A worker the scheduler does not know (never connected) is a no-op, and
an unreachable scheduler never holds the pod past `DEADLINE_S`.

Self-contained: it imports only distributed and reads the container's own environment
(`DASK_SCHEDULER_ADDRESS`, `DASK_WORKER_NAME`, and the TLS settings when on).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

DEADLINE_S = 100


async def retire(address: str, name: str, connection_args: dict[str, Any] | None = None) -> Any:
    from distributed.core import rpc

    async with rpc(address, connection_args=connection_args or {}) as scheduler:
        return await scheduler.retire_workers(names=[name], close_workers=True)


def main() -> None:
    import dask.config
    from distributed.security import Security

    dask.config.set({"distributed.comm.timeouts.connect": "10s"})
    address, name = os.environ["DASK_SCHEDULER_ADDRESS"], os.environ["DASK_WORKER_NAME"]
    with contextlib.suppress(Exception):
        asyncio.run(asyncio.wait_for(retire(address, name, Security().get_connection_args("worker")), DEADLINE_S))


if __name__ == "__main__":
    main()
