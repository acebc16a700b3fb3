"""Pure builder for the dask-kubernetes-operator Helm values.

Only keys the chart's values.yaml knows (Helm silently ignores the rest); a test checks
them against the values.yaml shipped in the dask-kubernetes wheel.
"""

from __future__ import annotations

from typing import Any

from components.settings import StackSettings

CHART = "dask-kubernetes-operator"
REPOSITORY = "https://helm.dask.org"
NAMESPACE = "dask-operator"


def operator_values(settings: StackSettings) -> dict[str, Any]:
    return {
        # The operator reconciles every DaskCluster: it belongs on the on-demand system pool.
        "nodeSelector": {"cloud.google.com/gke-nodepool": settings.system_pool},
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
    }
