"""What a change to one field does: `replacement_kind(type_token, field_path)`.

The facts are data (`replacement_kinds.yaml`, one source per field); this module only looks
them up, so the table can be regenerated from the provider's schema and compared.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

import yaml

Kind = Literal["replace", "update", "node-roll"]
DATA_FILE = Path(__file__).with_name("replacement_kinds.yaml")
KINDS: tuple[Kind, ...] = ("replace", "node-roll", "update")
# A table kind decided by the values: `replace` when the new CIDR range does not hold the old
# one (a shrink or a move), `update` when it does (an expansion). The provider's CustomizeDiff
# `ForceNewIfChange("ip_cidr_range", IsShrinkageIpCidr)`, not a schema flag.
SHRINK = "replace-if-shrink"
TABLE_KINDS = (*KINDS, SHRINK)


def is_shrinkage(old: Any, new: Any) -> bool:
    """True unless `new` holds every address of `old` (both CIDR strings), as the provider decides."""
    try:
        old_net = ipaddress.ip_network(str(old), strict=False)
        new_net = ipaddress.ip_network(str(new), strict=False)
    except ValueError:
        return False  # the provider's validation refuses these first
    return not (new_net.version == old_net.version and old_net.subnet_of(new_net))  # type: ignore[arg-type]


@functools.cache
def table() -> dict[str, dict[str, dict[str, Any]]]:
    return yaml.safe_load(DATA_FILE.read_text())["fields"]


def dotted(field_path: str) -> str:
    """`nodeConfig.guestAccelerators[0].count` -> `nodeConfig.guestAccelerators.count`."""
    return re.sub(r"\[\d+\]", "", field_path)


def entry(type_token: str, field_path: str) -> tuple[str, dict[str, Any]] | None:
    """The table's entry covering this field (the longest matching prefix), or None."""
    fields = table().get(type_token) or {}
    path = dotted(field_path)
    candidates = [f for f in fields if path == f or path.startswith(f + ".")]
    if not candidates:
        return None
    best = max(candidates, key=len)
    return best, fields[best]


def replacement_kind(type_token: str, field_path: str, old: Any = None, new: Any = None) -> Kind:
    """`replace`, `node-roll` or `update` for a change of `field_path` on a `type_token` resource,
    from `old` to `new` (the values matter only for `replace-if-shrink` fields).

    Fields the table does not know are `update` (Kubernetes objects: their replacements come
    from the resource's `replaceOnChanges` option, which the plan checks separately).
    """
    found = entry(type_token, field_path)
    if found is None:
        return "update"
    kind = found[1]["kind"]
    assert kind in TABLE_KINDS, f"{type_token} {found[0]}: unknown kind {kind!r}"
    if kind == SHRINK:
        return "replace" if old is not None and new is not None and is_shrinkage(old, new) else "update"
    return kind
