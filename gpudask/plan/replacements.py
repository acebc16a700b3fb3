"""What a change to one field does: `replacement_kind(type_token, field_path)`.

The facts are data (`replacement_kinds.yaml`, one source per field); this module only looks
them up, so the table can be regenerated from the provider's schema and compared.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Literal

import yaml

Kind = Literal["replace", "update", "node-roll"]
DATA_FILE = Path(__file__).with_name("replacement_kinds.yaml")
KINDS: tuple[Kind, ...] = ("replace", "node-roll", "update")


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


def replacement_kind(type_token: str, field_path: str) -> Kind:
    """`replace`, `node-roll` or `update` for a change of `field_path` on a `type_token` resource.

    Fields the table does not know are `update` (Kubernetes objects: their replacements come
    from the resource's `replaceOnChanges` option, which the plan checks separately).
    """
    found = entry(type_token, field_path)
    if found is None:
        return "update"
    kind = found[1]["kind"]
    assert kind in KINDS, f"{type_token} {found[0]}: unknown kind {kind!r}"
    return kind
