"""Fault drills on a real rehearsal: a worker lost mid-computation, a scheduler restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from distributed import Client
from distributed.client import FutureCancelledError

from gpudask.local.rehearse import Rehearsal, rehearsal
from gpudask.record.recorder import load_config, run_program

# Every test here runs a real local Dask cluster.
pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def two_workers() -> Iterator[Rehearsal]:
    dask = json.loads(load_config("dev")["gpu-dask:dask"]) | {"worker": {"replicas": 2}}
    dask.pop("autoscale", None)  # a fixed count of two (an autoscaled group starts at its minimum)
    with rehearsal(run_program("dev", overrides={"gpu-dask:dask": dask}), timeout=90) as running:
        yield running


def test_killing_a_worker_mid_computation_still_returns_the_result(two_workers: Rehearsal) -> None:
    with Client(two_workers.address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
        # A self-contained lambda ships by value: the workers do not have this test module.
        squares = client.map(lambda x: (time.sleep(0.3), x * x)[1], range(30), pure=False)
        total = client.submit(sum, squares)
        deadline = time.monotonic() + 30
        while sum(f.status == "finished" for f in squares) < 3:  # under way on both workers
            assert time.monotonic() < deadline, "the computation never started"
            time.sleep(0.1)
        victim = next(p.name for p in two_workers.processes if p.component == "worker")
        restarts_before = two_workers.restarts.get(victim, 0)
        two_workers.kill(victim)
        assert total.result(timeout=90) == sum(x * x for x in range(30))
        # The lost worker's pod comes back (Deployment + kubelet) and rejoins.
        client.wait_for_workers(2, timeout=60)
        assert two_workers.restarts.get(victim, 0) == restarts_before + 1


def test_scheduler_restart_reports_in_flight_work_lost_then_serves_again(two_workers: Rehearsal) -> None:
    with Client(two_workers.address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
        in_flight = client.submit(time.sleep, 8, pure=False)
        time.sleep(0.5)
        two_workers.restart_scheduler(timeout=60)
        # Reported lost (not a TimeoutError: the client does not wait on it forever).
        with pytest.raises(FutureCancelledError, match="scheduler-connection-lost"):
            in_flight.result(timeout=60)
        # Same address: the client reconnects on its own, workers come back and rejoin.
        client.wait_for_workers(2, timeout=90)
        assert client.status == "running"
        assert client.submit(sum, [1, 2, 3], pure=False).result(timeout=30) == 6
