"""Pure builder for the dask-kubernetes-operator Helm values.

Only keys the chart's values.yaml knows (Helm silently ignores the rest); a test checks
them against the values.yaml shipped in the dask-kubernetes wheel.
"""

from __future__ import annotations

from typing import Any

from components import operator_plugin_spec

CHART = "dask-kubernetes-operator"
REPOSITORY = "https://helm.dask.org"
NAMESPACE = "dask-operator"
# The stack's NetworkPolicy lets the operator reach a scheduler's HTTP API (8787), never its comm
# port (8786): the operator's RPC fallbacks (retire_workers, adaptive targets, idle checks) are
# dropped, and each waited distributed's 30 s connect timeout before the next path. Short here.
OPERATOR_CONNECT_TIMEOUT = "5s"
CONNECT_TIMEOUT_ENV = "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"


def operator_values(node_pool: str) -> dict[str, Any]:
    """Values for the operator on GKE node pool `node_pool` (the on-demand CPU pool), with the
    stack's plugin mounted from its ConfigMap (components/operator_plugin_spec.py)."""
    plugin = operator_plugin_spec.chart_values()
    return {
        "volumes": plugin["volumes"],
        "volumeMounts": plugin["volumeMounts"],
        # The operator reconciles every DaskCluster: it belongs on the on-demand system pool.
        "nodeSelector": {"cloud.google.com/gke-nodepool": node_pool},
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
        "extraEnv": [*plugin["extraEnv"], {"name": CONNECT_TIMEOUT_ENV, "value": OPERATOR_CONNECT_TIMEOUT}],
    }
