"""Feed every rule's compliant and violating examples through the real pulumi-policy
classes and this pack's callbacks (run in the pack's own environment: `make policy-check`)."""

from __future__ import annotations

import sys
from typing import Any

import examples
import pack
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _urn(resource_type: str) -> str:
    return f"urn:pulumi:check::gpu-dask::{resource_type}::example"


def main() -> int:
    policies = pack.policies()
    failures: list[str] = []
    checked = 0
    for name, cases in examples.RESOURCE_EXAMPLES.items():
        for expected, (resource_type, props) in [(False, c) for c in cases["compliant"]] + [
            (True, c) for c in cases["violating"]
        ]:
            reported: list[str] = []
            args = ResourceValidationArgs(resource_type, props, _urn(resource_type), "example", _options(), None)
            pack.RESOURCE_VALIDATORS[name](args, lambda message, _urn=None, sink=reported: sink.append(message))
            checked += 1
            if bool(reported) != expected:
                failures.append(f"{name}: {resource_type} {props}: reported {reported}")
    for name, stacks in examples.STACK_EXAMPLES.items():
        for expected, resources in [(False, s) for s in stacks["compliant"]] + [(True, s) for s in stacks["violating"]]:
            reported = []
            policy_resources: list[Any] = [
                PolicyResource(t, p, _urn(t), "example", _options(), None, None, [], {}) for t, p in resources
            ]
            pack.STACK_VALIDATORS[name](
                StackValidationArgs(policy_resources, None),
                lambda message, _urn=None, sink=reported: sink.append(message),
            )
            checked += 1
            if bool(reported) != expected:
                failures.append(f"{name}: {resources}: reported {reported}")
    print(f"{len(policies)} mandatory policies, {checked} examples through pulumi-policy")
    for failure in failures:
        print("FAIL", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
