"""Cluster and clients run the same Dask (issue 10, point 8).

The default image's RAPIDS release decides the cluster's Dask (RAPIDS pins it through
`rapids-dask-dependency`); requirements.txt installs that package, so this environment's Dask
is the image's. These tests fail when the image tag and the installed packages drift apart.
"""

from __future__ import annotations

from importlib import metadata

import pytest

from components import settings
from gpudask.client import versions
from tests.conftest import STACKS, settings_for


def test_the_installed_dask_is_the_default_images() -> None:
    release = versions.image_release(settings.DEFAULT_RAPIDS_IMAGE)
    assert release is not None
    assert versions.installed_release() == release
    pins = {r.name: r for r in versions.pinned_requirements()}
    for package in ("dask", "distributed"):
        assert pins[package].specifier.contains(metadata.version(package)), (package, pins[package])
    assert versions.unmet_pins() == []
    assert versions.skew(settings.DEFAULT_RAPIDS_IMAGE) is None


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_image_runs_this_environments_dask(stack: str) -> None:
    s = settings_for(stack)
    for image in {s.dask.image, *(g.image for g in s.dask.worker_groups.values())}:
        assert versions.skew(image) is None, image


def test_skew_is_reported_for_an_image_of_another_release() -> None:
    message = versions.skew("rapidsai/base:25.10-cuda12.9-py3.12")
    assert message is not None and "RAPIDS 25.10" in message and versions.RAPIDS_DASK_DEPENDENCY in message


def test_skew_is_reported_for_an_image_of_another_python_minor() -> None:
    """cloudpickle does not cross Python minors: a 3.11 venv cannot feed a 3.12 image (issue 21, point 5)."""
    release = versions.image_release(settings.DEFAULT_RAPIDS_IMAGE)
    other = "3.11" if versions.running_python() != "3.11" else "3.13"
    message = versions.skew(f"rapidsai/base:{release}-cuda12-py{other}")
    assert message is not None, "a Python minor mismatch between the image and this environment went unreported"
    assert f"the image runs Python {other} but this environment runs Python {versions.running_python()}" in message
    assert versions.image_python(settings.DEFAULT_RAPIDS_IMAGE) == versions.running_python()


def test_a_digest_pinned_tag_keeps_its_release_and_python() -> None:
    image = "rapidsai/base:26.10-cuda12-py3.12@sha256:" + "0" * 64
    assert (versions.image_release(image), versions.image_python(image)) == ("26.10", "3.12")


@pytest.mark.parametrize(
    ("image", "release", "cuda"),
    [
        ("rapidsai/base:26.10-cuda12-py3.12", "26.10", 12),
        ("rapidsai/base:25.10-cuda12.9-py3.12", "25.10", 12),
        ("nvcr.io/nvidia/rapidsai/base:26.10-cuda13-py3.13", "26.10", 13),
        ("rapidsai/notebooks:26.12a-cuda12-py3.12", "26.12", 12),
        ("ghcr.io/acme/rapids-custom:1.0", None, None),
    ],
)
def test_image_tags_name_their_release_and_cuda(image: str, release: str | None, cuda: int | None) -> None:
    assert versions.image_release(image) == release
    assert versions.image_cuda_major(image) == cuda


def test_the_default_image_is_cuda_12_which_the_stacks_cos_driver_supports() -> None:
    # CUDA 12 needs driver >= 535, CUDA 13 >= 580 (docs.rapids.ai platform support); the COS
    # installer's default driver on current GKE is 535-class (GOTCHAS.md).
    assert versions.image_cuda_major(settings.DEFAULT_RAPIDS_IMAGE) == 12
