"""`parse_settings`: raw stack config -> a frozen `StackSettings`, or `SettingsError` with every problem."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dask_kubernetes.exceptions import ValidationError as DaskNameError
from dask_kubernetes.operator.validation import validate_cluster_name

from components.catalog import SCHEDULER_GPU_MACHINE_TYPES
from components.settings.keys import (
    ALERTS,
    AUTOSCALE,
    DASK,
    EXISTING,
    EXISTING_SCHEDULER_POOL,
    GKE_ONLY_KEYS,
    GROUP,
    MONITORING,
    POOL,
    RENAMED_DASK_KEYS,
    RESERVED_GROUP_NAMES,
    SCALAR_KEYS,
    SHARED_NAMESPACES,
    SYSTEM_POOL_NAME,
    TOP,
    WORKER,
)
from components.settings.model import (
    _CHANNEL,
    _DISK_IMAGE,
    _DNS_LABEL,
    _GKE_NAME,
    _PROJECT_ID,
    _REGION,
    _VERSION,
    _ZONE,
    SCHEDULER_POOL_NAME,
    TAINT_EFFECTS_K8S,
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
)
from components.settings.reader import SettingsError, _decode, _Problems, _Reader
from components.settings.rules import (
    _check_cidrs,
    _check_clients_reach_the_vpc,
    _check_driver_fits_images,
    _check_image,
    _check_networks,
)
from components.settings.sizing import (
    _check_gpu_fit,
    _check_one_gpu,
    _check_scheduler_pool,
    _check_spill,
    _spill_default,
    _target_pools,
    _worker_share,
)

# `key=value:Effect`, as kubectl taint writes a taint.
_TAINT = re.compile(r"^(?P<key>[^=:\s]+)=(?P<value>[^=:\s]*):(?P<effect>[A-Za-z]+)$")


def _parse_pools(
    problems: _Problems, location: str, raw: dict[str, Any], system_pool: str = SYSTEM_POOL_NAME
) -> dict[str, GpuPoolSettings]:
    pools: dict[str, GpuPoolSettings] = {}
    if not raw:
        problems.add(
            "gpuNodePools", raw, "must define at least one A100 pool (e.g. a100: {machineType: a2-highgpu-1g})"
        )
    region = location if _REGION.match(location) else location.rsplit("-", 1)[0]
    for name, body in raw.items():
        prefix = f"gpuNodePools.{name}"
        if not _GKE_NAME.match(name) or name in (system_pool, SCHEDULER_POOL_NAME):
            problems.add(
                prefix,
                name,
                f"is not a valid pool name: lowercase letters, digits and '-', at most 40, not {system_pool!r} (the system pool) or {SCHEDULER_POOL_NAME!r}",
            )
        if not isinstance(body, dict):
            problems.add(prefix, body, "must be a map with machineType, minNodes, maxNodes, spot")
            continue
        r = _Reader(problems, f"{prefix}.", body, POOL)
        machine_type = r.string("machineType")
        if machine_type and machine_type not in POOL["machineType"].allowed:
            problems.add(
                r.key("machineType"),
                machine_type,
                f"is not an A100 machine type; one of {', '.join(POOL['machineType'].allowed)}",
            )
            machine_type = ""
        min_nodes = r.integer("minNodes")
        max_nodes = r.integer("maxNodes")
        if max_nodes == 0:
            problems.add(r.key("maxNodes"), 0, "means this pool can never hold a node; use >= 1")
        if min_nodes > max_nodes:
            problems.add(r.key("minNodes"), min_nodes, f"is greater than maxNodes ({max_nodes})")
        zones = r.strings("zones")
        for i, zone in enumerate(zones):
            if not _ZONE.match(zone) or not zone.startswith(region + "-"):
                problems.add(f"{r.key('zones')}[{i}]", zone, f"is not a zone of the cluster's region {region}")
        if zones and _ZONE.match(location) and zones != (location,):
            problems.add(r.key("zones"), list(zones), f"must be omitted or [{location}] for a zonal cluster")
        pools[name] = GpuPoolSettings(
            name=name,
            machine_type=machine_type,
            min_nodes=min_nodes,
            max_nodes=max_nodes,
            spot=r.boolean("spot"),
            disk_size_gb=r.integer("diskSizeGb"),
            zones=zones,
            secondary_boot_disk_image=_disk_image(r),
        )
    return pools


def _disk_image(r: _Reader) -> str | None:
    image = r.string("secondaryBootDiskImage") or None
    if image is not None and not _DISK_IMAGE.match(image):
        r.problems.add(
            r.key("secondaryBootDiskImage"),
            image,
            "is not a disk image reference; use projects/<project>/global/images/<name> "
            "(build it with gke-disk-image-builder: docs/image-cache.md)",
        )
        return None
    return image


def _parse_group(
    problems: _Problems,
    prefix: str,
    name: str,
    body: Mapping[str, Any],
    *,
    image: str,
    pools: dict[str, GpuPoolSettings],
    system_pool: str,
    gpu: bool,
) -> tuple[WorkerGroupSettings, list[GpuPoolSettings]]:
    """One worker group (`dask.worker` or `dask.workerGroups.<name>`) and the GPU pools it may go to.

    `gpu`: the DaskCluster's own group, GPU workers only (gpusPerWorker >= 1, default 1); an extra
    group defaults to CPU workers (gpusPerWorker 0) on the system pool."""
    g = _Reader(problems, f"{prefix}.", body, WORKER if gpu else GROUP)
    gpus = g.integer("gpusPerWorker")
    _check_one_gpu(problems, g.key("gpusPerWorker"), gpus)
    pool = g.string("pool") or None
    targets: list[GpuPoolSettings] = []
    if gpus:
        targets = _target_pools(problems, g.key("pool"), pool, pools)
        cpu_default, memory_default = _worker_share(targets, gpus)
    else:
        if pool not in (None, system_pool):
            problems.add(g.key("pool"), pool, f"CPU workers (gpusPerWorker: 0) run on the '{system_pool}' pool")
        cpu_default, memory_default = g.keys["cpu"].default, g.keys["memoryGb"].default
    group_image = g.string("image", image)
    if group_image != image:
        _check_image(problems, g.key("image"), group_image)
    group = WorkerGroupSettings(
        name=name,
        replicas=g.integer("replicas"),
        gpus_per_worker=gpus,
        cpu=g.number("cpu", cpu_default),
        memory_gb=g.number("memoryGb", memory_default),
        image=group_image,
        pool=pool,
    )
    group = replace(group, spill_gb=g.number("spillGb", _spill_default(targets, gpus, group.memory_gb)))
    _check_spill(problems, g.key("spillGb"), group, targets)
    return group, targets


def _parse_dask(
    problems: _Problems, raw: dict[str, Any], pools: dict[str, GpuPoolSettings], system_pool: str = SYSTEM_POOL_NAME
) -> DaskSettings:
    r = _Reader(problems, "dask.", raw, DASK, RENAMED_DASK_KEYS)
    name = r.string("name")
    try:
        validate_cluster_name(name)
    except DaskNameError:
        problems.add(
            r.key("name"),
            name,
            "is not a valid DaskCluster name: DNS-1123 (lowercase, digits, '-'), at most 53 characters",
        )
    namespace = r.string("namespace")
    if not _DNS_LABEL.match(namespace):
        problems.add(r.key("namespace"), namespace, "is not a DNS-1123 label (lowercase, digits, '-', at most 63)")
    elif namespace in SHARED_NAMESPACES:
        problems.add(
            r.key("namespace"),
            namespace,
            "is shared; the Dask namespace gets default-deny NetworkPolicies and Pod Security labels, "
            f"so it must be dedicated (not {', '.join(SHARED_NAMESPACES)})",
        )
    image = r.string("image")
    _check_image(problems, r.key("image"), image)
    colocation = r.choice("colocation")
    raw_worker = r.mapping("worker")
    worker, targets = _parse_group(
        problems, "dask.worker", "default", raw_worker, image=image, pools=pools, system_pool=system_pool, gpu=True
    )
    service = r.string("schedulerService")
    if service == "LoadBalancer":
        problems.add(
            r.key("schedulerService"),
            service,
            "would expose the scheduler (remote code execution) publicly; use InternalLoadBalancer or ClusterIP",
        )
    elif service not in DASK["schedulerService"].allowed:
        problems.add(
            r.key("schedulerService"), service, f"is not allowed; one of {', '.join(DASK['schedulerService'].allowed)}"
        )
    client_cidrs = r.strings("clientCidrs")
    _check_cidrs(problems, r.key("clientCidrs"), client_cidrs, allow_empty=True)
    if service == "InternalLoadBalancer" and not client_cidrs:
        problems.add(r.key("clientCidrs"), [], "must list the client ranges allowed through the internal load balancer")
    client_namespaces = r.strings("clientNamespaces")
    for i, client_namespace in enumerate(client_namespaces):
        if not _DNS_LABEL.match(client_namespace):
            problems.add(f"{r.key('clientNamespaces')}[{i}]", client_namespace, "is not a DNS-1123 label")
    tls = r.boolean("tls")

    autoscale = None
    raw_autoscale = r.mapping("autoscale")
    if raw_autoscale:
        a = _Reader(problems, "dask.autoscale.", raw_autoscale, AUTOSCALE)
        autoscale = AutoscaleSettings(
            minimum=a.integer("minimum"), maximum=a.integer("maximum", max(worker.replicas, 1))
        )
        if autoscale.minimum > autoscale.maximum:
            problems.add(a.key("minimum"), autoscale.minimum, f"is greater than maximum ({autoscale.maximum})")
        if raw_worker.get("replicas") is not None:
            problems.add(
                "dask.worker.replicas",
                worker.replicas,
                "is set together with dask.autoscale: an autoscaled group starts at autoscale.minimum and the "
                "DaskAutoscaler owns the count; remove dask.worker.replicas (or remove autoscale)",
            )
    peak = max(worker.replicas, autoscale.maximum if autoscale else 0)
    _check_gpu_fit(problems, "dask.worker.gpusPerWorker", worker.gpus_per_worker, peak, targets, colocation)

    groups: dict[str, WorkerGroupSettings] = {}
    for group_name, body in r.mapping("workerGroups").items():
        prefix = f"dask.workerGroups.{group_name}"
        if not _DNS_LABEL.match(group_name) or len(f"{name}-{group_name}") > 53 or group_name in RESERVED_GROUP_NAMES:
            problems.add(
                prefix,
                group_name,
                "is not a valid worker group name: DNS-1123, not 'default' or 'gpu' (the DaskCluster's own group), "
                "and '<dask.name>-<group>' at most 53 characters",
            )
        if not isinstance(body, dict):
            problems.add(prefix, body, "must be a map with replicas, gpusPerWorker, ...")
            continue
        group, group_targets = _parse_group(
            problems, prefix, group_name, body, image=image, pools=pools, system_pool=system_pool, gpu=False
        )
        if group.gpus_per_worker:
            _check_gpu_fit(problems, f"{prefix}.gpusPerWorker", group.gpus_per_worker, group.replicas, group_targets)
        groups[group_name] = group

    scheduler_gpu = r.boolean("schedulerGpu")
    scheduler_machine_type = r.choice("schedulerMachineType")
    return DaskSettings(
        name=name,
        namespace=namespace,
        image=image,
        worker=worker,
        colocation=colocation,
        scheduler_gpu=scheduler_gpu,
        scheduler_machine_type=scheduler_machine_type,
        scheduler_spot=r.boolean("schedulerSpot", any(p.spot for p in pools.values())),
        scheduler_service=service if service in DASK["schedulerService"].allowed else DASK["schedulerService"].default,
        scheduler_cpu=r.number("schedulerCpu"),
        scheduler_memory_gb=r.number("schedulerMemoryGb"),
        client_cidrs=client_cidrs,
        client_namespaces=client_namespaces,
        tls=tls,
        worker_groups=groups,
        autoscale=autoscale,
        system_pool=system_pool,
    )


def _parse_existing(problems: _Problems, raw: Any) -> ExistingClusterSettings | None:
    value = _decode(raw)
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        problems.add("existingCluster", value, "must be a map with context (required) and systemPool")
        return None
    if "kubeconfig" in value:
        # Whatever the program hands the provider as `kubeconfig` is stored in state: a path
        # there is this machine's, and another machine parses it as kubeconfig text.
        problems.add(
            "existingCluster.kubeconfig",
            value["kubeconfig"],
            "is no longer read: the provider would store this machine's path in the stack's state; "
            "set KUBECONFIG in the environment of `pulumi` and name the cluster with existingCluster.context",
        )
    e = _Reader(problems, "existingCluster.", {k: v for k, v in value.items() if k != "kubeconfig"}, EXISTING)
    context = e.string("context")
    system_pool = e.string("systemPool")
    if not _GKE_NAME.match(system_pool):
        problems.add(
            e.key("systemPool"), system_pool, "is not a GKE node pool name (lowercase, digits, '-', at most 40)"
        )
    return ExistingClusterSettings(
        context=context,
        system_pool=system_pool,
        install_operator=e.boolean("installOperator"),
        network_policies_enforced=e.boolean("networkPoliciesEnforced"),
        scheduler_pool=_parse_existing_scheduler_pool(problems, e.mapping("schedulerPool"), system_pool),
    )


def _parse_existing_scheduler_pool(
    problems: _Problems, raw: dict[str, Any], system_pool: str
) -> ExistingSchedulerPool | None:
    if not raw:
        return None
    p = _Reader(problems, "existingCluster.schedulerPool.", raw, EXISTING_SCHEDULER_POOL)
    name = p.string("name")
    if name and (not _GKE_NAME.match(name) or name == system_pool):
        problems.add(
            p.key("name"),
            name,
            f"is not a GKE node pool name (lowercase, digits, '-', at most 40) other than {system_pool!r}",
        )
    machine_type = p.string("machineType")
    if machine_type and machine_type not in p.keys["machineType"].allowed:
        problems.add(
            p.key("machineType"),
            machine_type,
            f"must say what the pool's nodes are: one of {', '.join(p.keys['machineType'].allowed)} (one small GPU)",
        )
    taints = []
    for i, text in enumerate(p.strings("taints")):
        match = _TAINT.match(text)
        if not match or match["effect"] not in TAINT_EFFECTS_K8S:
            problems.add(
                f"{p.key('taints')}[{i}]",
                text,
                f"is not a taint: key=value:Effect with Effect one of {', '.join(TAINT_EFFECTS_K8S)}",
            )
            continue
        taints.append((match["key"], match["value"], match["effect"]))
    return ExistingSchedulerPool(
        name=name,
        machine_type=machine_type,
        max_nodes=p.integer("maxNodes"),
        spot=p.boolean("spot"),
        taints=tuple(taints),
    )


def _place_scheduler_on_existing_pool(
    problems: _Problems,
    dask: DaskSettings,
    existing: ExistingClusterSettings,
    raw_dask: dict[str, Any],
    pools: dict[str, GpuPoolSettings],
) -> DaskSettings:
    """With existingCluster the GPU scheduler goes to the small-GPU pool the cluster has, named by
    `existingCluster.schedulerPool`; the stack creates none."""
    pool = existing.scheduler_pool
    if pool is None:
        if dask.scheduler_gpu:
            problems.add(
                "dask.schedulerGpu",
                True,
                "needs a small-GPU pool, and with existingCluster the stack creates none: name the cluster's L4/T4 "
                "pool in existingCluster.schedulerPool (name, machineType, taints), or set false (a CPU scheduler, "
                "on which dask-cudf graphs fail)",
            )
        return dask
    if not dask.scheduler_gpu:
        problems.add(
            "dask.schedulerGpu",
            False,
            f"contradicts existingCluster.schedulerPool ({pool.name}): remove one of them",
        )
        return dask
    for key in ("schedulerMachineType", "schedulerSpot"):
        if key in raw_dask:
            problems.add(
                f"dask.{key}",
                raw_dask[key],
                "describes the pool this stack creates; with existingCluster say what the cluster's pool is in "
                "existingCluster.schedulerPool (machineType, spot)",
            )
    if pool.name in pools:
        problems.add(
            "existingCluster.schedulerPool.name",
            pool.name,
            "is one of gpuNodePools (an A100 pool); the scheduler needs its own small-GPU pool",
        )
    if pool.machine_type not in SCHEDULER_GPU_MACHINE_TYPES:
        return dask  # reported by the parser
    return replace(
        dask,
        scheduler_machine_type=pool.machine_type,
        scheduler_spot=pool.spot,
        scheduler_pool=pool.name,
        scheduler_taints=pool.taints,
    )


def _parse_monitoring(problems: _Problems, raw: dict[str, Any], existing: bool) -> MonitoringSettings:
    m = _Reader(problems, "monitoring.", raw, MONITORING)
    collection = m.choice("collection", "none" if existing else "gmp")
    namespace = m.string("prometheusNamespace")
    if not _DNS_LABEL.match(namespace):
        problems.add(m.key("prometheusNamespace"), namespace, "is not a Kubernetes namespace name")
    dashboard = m.boolean("dashboard", not existing)
    if dashboard and existing:
        problems.add(
            m.key("dashboard"),
            True,
            "needs a GCP project this stack owns; with existingCluster no dashboard or alert is declared: set false",
        )
    channels = m.strings("notificationChannels")
    for i, channel in enumerate(channels):
        if not _CHANNEL.match(channel):
            problems.add(
                f"{m.key('notificationChannels')}[{i}]",
                channel,
                "is not a notification channel id (projects/<project>/notificationChannels/<number>)",
            )
    a = _Reader(problems, "monitoring.alerts.", m.mapping("alerts"), ALERTS)
    alerts = AlertSettings(
        no_gpu_worker_minutes=a.integer("noGpuWorkerMinutes"),
        spilled_bytes=a.integer("spilledBytes"),
        spill_minutes=a.integer("spillMinutes"),
        paused_minutes=a.integer("pausedMinutes"),
        scheduler_tick_seconds=a.number("schedulerTickSeconds"),
        scheduler_minutes=a.integer("schedulerMinutes"),
        gpu_idle_minutes=a.integer("gpuIdleMinutes"),
        gpu_idle_percent=a.number("gpuIdlePercent"),
        restarts=a.integer("restarts"),
        restart_window_minutes=a.integer("restartWindowMinutes"),
    )
    if dashboard and collection != "gmp":
        problems.add(
            m.key("collection"),
            collection,
            "must be gmp while monitoring.dashboard is true (the dashboard and alerts read Managed Prometheus)",
        )
    return MonitoringSettings(collection, namespace, dashboard, channels, alerts)


def parse_settings(raw: Mapping[str, Any], project: str | None) -> StackSettings:
    """Validate the stack config; every problem is reported at once."""
    problems = _Problems()
    present = {k: v for k, v in raw.items() if v is not None}
    existing = _parse_existing(problems, present.get("existingCluster"))
    if existing is None and (not project or not _PROJECT_ID.match(project)):
        problems.add("gcp:project", project, "is required: your GCP project id (6-30 lowercase letters, digits, '-')")
    if existing is not None:
        for key in GKE_ONLY_KEYS:
            # Pulumi.yaml's default ([] or {}) reaches the program as if set: only a value says something.
            if _decode(present.get(key)):
                problems.add(
                    key,
                    _decode(present[key]),
                    "has no effect with existingCluster (this stack creates no GKE cluster); remove it",
                )
    # Scalar defaults live in Pulumi.yaml only; the Pulumi CLI (or gpudask's recorder) fills them in.
    required = SCALAR_KEYS - ({"authorizedNetworks"} if existing else set())
    for key in sorted(required - set(present)):
        problems.add(key, None, "is required (Pulumi.yaml declares the defaults; set it in the stack file)")
    r = _Reader(problems, "", present, TOP, defaults=False)

    location = r.string("location")
    if location and not (_ZONE.match(location) or _REGION.match(location)):
        problems.add("location", location, "is neither a zone (us-central1-c) nor a region (us-central1)")
    cluster_name = r.string("clusterName")
    if not _GKE_NAME.match(cluster_name) or len(cluster_name) > 24:
        problems.add(
            "clusterName",
            cluster_name,
            "must be lowercase letters, digits and '-', start with a letter, at most 24 characters (the node service account is named after it)",
        )
    access = r.choice("controlPlaneAccess")
    authorized = () if existing else r.strings("authorizedNetworks")
    if not existing and access == "dns-and-ip":
        _check_cidrs(problems, "authorizedNetworks", authorized, allow_empty=False)
    elif not existing and authorized and _decode(present.get("controlPlaneAccess")) == access:  # not a bad value
        problems.add(
            "authorizedNetworks",
            list(authorized),
            "has no effect with controlPlaneAccess: dns-only (the IP endpoint is off; clients use the DNS "
            "endpoint, authorised by IAM): remove it, or set controlPlaneAccess: dns-and-ip",
        )
    driver = r.choice("driver")
    protect = r.boolean("protect")
    release_channel = r.choice("releaseChannel")
    operator_version = r.string("operatorVersion")
    if not _VERSION.match(operator_version):
        problems.add("operatorVersion", operator_version, "must be an exact chart version like 2026.3.0 (no ranges)")
    # "" (Pulumi.yaml's default) is a value here: the published repository.
    operator_chart = r.string("operatorChart") if _decode(present.get("operatorChart")) != "" else ""
    if operator_chart.startswith(("~", "http://", "https://", "oci://")):
        problems.add(
            "operatorChart",
            operator_chart,
            "must be empty (the published repository) or a chart folder or .tgz relative to the project folder "
            "(no ~: the path is stored in the stack's state; no URL: the repository is fixed)",
        )
    system_machine_type = r.string("systemMachineType")
    if system_machine_type not in TOP["systemMachineType"].allowed:
        problems.add(
            "systemMachineType",
            system_machine_type,
            f"is not a supported CPU machine type; one of {', '.join(TOP['systemMachineType'].allowed)}",
        )
    system_min = r.integer("systemMinNodes")
    system_max = r.integer("systemMaxNodes")
    if system_min > system_max:
        problems.add("systemMinNodes", system_min, f"is greater than systemMaxNodes ({system_max})")
    network = NetworkSettings(
        subnet_cidr=r.string("subnetCidr"),
        pods_cidr=r.string("podsCidr"),
        services_cidr=r.string("servicesCidr"),
        master_cidr=r.string("masterCidr"),
        peered_cidrs=r.strings("peeredCidrs"),
    )
    _check_networks(problems, network)
    labels = {} if existing else {str(k): str(v) for k, v in r.mapping("labels").items()}
    for key, value in labels.items():
        if not _DNS_LABEL.match(key) or not re.fullmatch(r"[a-z0-9_-]{0,63}", value):
            problems.add(
                f"labels.{key}", value, "GCP labels: lowercase keys and values, digits, '-' and '_', at most 63"
            )

    system_pool = existing.system_pool if existing else SYSTEM_POOL_NAME
    pools = _parse_pools(problems, location or "", r.mapping("gpuNodePools"), system_pool)
    image_streaming = r.boolean("imageStreaming")
    image_prepuller = r.boolean("imagePrepuller")
    for pool in pools.values():
        if pool.secondary_boot_disk_image and not image_streaming:
            problems.add(
                "imageStreaming",
                False,
                f"must be true with gpuNodePools.{pool.name}.secondaryBootDiskImage: "
                "GKE reads the image cache disk through image streaming",
            )
    raw_dask = r.mapping("dask")
    dask = _parse_dask(problems, raw_dask, pools, system_pool)
    if existing:
        dask = _place_scheduler_on_existing_pool(problems, dask, existing, raw_dask, pools)
    if dask.scheduler_gpu:
        _check_scheduler_pool(problems, location or "", dask, existing is not None)
    _check_driver_fits_images(problems, driver, release_channel, dask)
    _check_clients_reach_the_vpc(problems, network, dask)
    monitoring = _parse_monitoring(problems, r.mapping("monitoring"), existing is not None)

    if problems.items:
        raise SettingsError(problems.items)
    return StackSettings(
        project=project or "",
        location=location,
        cluster_name=cluster_name,
        authorized_networks=authorized,
        control_plane_access=access,
        driver=driver,
        release_channel=release_channel,
        operator_version=operator_version,
        protect=protect,
        system_machine_type=system_machine_type,
        system_min_nodes=system_min,
        system_max_nodes=system_max,
        network=network,
        gpu_node_pools=pools,
        dask=dask,
        labels=labels,
        image_streaming=image_streaming,
        image_prepuller=image_prepuller,
        existing_cluster=existing,
        monitoring=monitoring,
        operator_chart=operator_chart,
    )
