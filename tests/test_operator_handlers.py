"""The pinned operator's name check against the settings, and where an autoscaled group starts.

The `pulumi.com/waitFor` race between the operator's create handler and its scheduler-Service
status handler (dask/dask-kubernetes#968) is a control-plane scenario with the real operator:
tests/test_dask_runtime.py (b) creates the cluster 20 times and shows the stack's condition met
every time and the old `.status.phase=Running` one missed.
"""

from __future__ import annotations

import pytest

from tests.conftest import settings_for


def test_the_operator_never_rejects_a_name_the_settings_accept() -> None:
    """`Error` would also satisfy a presence condition; the operator sets it only for a name
    `validate_cluster_name` refuses, which settings refuse first with the same function."""
    from components.settings import SettingsError

    with pytest.raises(SettingsError, match=r"dask\.name"):
        settings_for("dev", dask={"name": "Not_Valid"})


def test_an_autoscaled_group_starts_at_its_minimum() -> None:
    """A group created above its autoscaler's minimum holds a worker whose pod has not connected
    yet, which the operator cannot retire (dask/dask-kubernetes#817; scenario (c) shows it live)."""
    from components import dask_spec

    s = settings_for("dev")
    assert s.dask.autoscale is not None
    assert dask_spec.dask_cluster(s.dask)["spec"]["worker"]["replicas"] == s.dask.autoscale.minimum
