"""`gpudask plan` reports what a real Dask cluster would break, visible statically (issue 10):
a scheduler without a GPU, worker memory limits Dask does not know, 8787 reachable by clients,
an image whose Dask differs from this environment's; and the scheduler's GPU pool is priced."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from components.settings import SettingsError
from gpudask.plan import checks as recording_checks
from gpudask.plan import report as planning
from gpudask.record.recorder import Recorded, Recording, load_config, run_program
from tests.conftest import settings_for

Run = Callable[..., Recording]


def _dask(stack: str, **extra: Any) -> dict[str, Any]:
    return json.loads(load_config(stack)["gpu-dask:dask"]) | extra


def _dask_findings(rec: Recording) -> list[str]:
    return [str(f) for f in recording_checks.all_findings(rec)]  # what `gpudask plan` reports


def _mutated(rec: Recording, kind: str, name_part: str, change: Callable[[Recorded], None]) -> Recording:
    clone = copy.deepcopy(rec)
    target = next(r for r in clone.resources.values() if r.type.endswith(kind) and name_part in r.name)
    change(target)
    return clone


def test_a_cpu_scheduler_is_a_finding() -> None:
    rec = run_program("dev", overrides={"gpu-dask:dask": _dask("dev", schedulerGpu=False)})
    found = _dask_findings(rec)
    assert any("DaskCluster/dask/rapids: spec.scheduler" in f and "dask-cudf" in f for f in found), found
    # ... and the CPU scheduler has no GPU pool to pay for.
    assert "scheduler" not in {c.pool for c in planning.price(rec)[0]}


def test_a_worker_without_its_containers_memory_limit_is_a_finding(recorded: Run) -> None:
    def drop(r: Recorded) -> None:
        args = r.inputs["spec"]["worker"]["spec"]["containers"][0]["args"]
        i = args.index("--memory-limit")
        del args[i : i + 2]

    found = _dask_findings(_mutated(recorded("prod"), ":DaskWorkerGroup", "cpu", drop))
    assert any(
        "DaskWorkerGroup/dask/rapids-cpu: spec.worker.spec.containers[0].args: Dask memory limit auto" in f
        for f in found
    ), found


def test_a_client_reachable_dashboard_port_is_a_finding(recorded: Run) -> None:
    def open_8787(r: Recorded) -> None:
        r.inputs["spec"]["ingress"][1]["ports"].append({"protocol": "TCP", "port": 8787})

    found = _dask_findings(_mutated(recorded("prod"), ":NetworkPolicy", "scheduler-clients", open_8787))
    assert any("NetworkPolicy/dask/rapids-scheduler-clients: spec.ingress[1]" in f and "8787" in f for f in found)


def test_an_image_of_another_rapids_release_is_a_finding() -> None:
    rec = run_program("dev", overrides={"gpu-dask:dask": _dask("dev", image="rapidsai/base:25.10-cuda12.9-py3.12")})
    found = _dask_findings(rec)
    assert any("image is RAPIDS 25.10" in f and "rapids-dask-dependency" in f for f in found), found


@pytest.mark.parametrize(("stack", "spot"), [("dev", True), ("prod", False)])
def test_the_schedulers_gpu_pool_is_declared_and_priced(recorded: Run, stack: str, spot: bool) -> None:
    rec = recorded(stack)
    pool = next(r for r in rec.of_type(recording_checks.NODE_POOL) if r.inputs.get("name") == "scheduler")
    config = pool.inputs["nodeConfig"]
    assert config["machineType"] == "g2-standard-4"
    assert config["guestAccelerators"][0]["type"] == "nvidia-l4"
    assert bool(config["spot"]) is spot
    cost = next(c for c in planning.price(rec)[0] if c.pool == "scheduler")
    assert cost.max_nodes == 1 and cost.hourly > 0


def test_scheduler_gpu_zone_and_size_are_checked() -> None:
    with pytest.raises(SettingsError) as err:
        settings_for("dev", location="us-central1-f", dask=_dask("dev", schedulerMemoryGb=32))
    problems = "\n".join(err.value.problems)
    assert (
        "dask.schedulerMachineType: 'g2-standard-4' needs nvidia-l4, which zone us-central1-f does not offer"
        in problems
    )
    assert "dask.schedulerMemoryGb: 32.0 does not fit a g2-standard-4 scheduler node" in problems
    # The T4 type is offered there.
    settings_for("dev", location="us-central1-f", dask=_dask("dev", schedulerMachineType="n1-standard-4"))
