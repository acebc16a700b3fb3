"""Every private Pulumi SDK name the recorder (`gpudask.record.recorder`) relies on, in one place.

The Python SDK's public mock API (`pulumi.runtime.set_mocks`, `Mocks`) runs a program but
does not hand back what it saw. The recorder needs more, and these are not public API:
the mock monitor class it subclasses, the wire decoding of properties, the secret wire
marker, the root-resource reset between runs, and the function that runs a program to
completion synchronously. They can move in any SDK release, so:

- `CHECKED_SDK` is the range this was written and tested against;
- `sdk_problems()` says, in words, what does not match in the installed SDK;
- `gpudask.record.recorder` calls `require_compatible_sdk()` on import and refuses to run otherwise
  (tests/test_pulumi_internals.py fails loudly the same way).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any

from pulumi.runtime import mocks as _mocks
from pulumi.runtime import rpc as _rpc
from pulumi.runtime import settings as _settings
from pulumi.runtime import stack as _stack
from pulumi.runtime import sync_await as _sync

# The pulumi (Python SDK) releases the names below were read in and tested with.
CHECKED_SDK = (3, 207), (4, 0)
CHECKED_SDK_TEXT = ">=3.207,<4"


def sdk_version() -> str:
    return metadata.version("pulumi")


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def sdk_problems(version: str | None = None) -> list[str]:
    """What in the installed SDK differs from what the recorder was written against ([] when fine)."""
    version = version or sdk_version()
    problems = []
    low, high = CHECKED_SDK
    if not low <= _release(version) < high:
        problems.append(f"pulumi {version} is outside the range the recorder was checked against ({CHECKED_SDK_TEXT})")
    expected: dict[str, tuple[Any, str]] = {
        "pulumi.runtime.mocks.MockMonitor": (_mocks, "MockMonitor"),
        "pulumi.runtime.rpc.deserialize_properties": (_rpc, "deserialize_properties"),
        "pulumi.runtime.rpc._special_sig_key": (_rpc, "_special_sig_key"),
        "pulumi.runtime.rpc._special_secret_sig": (_rpc, "_special_secret_sig"),
        "pulumi.runtime.settings.ROOT": (_settings, "ROOT"),
        "pulumi.runtime.settings.get_root_resource": (_settings, "get_root_resource"),
        "pulumi.runtime.stack.run_pulumi_func": (_stack, "run_pulumi_func"),
        "pulumi.runtime.sync_await._sync_await": (_sync, "_sync_await"),
    }
    for dotted, (module, attr) in expected.items():
        if not hasattr(module, attr):
            problems.append(f"{dotted} is gone")
    monitor = getattr(_mocks, "MockMonitor", None)
    for method in ("RegisterResource", "ReadResource"):
        if monitor is not None and not callable(getattr(monitor, method, None)):
            problems.append(f"pulumi.runtime.mocks.MockMonitor.{method} is gone")
    if monitor is not None and "resources" not in inspect.getsource(monitor.__init__):
        problems.append("pulumi.runtime.mocks.MockMonitor no longer keeps `resources` (the recorder reads its state)")
    return problems


class IncompatibleSdk(ImportError):
    """The installed Pulumi SDK is not one the recorder was checked against."""


def require_compatible_sdk() -> None:
    problems = sdk_problems()
    if problems:
        raise IncompatibleSdk(
            "gpudask's recorder uses private Pulumi SDK names (gpudask/record/pulumi_internals.py):\n  - "
            + "\n  - ".join(problems)
            + f"\ninstall pulumi{CHECKED_SDK_TEXT} (requirements.txt), or re-check those names and widen CHECKED_SDK"
        )


MockMonitor = _mocks.MockMonitor
deserialize_properties = _rpc.deserialize_properties
SECRET_SIG: tuple[str, str] = (
    getattr(_rpc, "_special_sig_key", "4dabf18193072939515e22adb298388d"),
    getattr(_rpc, "_special_secret_sig", "1b47061264138c4ac30d75fd1eb44270"),
)


def reset_root_resource() -> None:
    """Forget the previous run's stack resource, so the next run registers its own."""
    _settings.ROOT.set(None)


def root_resource() -> Any:
    return _settings.get_root_resource()


def run_to_completion(program: Callable[[], Awaitable[None]]) -> None:
    """Run `program` the way the Pulumi language host runs a stack, waiting for every
    registration (the SDK's own synchronous driver)."""
    _sync._sync_await(_stack.run_pulumi_func(program))
