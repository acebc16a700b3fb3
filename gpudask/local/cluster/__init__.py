"""A real Kubernetes control plane on loopback (etcd, kube-apiserver, controller-manager, scheduler),
kwok nodes shaped like the stack's pools, and the stack's objects applied to it as Pulumi would.

Built from the pinned upstream programs (`upstream/versions.toml`, `gpudask.upstream.programs`).
"""
