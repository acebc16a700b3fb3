"""The rules in `rules.py` as a Pulumi CrossGuard policy pack, every rule mandatory."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import rules
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

# The validate callbacks by policy name, for selfcheck.py (the SDK keeps its copy private).
RESOURCE_VALIDATORS: dict[str, Callable[[ResourceValidationArgs, ReportViolation], None]] = {}
STACK_VALIDATORS: dict[str, Callable[[StackValidationArgs, ReportViolation], None]] = {}


def _resource_policy(rule: rules.Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule.check(args.resource_type, args.props):
            report_violation(message, None)

    RESOURCE_VALIDATORS[rule.name] = validate
    return ResourceValidationPolicy(rule.name, rule.description, validate, EnforcementLevel.MANDATORY)


def _stack_policy(
    name: str, description: str, check: Callable[[Sequence[tuple[str, Mapping[str, Any]]]], list[str]]
) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for message in check([(r.resource_type, r.props) for r in args.resources]):
            report_violation(message, None)

    STACK_VALIDATORS[name] = validate
    return StackValidationPolicy(name, description, validate, EnforcementLevel.MANDATORY)


def policies() -> list[Policy]:
    resource: list[Policy] = [_resource_policy(rule) for rule in rules.RULES]
    return resource + [_stack_policy(*rule) for rule in rules.STACK_RULES]
