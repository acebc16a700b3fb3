"""The policy pack's rules: each against a compliant and a violating resource, and every
resource the shipped stacks declare (their recorded Pulumi inputs) against all of them."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest

from components import gke_spec
from components.settings import image_pin_problem
from gpudask.record.recorder import PROJECT_DIR, Recording, load_config, run_program

from .conftest import STACKS

# The pack is a directory Pulumi runs on its own (`policies/__main__.py`); its modules import
# each other by plain name, so the tests put that directory on the path the same way.
sys.path.insert(0, str(PROJECT_DIR / "policies"))
import examples
import rules

Run = Callable[..., Recording]
RULES = {rule.name: rule for rule in rules.RULES}
STACK_RULES = {name: check for name, _, check in rules.STACK_RULES}


def _cases(kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(name, t, p) for name, cases in examples.RESOURCE_EXAMPLES.items() for t, p in cases[kind]]


def test_every_rule_has_examples_both_ways() -> None:
    assert set(examples.RESOURCE_EXAMPLES) == set(RULES)
    assert set(examples.STACK_EXAMPLES) == set(STACK_RULES)
    for cases in [*examples.RESOURCE_EXAMPLES.values(), *examples.STACK_EXAMPLES.values()]:
        assert cases["compliant"] and cases["violating"]


@pytest.mark.parametrize(("rule", "resource_type", "props"), _cases("compliant"))
def test_compliant_resources_pass(rule: str, resource_type: str, props: dict[str, Any]) -> None:
    assert RULES[rule].check(resource_type, props) == []


@pytest.mark.parametrize(("rule", "resource_type", "props"), _cases("violating"))
def test_violating_resources_are_reported(rule: str, resource_type: str, props: dict[str, Any]) -> None:
    violations = RULES[rule].check(resource_type, props)
    assert violations and all(isinstance(v, str) and v for v in violations)


@pytest.mark.parametrize("name", sorted(examples.STACK_EXAMPLES))
def test_stack_rules_both_ways(name: str) -> None:
    for resources in examples.STACK_EXAMPLES[name]["compliant"]:
        assert STACK_RULES[name](resources) == []
    for resources in examples.STACK_EXAMPLES[name]["violating"]:
        assert STACK_RULES[name](resources)


def _inputs(rec: Recording) -> list[tuple[str, dict[str, Any]]]:
    return [(r.type, r.inputs) for r in rec.resources.values() if r.custom and not r.read]


@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stacks_pass_every_policy(recorded: Run, stack: str) -> None:
    resources = _inputs(recorded(stack))
    violations = [f"{t}: {v}" for t, p in resources for rule in rules.RULES for v in rule.check(t, p)]
    violations += [v for check in STACK_RULES.values() for v in check(resources)]
    assert violations == []


def test_gke_managed_driver_stack_passes_the_driver_rule() -> None:
    rec = run_program("dev", overrides={"gpu-dask:driver": "gke-latest"})
    assert STACK_RULES["driver-daemonset-xor-gke-driver"](_inputs(rec)) == []


def test_policies_see_what_the_program_declares() -> None:
    """The rules read the same property names the program sends (not only hand-made examples):
    an internal LB scheduler without source ranges, recorded from the real program, is caught."""
    dask = json.loads(load_config("prod")["gpu-dask:dask"])
    rec = run_program("prod", overrides={"gpu-dask:dask": dask})
    service = next(p for t, p in _inputs(rec) if t == rules.SERVICE)
    assert rules.no_public_scheduler(rules.SERVICE, service) == []
    del service["spec"]["loadBalancerSourceRanges"]
    assert rules.no_public_scheduler(rules.SERVICE, service) == [
        "a LoadBalancer without loadBalancerSourceRanges accepts every source address"
    ]
    pool = next(p for t, p in _inputs(rec) if t == rules.NODE_POOL and p["nodeConfig"].get("guestAccelerators"))
    pool["nodeConfig"]["taints"] = []
    assert rules.gpu_pool_tainted(rules.NODE_POOL, pool)


IMAGES = [
    "rapidsai/base:25.10-cuda12.9-py3.12",
    "rapidsai/base",
    "rapidsai/base:latest",
    "registry.example.com:5000/rapids/base",
    "registry.example.com:5000/rapids/base:26.10",
    "rapidsai/base@sha256:" + "0" * 64,
    "ghcr.io/dask/dask-kubernetes-operator:2026.3.0",
]


@pytest.mark.parametrize("image", IMAGES)
def test_the_packs_image_rule_agrees_with_the_settings_check(image: str) -> None:
    """The pack runs in its own venv, so it keeps its own copy of the pinning rule."""
    pod = {"spec": {"containers": [{"name": "c", "image": image}]}}
    assert bool(rules.pinned_images("kubernetes:core/v1:Pod", pod)) == bool(image_pin_problem(image))


def test_the_packs_gpu_taint_is_the_one_the_pools_carry() -> None:
    assert dict(gke_spec.GPU_TAINT) == rules.GPU_TAINT
