"""The recorder's use of private Pulumi SDK names: one module, a checked range, a loud failure."""

from __future__ import annotations

import ast

import pytest
from pulumi.runtime import rpc

from gpudask.record import pulumi_internals as sdk
from gpudask.record.recorder import PROJECT_DIR


def test_the_installed_sdk_is_one_the_recorder_was_checked_against() -> None:
    problems = sdk.sdk_problems()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("version", ["3.206.0", "4.0.0", "4.12.1"])
def test_an_sdk_outside_the_checked_range_is_named_with_the_range(version: str) -> None:
    assert sdk.sdk_problems(version)[0] == (
        f"pulumi {version} is outside the range the recorder was checked against ({sdk.CHECKED_SDK_TEXT})"
    )


def test_a_private_name_gone_from_the_sdk_stops_the_recorder_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(rpc, "deserialize_properties")
    with pytest.raises(sdk.IncompatibleSdk) as raised:
        sdk.require_compatible_sdk()
    assert "pulumi.runtime.rpc.deserialize_properties is gone" in str(raised.value)
    assert "gpudask/record/pulumi_internals.py" in str(raised.value)


def test_the_pinned_sdk_is_inside_the_checked_range() -> None:
    line = next(
        line for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines() if line.startswith("pulumi==")
    )
    assert sdk.sdk_problems(line.removeprefix("pulumi==")) == []


def test_no_other_module_reaches_into_private_sdk_names() -> None:
    """Only gpudask/record/pulumi_internals.py (and this test, which breaks it on purpose) imports
    from pulumi's runtime submodules."""
    offenders = []
    for folder in ("gpudask", "components", "tests", "policies"):
        for path in (PROJECT_DIR / folder).glob("**/*.py"):  # subpackages too (gpudask/record/, ...)
            if path.name in ("pulumi_internals.py", "test_pulumi_internals.py") or "venv" in path.parts:
                continue  # policies/venv (`make policy-check`) holds the SDK itself
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pulumi.runtime"):
                    offenders.append(f"{path.relative_to(PROJECT_DIR)}: from {node.module} import ...")
    assert offenders == []
