"""The driver each `driver` mode installs, and whether it runs a given image's CUDA.

Facts live in `gpu_drivers.yaml` (dated, one source per mode); this module only reads them.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml

DATA_FILE = Path(__file__).with_name("gpu_drivers.yaml")
# Where GKE mounts the driver's user-space libraries into GPU containers (both driver modes).
DRIVER_LIBRARY_PATH = "/usr/local/nvidia/lib64:/usr/local/nvidia/lib"
_CUDA_TAG = re.compile(r"-cuda(\d+)(?:\.\d+)*(?:-|$)")


@functools.cache
def _data() -> dict[str, Any]:
    return yaml.safe_load(DATA_FILE.read_text())


def driver_branch(mode: str, channel: str) -> int:
    """The driver branch (e.g. 535) that `mode` installs on GKE release channel `channel`."""
    return int(_data()["modes"][mode]["channels"][channel])


def driver_source(mode: str) -> str:
    return str(_data()["modes"][mode]["source"])


def cuda_major(image: str) -> int | None:
    """The CUDA major of a RAPIDS-style tag (`26.10-cuda12-py3.12`, `25.10-cuda12.9-py3.12`); None if unknown."""
    tag = image.split("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
    match = _CUDA_TAG.search(tag)
    return int(match.group(1)) if match else None


def minimum_driver(cuda: int) -> int | None:
    table = {int(k): int(v) for k, v in _data()["cuda_minimum_driver"].items()}
    return table.get(cuda)


def mismatch(image: str, mode: str, channel: str) -> str | None:
    """Why `image` cannot run on the driver `mode` installs on `channel`, or None when it can."""
    cuda = cuda_major(image)
    if cuda is None:
        return None
    needed = minimum_driver(cuda)
    installed = driver_branch(mode, channel)
    if needed is None:
        return f"is a CUDA {cuda} image, for which components/gpu_drivers.yaml has no minimum driver; add it"
    if installed < needed:
        return (
            f"is a CUDA {cuda} image, which needs NVIDIA driver >= {needed}; driver mode {mode!r} installs "
            f"{installed} on release channel {channel} ({driver_source(mode)}); "
            f"use a driver mode that installs >= {needed} (gke-latest) or a CUDA 12 image"
        )
    return None
