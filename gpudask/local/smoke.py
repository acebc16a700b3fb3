"""The smoke workload: the seed's NYC-taxi question (mean trip distance) on generated data.

Computed twice: once with no restriction (any worker), once inside
`dask.annotate(resources={"GPU": 1})`, which must land only on GPU-resourced workers and
give the same answer. On a machine with a GPU and cuDF (or CuPy) the annotated run uses it.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any, cast

import dask.array as da
import dask.dataframe as dd
from dask.base import annotate
from distributed import Client, get_task_stream

ROWS = 400_000
CHUNK = 50_000
SEED = 2013  # the year of the seed's NYC taxi data


def taxi_frame(rows: int = ROWS, chunk: int = CHUNK, seed: int = SEED) -> dd.DataFrame:
    """Taxi-like trips, the same for the same seed on every machine.

    Built only from dask/numpy functions: the graph must deserialize on a scheduler and
    workers that do not have this package (distributed pickles functions by reference).
    """
    rng = cast(Any, da.random.default_rng(seed))  # dask's stubs type `chunks` as str
    distance = rng.gamma(2.0, 1.6, size=rows, chunks=chunk)
    passengers = rng.integers(1, 7, size=rows, chunks=chunk).astype("float64")
    fare = 3.0 + 2.5 * distance + rng.normal(0.0, 1.0, size=rows, chunks=chunk).clip(-2.0, 2.0)
    return dd.from_dask_array(
        da.stack([passengers, distance, fare], axis=1), columns=["passenger_count", "trip_distance", "fare_amount"]
    )


def gpu_library() -> str | None:
    """The GPU dataframe/array library importable here, if any (the client side decides)."""
    for name in ("cudf", "cupy"):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def _on_gpu(frame: Any, library: str | None) -> Any:
    if library == "cudf":
        return frame.to_backend("cudf").trip_distance.mean()
    if library == "cupy":
        import cupy  # pyright: ignore[reportMissingImports]

        return frame.trip_distance.to_dask_array(lengths=True).map_blocks(cupy.asarray).mean()
    return frame.trip_distance.mean()


def run(client: Client, use_gpu_library: bool = False) -> dict[str, Any]:
    """Run the workload on `client`'s cluster; report answers, placement and the verdict."""
    frame = taxi_frame()
    library = gpu_library() if use_gpu_library else None
    # Built outside the annotate block: dask-expr ignores (and warns about) annotations on
    # collections created inside it; the client applies the block's annotations at submit.
    plain_mean = cast(Any, frame).trip_distance.mean()
    gpu_mean = _on_gpu(frame, library)

    with cast(Any, get_task_stream(client)) as plain_stream:
        plain = float(plain_mean.compute())
    with annotate(resources={"GPU": 1}), cast(Any, get_task_stream(client)) as gpu_stream:
        annotated = float(gpu_mean.compute())

    workers = client.scheduler_info(n_workers=-1)["workers"]
    gpu_workers = {addr for addr, info in workers.items() if (info.get("resources") or {}).get("GPU", 0) >= 1}
    ran_annotated = {task["worker"] for task in gpu_stream.data}
    ran_plain = {task["worker"] for task in plain_stream.data}
    off_gpu = sorted(workers[a]["name"] if a in workers else a for a in ran_annotated - gpu_workers)
    agree = math.isclose(plain, annotated, rel_tol=1e-9)
    return {
        "workload": "mean trip_distance of generated NYC-taxi-like trips",
        "rows": ROWS,
        "mean_trip_distance": plain,
        "annotated_mean_trip_distance": annotated,
        "agree": agree,
        "gpu_library": library or "pandas",
        "workers": len(workers),
        "gpu_workers": len(gpu_workers),
        "plain_tasks_on_workers": len(ran_plain),
        "annotated_tasks": len(gpu_stream.data),
        "annotated_tasks_off_gpu_workers": off_gpu,
        "ok": agree and bool(ran_annotated) and not off_gpu,
    }
