"""The key registry: every key the parser reads, per config object, and the keys it refuses or renamed."""

from __future__ import annotations

POOL_KEYS = {"machineType", "minNodes", "maxNodes", "spot", "diskSizeGb", "zones", "secondaryBootDiskImage"}
# Namespaces other workloads live in: default-deny policies there would break them.
SHARED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "dask-operator", "gke-managed-system")
# The operator names the DaskCluster's own group "default"; `gpudask.client.connect` also calls it "gpu".
RESERVED_GROUP_NAMES = ("default", "gpu")
GROUP_KEYS = {"replicas", "gpusPerWorker", "cpu", "memoryGb", "image", "pool"}
# The default group's keys before it became `dask.worker` with the words of `dask.workerGroups`.
RENAMED_DASK_KEYS = {
    "workers": "worker.replicas",
    "gpusPerWorker": "worker.gpusPerWorker",
    "workerCpu": "worker.cpu",
    "workerMemoryGb": "worker.memoryGb",
    "pool": "worker.pool",
}
DASK_KEYS = {
    "name", "namespace", "image", "worker", "colocation", "schedulerGpu", "schedulerMachineType", "schedulerSpot", "schedulerService", "schedulerCpu", "schedulerMemoryGb", "clientCidrs",
    "clientNamespaces", "tls",
    "workerGroups", "autoscale",
}  # fmt: skip
SCALAR_KEYS = {
    "location", "clusterName", "authorizedNetworks", "driver", "releaseChannel", "operatorVersion", "operatorChart",
    "protect", "systemMachineType", "systemMinNodes", "systemMaxNodes", "subnetCidr", "podsCidr", "servicesCidr", "masterCidr",
    "peeredCidrs", "imageStreaming", "imagePrepuller", "controlPlaneAccess",
}  # fmt: skip
TOP_KEYS = {
    "location", "clusterName", "authorizedNetworks", "driver", "releaseChannel", "operatorVersion", "operatorChart",
    "protect", "systemMachineType", "systemMinNodes", "systemMaxNodes", "subnetCidr", "podsCidr", "servicesCidr",
    "masterCidr", "peeredCidrs", "gpuNodePools", "dask", "labels", "imageStreaming", "imagePrepuller", "existingCluster",
    "monitoring", "controlPlaneAccess",
}  # fmt: skip
MONITORING_KEYS = {"collection", "prometheusNamespace", "dashboard", "notificationChannels", "alerts"}
ALERT_KEYS = {
    "noGpuWorkerMinutes", "spilledBytes", "spillMinutes", "pausedMinutes", "schedulerTickSeconds", "schedulerMinutes",
    "gpuIdleMinutes", "gpuIdlePercent", "restarts", "restartWindowMinutes",
}  # fmt: skip
EXISTING_KEYS = {"context", "systemPool", "installOperator", "networkPoliciesEnforced", "schedulerPool"}
EXISTING_SCHEDULER_POOL_KEYS = {"name", "machineType", "maxNodes", "spot", "taints"}
# What the program gives an existing cluster's Kubernetes provider as `kubeconfig`: empty, so the
# provider loads the ambient kubeconfig and the state holds nothing of the machine that ran it.
EXISTING_CLUSTER_KUBECONFIG = ""
# Keys that only shape what this stack creates on GCP: with existingCluster, setting one is a mistake
# (scalar keys with Pulumi.yaml defaults cannot be told apart from their default, so only these two).
GKE_ONLY_KEYS = ("authorizedNetworks", "labels")
