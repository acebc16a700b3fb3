"""The provider resource types the tools read out of a recording: one owner for each token.

Provider facts (pulumi-gcp, pulumi-kubernetes), not ours: the recorder's mocks, the plan's
checks, the timeline and the local control plane all name them from here.
"""

from __future__ import annotations

NODE_POOL = "gcp:container/nodePool:NodePool"
CLUSTER = "gcp:container/cluster:Cluster"
RELEASE = "kubernetes:helm.sh/v3:Release"
