"""Component type tokens and the aliases that keep deployed stacks from replacing them.

Each component class carries its token as a literal, `TYPE_TOKEN`, frozen: a component's URN
contains its type, and its children's URNs contain it too, so a new token makes `pulumi up`
delete and recreate the cluster, its pools and everything on it. The tokens once followed the
file and class names (`gpu-dask:<module>:<ClassName>`, since 2026-11-23); they no longer follow
anything: moving or renaming a file or class leaves them as they are, and tests/test_urns.py
holds every stack's URNs to tests/data/urns/<stack>.txt.

Before 2026-11-23 the tokens followed no scheme (`gpu-dask:gke:Cluster` for `GkeCluster`, ...);
each component registers an alias to that old type, `OLD_TYPE_TOKEN`: the engine then matches
the old URN, and gives every child an alias built from the parent's matched URN (GOTCHAS.md,
"Pulumi type aliases"), so children need none of their own.
"""

from __future__ import annotations

import pulumi


def with_old_type(old_type: str, opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """`opts` plus an alias to `old_type` (the caller's own aliases are kept)."""
    return pulumi.ResourceOptions.merge(
        opts or pulumi.ResourceOptions(), pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=old_type)])
    )
