"""Typed, problem-collecting access to raw config objects (strings as Pulumi stores them, or decoded)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from components.settings.keys import Key, Section


class SettingsError(ValueError):
    """Bad stack config. `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack config:\n  - " + "\n  - ".join(problems))


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, value: Any, allowed: str) -> None:
        self.items.append(f"{key}: {value!r} {allowed}")


def _decode(raw: Any) -> Any:
    """Pulumi hands config values over as strings; objects and arrays are JSON."""
    if isinstance(raw, str):
        stripped = raw.strip()
        if stripped[:1] in ("{", "[") or stripped in ("true", "false") or re.fullmatch(r"-?\d+(\.\d+)?", stripped):
            try:
                return json.loads(stripped)
            except json.JSONDecodeError:
                return raw
    return raw


class _Reader:
    """Typed access to one config object, recording problems under the full key path.

    `keys` is the object's section of the declaration (components/settings/keys.py): a key the
    data holds and the section lacks is a problem; a read takes the key's type, minimum, allowed
    values and default from it (a default passed in is one the parser computed from other keys).
    `defaults=False` (the top level): an omitted key reads as the type's empty value, since Pulumi
    always hands over the declared defaults and the parser reports a missing one as required."""

    def __init__(
        self,
        problems: _Problems,
        prefix: str,
        data: Mapping[str, Any],
        keys: Section,
        renamed: Mapping[str, str] | None = None,
        *,
        defaults: bool = True,
    ):
        self.problems, self.prefix, self.data, self.keys, self.defaults = problems, prefix, data, keys, defaults
        known = set(keys)
        renamed = renamed or {}
        for key in sorted(set(data) - known):
            if key in renamed:
                problems.add(f"{prefix}{key}", data[key], f"is no longer a key: use {prefix}{renamed[key]}")
            else:
                problems.add(f"{prefix}{key}", data[key], f"is not a known key; known keys: {', '.join(sorted(known))}")

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def declared(self, name: str, *types: str) -> Key:
        """The declaration of `name`; reading an undeclared key, or as another type, is a bug."""
        key = self.keys[name]
        if key.type not in types:
            raise TypeError(f"{self.key(name)} is declared as {key.type}, read as {' or '.join(types)}")
        return key

    def _default(self, key: Key, default: Any) -> Any:
        if default is not None:
            return default
        return key.default if self.defaults else None

    def string(self, name: str, default: str | None = None) -> str:
        key = self.declared(name, "string")
        default = self._default(key, default)
        value = _decode(self.data.get(name))
        if value is None:
            if key.required:
                self.problems.add(self.key(name), None, "is required")
            return default or ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value:
            self.problems.add(self.key(name), value, "must be a non-empty string")
            return default or ""
        return value

    def integer(self, name: str, default: int | None = None) -> int:
        key = self.declared(name, "integer")
        fallback = int(self._default(key, default) or 0)
        minimum = int(key.minimum or 0)
        value = _decode(self.data.get(name))
        if value is None:
            return fallback
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.problems.add(self.key(name), value, f"must be an integer >= {minimum}")
            return fallback
        return value

    def number(self, name: str, default: float | None = None) -> float:
        key = self.declared(name, "number")
        default = float(self._default(key, default) or 0.0)
        minimum = float(key.minimum or 0.0)
        value = _decode(self.data.get(name))
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= minimum:
            self.problems.add(self.key(name), value, f"must be a number > {minimum}")
            return default
        return float(value)

    def boolean(self, name: str, default: bool | None = None) -> bool:
        key = self.declared(name, "boolean")
        default = bool(self._default(key, default))
        value = _decode(self.data.get(name))
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problems.add(self.key(name), value, "must be true or false")
            return default
        return value

    def choice(self, name: str, default: str | None = None) -> str:
        """One of the key's allowed values. Omitted -> `default`, else the declared one (at the top
        level none: Pulumi.yaml's default is always present, and a missing one is reported as
        required). A bad or missing value reads as the first allowed one, so that parsing goes on
        to report every other problem."""
        allowed = self.declared(name, "string").allowed
        fallback = self._default(self.keys[name], default) or allowed[0]
        if self.data.get(name) is None:
            return fallback
        value = self.string(name, fallback)
        if value not in allowed:
            self.problems.add(self.key(name), value, f"is not allowed; one of {', '.join(allowed)}")
            return fallback
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        key = self.declared(name, "strings")
        value = _decode(self.data.get(name))
        if value is None:
            if key.required:
                self.problems.add(self.key(name), None, "is required (a list of strings)")
            return tuple(self._default(key, None) or ())
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.add(self.key(name), value, "must be a list of strings")
            return ()
        return tuple(value)

    def mapping(self, name: str) -> dict[str, Any]:
        self.declared(name, "map", "object")
        value = _decode(self.data.get(name))
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problems.add(self.key(name), value, "must be a map")
            return {}
        return value
