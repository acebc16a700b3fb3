"""Upstream: what we take from other projects, pinned.

`programs` builds the pinned upstream programs (kube-apiserver, etcd, kwok, helm, the Pulumi
CLI and provider; `upstream/versions.toml`) into the user cache; `schemas` checks manifests
against upstream schemas (Kubernetes OpenAPI, the Dask CRDs, the operator chart's values).
"""
