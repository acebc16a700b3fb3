"""The README's config reference, generated so that it cannot drift from the code.

Scalar keys: name, type, default and meaning come from `Pulumi.yaml` (their one home).
Structured keys (`gpuNodePools`, `dask`, `labels`): the meanings are below; every default
is read from what `components.settings.parse_settings` makes of a config that omits the
key, so a default changed in the parser changes the table. `python -m gpudask docs`
rewrites README.md between the markers; `--check` (and tests/test_docs.py) fails when the
README differs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components import settings as s
from components.catalog import A100_MACHINE_TYPES, SCHEDULER_GPU_MACHINE_TYPES

PROJECT_DIR = Path(__file__).resolve().parents[2]
README = PROJECT_DIR / "README.md"
BEGIN, END = "<!-- BEGIN CONFIG -->", "<!-- END CONFIG -->"


@dataclass(frozen=True)
class Key:
    meaning: str
    default: str | None = None
    """Omitted -> the default the parser applies, read from the parsed settings; `{value}` in
    the text stands for that parsed default (for defaults that depend on other keys)."""
    required: bool = False


STRUCTURED: dict[str, Key] = {
    "gpuNodePools": Key("map of pool name -> pool (below); at least one", required=True),
    "dask": Key("the DaskCluster (below)", default="see below"),
    "labels": Key("extra GCP labels on the cluster and nodes"),
    "existingCluster": Key(
        "deploy onto a cluster you already have (below)",
        default="omitted: this stack creates the network, cluster and pools",
    ),
    "monitoring": Key("metrics collection, the Cloud Monitoring dashboard and alerts (below)", default="see below"),
}

MONITORING: dict[str, Key] = {
    "collection": Key(
        f"{' / '.join(s.MONITORING_COLLECTIONS)}: Managed Prometheus `PodMonitoring`s, Prometheus-operator "
        "`PodMonitor`s, or nothing; the scheduler (8787) and every worker group (8788) at `/metrics`, and a "
        "NetworkPolicy admitting only that collector to those ports",
        default="`gmp` when the stack creates GKE (Managed Prometheus on); `none` with `existingCluster`",
    ),
    "prometheusNamespace": Key("with `prometheus-operator`: the namespace of the Prometheus pods admitted"),
    "dashboard": Key(
        "a Cloud Monitoring dashboard and alert policies (PromQL on Managed Prometheus); needs `collection: gmp` "
        "and a stack that creates GKE",
        default="`true`; `false` with `existingCluster`",
    ),
    "notificationChannels": Key(
        "notification channel ids (`projects/<p>/notificationChannels/<n>`) every alert notifies; none is created",
        default="none: alerts open incidents, notify nobody",
    ),
    "alerts": Key("alert thresholds (below)", default="see below"),
}

ALERTS: dict[str, Key] = {
    "noGpuWorkerMinutes": Key(
        "work queued or waiting for a GPU while no GPU worker is up, this long (stockout, quota)"
    ),
    "spilledBytes": Key("a worker holding more than this spilled to disk"),
    "spillMinutes": Key("... for this long"),
    "pausedMinutes": Key("a worker paused (memory above its pause fraction) this long"),
    "schedulerTickSeconds": Key("the scheduler's longest event-loop tick above this, or the scheduler down"),
    "schedulerMinutes": Key("... for this long"),
    "gpuIdleMinutes": Key("GPUs held by workers but under `gpuIdlePercent` busy (DCGM), this long"),
    "gpuIdlePercent": Key("GPU utilisation counted as idle"),
    "restarts": Key("more workers leaving than this within `restartWindowMinutes`: a restart loop"),
    "restartWindowMinutes": Key("the restart window"),
}

EXISTING: dict[str, Key] = {
    "context": Key(
        "kubeconfig context of the cluster, looked up in the ambient kubeconfig (`KUBECONFIG`, else "
        "`~/.kube/config`); `kubeconfig` (a path) is refused: it would be stored in state",
        required=True,
    ),
    "systemPool": Key(
        "GKE pool name of the on-demand CPU pool for the operator, the scheduler and CPU workers",
        default="`system`",
    ),
    "installOperator": Key(
        "false: the cluster already runs the Dask operator; no Helm release, CRDs or ClusterRole are installed",
        default="`true`",
    ),
    "networkPoliciesEnforced": Key(
        "true once the cluster enforces NetworkPolicies (Dataplane V2, Calico); while false with TLS off the plan warns",
        default="`false`",
    ),
    "schedulerPool": Key(
        "the cluster's small-GPU pool for the GPU scheduler (`dask.schedulerGpu`, nothing is created): `name` (its "
        f"GKE name: the scheduler's nodeSelector), `machineType` ({', '.join(SCHEDULER_GPU_MACHINE_TYPES)}: its GPU "
        "and room, for the plan and `rehearse --cluster`), `taints` (`key=value:Effect`, besides GKE's "
        "`nvidia.com/gpu`: tolerated), `maxNodes`, `spot`",
        default="none: `dask.schedulerGpu` must be `false` (a CPU scheduler; the plan warns)",
    ),
}

POOL: dict[str, Key] = {
    "machineType": Key(
        f"an A100 machine type ({', '.join(A100_MACHINE_TYPES)}); accelerator type and count follow it",
        required=True,
    ),
    "minNodes": Key("autoscaler minimum (0: scales to zero)"),
    "maxNodes": Key("autoscaler maximum"),
    "spot": Key("Spot VMs (about a third of the on-demand price, reclaimed with 30 s notice)"),
    "diskSizeGb": Key("boot disk (pd-ssd) per node; the RAPIDS image is ~14 GB"),
    "zones": Key("zones of a regional cluster the pool's nodes go to", default="the cluster's location"),
    "secondaryBootDiskImage": Key(
        "`projects/<project>/global/images/<name>`: a disk image holding the RAPIDS image, attached to every new "
        "node as a `CONTAINER_IMAGE_CACHE` secondary boot disk; needs `imageStreaming`; changing it replaces the "
        "pool; how to build it: [docs/image-cache.md](docs/image-cache.md)",
        default="no image cache",
    ),
}

DASK: dict[str, Key] = {
    "name": Key("DaskCluster name (DNS-1123, at most 53 characters)"),
    "namespace": Key(
        "dedicated namespace: it gets default-deny NetworkPolicies and Pod Security `restricted`, "
        f"so {', '.join(s.SHARED_NAMESPACES)} are refused"
    ),
    "image": Key(
        "RAPIDS image of the scheduler and of every worker group that names none: a pinned tag or digest, "
        "never `:latest`"
    ),
    "worker": Key(
        "the DaskCluster's own worker group (`spec.worker`, GPU workers), with the keys of a worker group (below)",
        default="see below",
    ),
    "colocation": Key(f"GPU worker pod affinity: {' / '.join(s.COLOCATION_MODES)}"),
    "schedulerGpu": Key(
        "the scheduler gets one small GPU on its own one-node pool `scheduler` (tainted so workers stay off): "
        "dask-cudf graphs carry cuDF objects the scheduler deserializes, and GKE mounts the driver only into pods "
        "requesting a GPU; false: a CPU scheduler on the system pool, which `gpudask plan` reports"
    ),
    "schedulerMachineType": Key(
        f"the scheduler pool's machine ({' / '.join(SCHEDULER_GPU_MACHINE_TYPES)}: one L4 or one T4); its zone must offer the GPU"
    ),
    "schedulerSpot": Key(
        "Spot VM for the scheduler pool (a reclaim loses the scheduler's state)",
        default="spot when any GPU pool is spot",
    ),
    "schedulerService": Key(
        f"{' / '.join(s.SCHEDULER_SERVICES)}; a public `LoadBalancer` is refused",
    ),
    "schedulerCpu": Key("scheduler CPU request"),
    "schedulerMemoryGb": Key("scheduler memory request and limit"),
    "clientCidrs": Key(
        "source ranges for the internal load balancer (required with it), allowed through the NetworkPolicy"
    ),
    "clientNamespaces": Key("namespaces whose pods may reach the scheduler"),
    "tls": Key(
        "mutual TLS with a private CA from pulumi-tls: `require-encryption` on, `schedulerAddress` becomes "
        "`tls://...`, the CA and client certificate are outputs"
    ),
    "workerGroups": Key("map of group name -> extra DaskWorkerGroup (below)"),
    "autoscale": Key(
        "`{minimum, maximum}`: a DaskAutoscaler for the default group; Pulumi then ignores its replicas",
        default="none (Pulumi owns `worker.replicas`)",
    ),
}

WORKER: dict[str, Key] = {
    "replicas": Key(
        "GPU workers of the DaskCluster's own group; not with `autoscale`, whose group starts at its minimum"
    ),
    "gpusPerWorker": Key("GPUs per worker pod: 1 (more breaks the operator's scale-down and is refused)"),
    "cpu": Key(
        "CPU request per worker",
        default="the worker's share of the smallest target node, after GKE's reservation and DaemonSet room",
    ),
    "memoryGb": Key("memory request and limit per worker", default="the worker's share, as `cpu`"),
    "image": Key("the group's image", default="`dask.image`"),
    "pool": Key("the GPU pool the group's workers go to", default="any A100 pool"),
}

GROUP: dict[str, Key] = {
    "replicas": Key("workers in the group"),
    "gpusPerWorker": Key("GPUs per worker (0: CPU workers, `dask worker`, on the system pool)"),
    "cpu": Key("CPU request per worker", default="{value} for CPU workers; a GPU worker's share of its node"),
    "memoryGb": Key("memory request and limit per worker", default="{value} for CPU workers; a GPU worker's share"),
    "image": Key("the group's image", default="`dask.image`"),
    "pool": Key("the pool its workers go to", default="GPU workers: any A100 pool; CPU workers: the system pool"),
}

AUTOSCALE: dict[str, Key] = {
    "minimum": Key("fewest workers"),
    "maximum": Key("most workers", default="`dask.worker.replicas` (at least 1)"),
}

SECTIONS: tuple[tuple[str, dict[str, Key], set[str]], ...] = (
    ("gpuNodePools.<name>", POOL, s.POOL_KEYS),
    ("dask", DASK, s.DASK_KEYS),
    ("dask.worker", WORKER, s.GROUP_KEYS),
    ("dask.workerGroups.<group>", GROUP, s.GROUP_KEYS),
    ("dask.autoscale", AUTOSCALE, {"minimum", "maximum"}),
    ("existingCluster", EXISTING, s.EXISTING_KEYS),
    ("monitoring", MONITORING, s.MONITORING_KEYS),
    ("monitoring.alerts", ALERTS, s.ALERT_KEYS),
)


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple | list):
        value = list(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = value if isinstance(value, str) else json.dumps(value)
    return f"`{text}`"


def _parsed_defaults() -> dict[str, dict[str, Any]]:
    """Field values of a config that sets only what is required, per section."""
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    raw: dict[str, Any] = {k: spec.get("default") for k, spec in project["config"].items()}
    raw["gpuNodePools"] = {"a100": {"machineType": next(iter(A100_MACHINE_TYPES))}}
    raw["dask"] = {}
    parsed = s.parse_settings(raw, "docs-project")
    pool = parsed.gpu_node_pools["a100"]
    # A CPU group and an autoscaler with nothing but what they require.
    raw["dask"] = {"workerGroups": {"extra": {}}, "autoscale": {"minimum": 0}}
    extended = s.parse_settings(raw, "docs-project").dask
    autoscale = extended.autoscale
    fields = {
        "": vars(parsed),
        "gpuNodePools.<name>": vars(pool),
        "dask": vars(parsed.dask),
        "dask.worker": vars(parsed.dask.worker),
        "dask.workerGroups.<group>": vars(extended.worker_groups["extra"]),
        "dask.autoscale": vars(autoscale) if autoscale else {},
        "existingCluster": {},
        "monitoring": vars(parsed.monitoring),
        "monitoring.alerts": vars(parsed.monitoring.alerts),
    }
    return {section: dict(values) for section, values in fields.items()}


def _row(key: str, doc: Key, parsed: dict[str, Any]) -> str:
    if doc.required:
        default = "(required)"
    elif doc.default is not None:
        default = doc.default
        if "{value}" in default:
            default = default.format(value=_value(parsed[_snake(key)]))
    else:
        default = _value(parsed[_snake(key)])
    return f"| `{key}` | {default} | {doc.meaning} |"


def render() -> str:
    """The config reference: the markdown between the README markers."""
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    lines = [
        "Every key is in the `gpu-dask:` namespace of the stack file. Scalar keys, with their defaults,",
        "are declared in `Pulumi.yaml`; structured keys are objects in the stack file. Generated by",
        "`python -m gpudask docs` from `Pulumi.yaml` and `components/settings/`; do not edit by hand.",
        "",
        "| key | default | meaning |",
        "|---|---|---|",
    ]
    for key, spec in project["config"].items():
        default = _value(spec["default"]) if "default" in spec else "(required)"
        lines.append(f"| `{key}` | {default} | {spec['description']} |")
    defaults = _parsed_defaults()
    lines += [_row(key, doc, defaults[""]) for key, doc in STRUCTURED.items()]
    for section, docs, _known in SECTIONS:
        lines += ["", f"`{section}`:", "", "| key | default | meaning |", "|---|---|---|"]
        lines += [_row(key, doc, defaults[section]) for key, doc in docs.items()]
    return "\n".join(lines) + "\n"


def undocumented() -> list[str]:
    """Keys the parser accepts that this module does not describe, and the reverse."""
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    problems = []
    top = set(project["config"]) | set(STRUCTURED)
    problems += [f"{k}: accepted by the parser, not documented" for k in sorted(s.TOP_KEYS - top)]
    problems += [f"{k}: documented, not a key of the parser" for k in sorted(top - s.TOP_KEYS)]
    for section, docs, known in SECTIONS:
        problems += [f"{section}.{k}: accepted by the parser, not documented" for k in sorted(known - set(docs))]
        problems += [f"{section}.{k}: documented, not a key of the parser" for k in sorted(set(docs) - known)]
    return problems


def readme_section(text: str) -> str:
    if BEGIN not in text or END not in text:
        raise ValueError(f"README.md has no {BEGIN} ... {END} markers")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def write(readme: Path = README) -> bool:
    """Rewrite the README section; True when it changed."""
    text = readme.read_text()
    current = readme_section(text)
    wanted = render()
    if current == wanted:
        return False
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(f"{head}{BEGIN}\n{wanted}{END}{tail}")
    return True
