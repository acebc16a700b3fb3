"""Typed, problem-collecting access to raw config objects (strings as Pulumi stores them, or decoded)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any


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
    """Typed access to one config object, recording problems under the full key path."""

    def __init__(
        self,
        problems: _Problems,
        prefix: str,
        data: Mapping[str, Any],
        known: set[str],
        renamed: Mapping[str, str] | None = None,
    ):
        self.problems, self.prefix, self.data = problems, prefix, data
        renamed = renamed or {}
        for key in sorted(set(data) - known):
            if key in renamed:
                problems.add(f"{prefix}{key}", data[key], f"is no longer a key: use {prefix}{renamed[key]}")
            else:
                problems.add(f"{prefix}{key}", data[key], f"is not a known key; known keys: {', '.join(sorted(known))}")

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> str:
        value = _decode(self.data.get(name))
        if value is None:
            if required:
                self.problems.add(self.key(name), None, "is required")
            return default or ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value:
            self.problems.add(self.key(name), value, "must be a non-empty string")
            return default or ""
        return value

    def integer(self, name: str, default: int = 0, *, minimum: int = 0) -> int:
        value = _decode(self.data.get(name))
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.problems.add(self.key(name), value, f"must be an integer >= {minimum}")
            return default
        return value

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        value = _decode(self.data.get(name))
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= minimum:
            self.problems.add(self.key(name), value, f"must be a number > {minimum}")
            return default
        return float(value)

    def boolean(self, name: str, default: bool = False) -> bool:
        value = _decode(self.data.get(name))
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problems.add(self.key(name), value, "must be true or false")
            return default
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        """Omitted -> `default` (for scalars, None: Pulumi.yaml's default is always present, and a
        missing one is reported as required). A bad or missing value reads as the first allowed
        one, so that parsing goes on to report every other problem."""
        fallback = default if default is not None else allowed[0]
        if self.data.get(name) is None:
            return fallback
        value = self.string(name, fallback)
        if value not in allowed:
            self.problems.add(self.key(name), value, f"is not allowed; one of {', '.join(allowed)}")
            return fallback
        return value

    def strings(self, name: str, *, required: bool = False) -> tuple[str, ...]:
        value = _decode(self.data.get(name))
        if value is None:
            if required:
                self.problems.add(self.key(name), None, "is required (a list of strings)")
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.add(self.key(name), value, "must be a list of strings")
            return ()
        return tuple(value)

    def mapping(self, name: str) -> dict[str, Any]:
        value = _decode(self.data.get(name))
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problems.add(self.key(name), value, "must be a map")
            return {}
        return value
