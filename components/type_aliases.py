"""Component type tokens and the aliases that keep deployed stacks from replacing them.

Every component's type token is `gpu-dask:<module>:<ClassName>`: the file under components/
and the class in it. Until 2026-11-23 the tokens followed no scheme (`gpu-dask:gke:Cluster` for
`GkeCluster`, ...). A component's URN contains its type, and its children's URNs contain it
too, so a new token alone would make `pulumi up` delete and recreate the cluster, its pools
and everything on it. Each component therefore registers an alias to its old type; the engine
then matches the old URN, and gives every child an alias built from the parent's matched URN
(GOTCHAS.md, "Pulumi type aliases"), so children need none of their own.
"""

from __future__ import annotations

import pulumi


def with_old_type(old_type: str, opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """`opts` plus an alias to `old_type` (the caller's own aliases are kept)."""
    return pulumi.ResourceOptions.merge(
        opts or pulumi.ResourceOptions(), pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=old_type)])
    )
