"""Pure builders that ship the stack's operator plugin (components/operator_plugin.py) to the operator.

The stock operator image stays: a ConfigMap in the operator's namespace holds the plugin's
module and a minimal `.dist-info` (METADATA, and `entry_points.txt` naming it in the
`dask_operator_plugin` group); the chart's `volumes`/`volumeMounts` mount it at PLUGIN_DIR and
its `extraEnv` puts PLUGIN_DIR on PYTHONPATH. importlib.metadata finds `.dist-info` folders on
sys.path, so the controller's `entry_points(group="dask_operator_plugin")` loads the module when
it is imported (dask_kubernetes 2026.3.0 controller.py, `PLUGINS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components import operator_plugin
from components.catalog import MANAGED_BY_LABELS

PLUGIN_DIR = "/opt/gpudask-plugin"
VOLUME = "gpudask-operator-plugin"
CONFIG_MAP = "gpudask-operator-plugin"
DIST_NAME = "gpudask_operator_plugin"
DIST_VERSION = "1.0"
DIST_INFO = f"{DIST_NAME}-{DIST_VERSION}.dist-info"
MODULE_FILE = f"{operator_plugin.MODULE}.py"

# ConfigMap key -> path under PLUGIN_DIR (keys cannot hold '/').
FILES = {
    MODULE_FILE: MODULE_FILE,
    "METADATA": f"{DIST_INFO}/METADATA",
    "entry_points.txt": f"{DIST_INFO}/entry_points.txt",
}


def plugin_files() -> dict[str, str]:
    """ConfigMap data: the module's text and its distribution metadata."""
    return {
        MODULE_FILE: Path(operator_plugin.__file__).read_text(),
        "METADATA": f"Metadata-Version: 2.1\nName: {DIST_NAME}\nVersion: {DIST_VERSION}\n",
        "entry_points.txt": f"[{operator_plugin.ENTRY_POINT_GROUP}]\ngpudask = {operator_plugin.MODULE}\n",
    }


def config_map(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": namespace, "labels": dict(MANAGED_BY_LABELS)},
        "data": plugin_files(),
    }


def chart_values() -> dict[str, Any]:
    """The operator chart's values that mount the ConfigMap and put it on PYTHONPATH."""
    return {
        "volumes": [
            {
                "name": VOLUME,
                "configMap": {"name": CONFIG_MAP, "items": [{"key": k, "path": p} for k, p in FILES.items()]},
            }
        ],
        "volumeMounts": [{"name": VOLUME, "mountPath": PLUGIN_DIR, "readOnly": True}],
        "extraEnv": [{"name": "PYTHONPATH", "value": PLUGIN_DIR}],
    }
