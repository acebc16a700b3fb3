"""The stack's one settings object: parsed and validated before anything is declared.

`parse_settings` takes the raw config values (strings as Pulumi stores them, or
already-decoded values) and either returns a frozen `StackSettings` or raises
`SettingsError` listing every problem at once: the key, the value received and
what is allowed.

One module per concern; import from `components.settings` (the names below), not from them:
- model: the frozen settings dataclasses and name formats;
- reader: typed, problem-collecting access to raw config objects, `SettingsError`;
- keys: the config schema, declared once (key, type, default, allowed values, meaning per config
  object) and the config words (enums); the parser, Pulumi.yaml's `config:` block and README's
  reference derive from it;
- sizing: the sizing policy (worker shares of a node, what fits the pools, the scheduler's node);
- rules: cross-field rules (networks, client reach, image pins, driver vs images);
- parse: `parse_settings`, which reads every object and applies the rules.
Names with a leading underscore are shared between these modules only.
"""

from components.settings.keys import (
    ALERT_KEYS,
    COLOCATION_MODES,
    CONTROL_PLANE_ACCESS,
    DASK_KEYS,
    DEFAULT_RAPIDS_IMAGE,
    DRIVER_MODES,
    EXISTING_CLUSTER_KUBECONFIG,
    EXISTING_KEYS,
    GKE_ONLY_KEYS,
    GROUP_KEYS,
    MONITORING_COLLECTIONS,
    MONITORING_KEYS,
    POOL_KEYS,
    PULUMI_TYPES,
    RELEASE_CHANNELS,
    RENAMED_DASK_KEYS,
    RESERVED_GROUP_NAMES,
    SCALAR_KEYS,
    SCHEDULER_SERVICES,
    SECTIONS,
    SHARED_NAMESPACES,
    SYSTEM_POOL_NAME,
    TOP,
    TOP_KEYS,
    Key,
    Section,
)
from components.settings.model import (
    SCHEDULER_POOL_NAME,
    SCHEDULER_TAINT,
    AlertSettings,
    AutoscaleSettings,
    DaskSettings,
    ExistingClusterSettings,
    ExistingSchedulerPool,
    GpuPoolSettings,
    MonitoringSettings,
    NetworkSettings,
    StackSettings,
    WorkerGroupSettings,
    is_region,
)
from components.settings.parse import parse_settings
from components.settings.reader import SettingsError
from components.settings.rules import image_pin_problem

__all__ = [
    "ALERT_KEYS",
    "COLOCATION_MODES",
    "CONTROL_PLANE_ACCESS",
    "DASK_KEYS",
    "DEFAULT_RAPIDS_IMAGE",
    "DRIVER_MODES",
    "EXISTING_CLUSTER_KUBECONFIG",
    "EXISTING_KEYS",
    "GKE_ONLY_KEYS",
    "GROUP_KEYS",
    "MONITORING_COLLECTIONS",
    "MONITORING_KEYS",
    "POOL_KEYS",
    "PULUMI_TYPES",
    "RELEASE_CHANNELS",
    "RENAMED_DASK_KEYS",
    "RESERVED_GROUP_NAMES",
    "SCALAR_KEYS",
    "SCHEDULER_POOL_NAME",
    "SCHEDULER_SERVICES",
    "SCHEDULER_TAINT",
    "SECTIONS",
    "SHARED_NAMESPACES",
    "SYSTEM_POOL_NAME",
    "TOP",
    "TOP_KEYS",
    "AlertSettings",
    "AutoscaleSettings",
    "DaskSettings",
    "ExistingClusterSettings",
    "ExistingSchedulerPool",
    "GpuPoolSettings",
    "Key",
    "MonitoringSettings",
    "NetworkSettings",
    "Section",
    "SettingsError",
    "StackSettings",
    "WorkerGroupSettings",
    "image_pin_problem",
    "is_region",
    "parse_settings",
]
