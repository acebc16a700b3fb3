"""Which Dask a RAPIDS image runs, and whether this environment runs the same.

RAPIDS images pin dask and distributed through the `rapids-dask-dependency` package of their
release (26.10.x pins both ==2026.7.1). requirements.txt installs that package for the
image's release, so pip resolves the client's and the rehearsal's Dask to the image's; this
module says when an image and this environment drift apart.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

from packaging.requirements import Requirement

RAPIDS_DASK_DEPENDENCY = "rapids-dask-dependency"
# rapidsai/base:26.10-cuda12-py3.12, rapidsai/notebooks:26.10a-cuda12-py3.12 (nightly), ...
_RAPIDS_TAG = re.compile(
    r"^(?:[\w.-]+/)*rapidsai/[\w-]+:(?P<release>\d{2}\.\d{2})a?-cuda(?P<cuda>[\d.]+)-py(?P<py>[\d.]+)"
    r"(?:@sha256:[0-9a-f]{64})?$"
)


def image_release(image: str) -> str | None:
    """The RAPIDS release (`26.10`) of a RAPIDS image tag; None for other images."""
    m = _RAPIDS_TAG.match(image)
    return m.group("release") if m else None


def image_cuda_major(image: str) -> int | None:
    m = _RAPIDS_TAG.match(image)
    return int(m.group("cuda").split(".")[0]) if m else None


def image_python(image: str) -> str | None:
    """The Python minor (`3.12`) of a RAPIDS image tag; None for other images."""
    m = _RAPIDS_TAG.match(image)
    return ".".join(m.group("py").split(".")[:2]) if m else None


def running_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def installed_release() -> str | None:
    """The RAPIDS release whose Dask this environment runs (from rapids-dask-dependency)."""
    try:
        version = metadata.version(RAPIDS_DASK_DEPENDENCY)
    except metadata.PackageNotFoundError:
        return None
    major, minor = version.split(".")[:2]
    return f"{int(major)}.{int(minor):02d}"


def pinned_requirements() -> list[Requirement]:
    """rapids-dask-dependency's own pins (dask, distributed, ...) as installed here."""
    return [Requirement(r) for r in metadata.requires(RAPIDS_DASK_DEPENDENCY) or [] if "extra ==" not in r]


def unmet_pins() -> list[str]:
    """Installed packages outside the pins of the installed rapids-dask-dependency."""
    problems = []
    for req in pinned_requirements():
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{req.name} is not installed ({req})")
            continue
        if not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name} {version} does not satisfy {req}")
    return problems


def skew(image: str) -> str | None:
    """Why clients and the rehearsal here would run a different Dask than `image`; None if the same."""
    release = image_release(image)
    if release is None:
        return None  # not a RAPIDS image: its Dask is unknown here (connect checks at run time)
    python, mine = image_python(image), running_python()
    if python != mine:
        # cloudpickle does not cross Python minors: every task a client here sends would fail there.
        return (
            f"the image runs Python {python} but this environment runs Python {mine}: `gpudask connect` would "
            "refuse (cloudpickle does not cross Python minors) and the rehearsal runs a Python the cluster never "
            f"runs; build the venv with Python {python} (Makefile PYTHON), or use an image of Python {mine}"
        )
    here = installed_release()
    if here != release:
        return (
            f"the image is RAPIDS {release} but this environment runs the Dask of RAPIDS {here or '(none)'} "
            f"({RAPIDS_DASK_DEPENDENCY} {here or 'not installed'}): `gpudask connect` would refuse and the "
            f"rehearsal runs a Dask the cluster never runs; require {RAPIDS_DASK_DEPENDENCY}=={release}.* in "
            "requirements.txt, or use an image of this environment's release"
        )
    unmet = unmet_pins()
    if unmet:
        return f"this environment breaks {RAPIDS_DASK_DEPENDENCY} {release}'s pins: {'; '.join(unmet)}"
    return None
