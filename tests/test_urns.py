"""Every stack's URNs, held to the record in tests/data/urns/<stack>.txt.

A URN holds the stack, the project, the type chain of the resource's parents and its name. A
changed type token, a component given a new parent or a renamed child changes the URN, and a
changed URN makes `pulumi up` delete the deployed resource and create a new one (the cluster,
its pools, everything on it). Moving files or renaming classes must change none of them.

The record is the recorder's (`gpudask`'s `run_program`, the program under Pulumi's mocks):
one sorted URN a line. When an issue asks for a new (or a removed) resource, write the record
anew and let the diff show exactly that:

    .venv/bin/python -m tests.test_urns            # every stack
    .venv/bin/python -m tests.test_urns dev prod   # these
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gpudask.record.recorder import Recording, run_program, stacks
from tests.conftest import STACKS

RECORD_DIR = Path(__file__).parent / "data" / "urns"


def record_file(stack: str) -> Path:
    return RECORD_DIR / f"{stack}.txt"


def urns(rec: Recording) -> list[str]:
    return sorted(r.urn for r in rec.resources.values())


def test_every_stack_has_a_record_and_every_record_a_stack() -> None:
    assert sorted(p.stem for p in RECORD_DIR.glob("*.txt")) == sorted(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_the_urns_of_every_resource_are_the_recorded_ones(recorded: Callable[[str], Recording], stack: str) -> None:
    expected = record_file(stack).read_text().splitlines()
    actual = urns(recorded(stack))
    gone = sorted(set(expected) - set(actual))
    new = sorted(set(actual) - set(expected))
    assert not gone and not new, (
        f"stack {stack}: URNs differ from tests/data/urns/{stack}.txt; `pulumi up` would "
        f"delete {len(gone)} and create {len(new)}:\n- "
        + "\n- ".join(gone)
        + "\n+ "
        + "\n+ ".join(new)
        + "\n(only when the issue asks for these resources: `.venv/bin/python -m tests.test_urns "
        + stack
        + "`)"
    )
    assert len(actual) == len(expected), f"stack {stack}: a URN appears twice"


def write(stack: str) -> None:
    RECORD_DIR.mkdir(parents=True, exist_ok=True)
    record_file(stack).write_text("".join(f"{urn}\n" for urn in urns(run_program(stack))))


if __name__ == "__main__":
    for name in sys.argv[1:] or stacks():
        write(name)
        print(f"wrote {record_file(name)}")
