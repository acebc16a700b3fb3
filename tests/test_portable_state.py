"""An existingCluster stack's state holds nothing of the machine that ran `pulumi`.

The program runs (under the recorder) from two checkouts at different paths, each with its own
HOME and an ambient KUBECONFIG at its own path, as two people or a person and CI would: the
Kubernetes provider's inputs (what Pulumi stores in state and hands DiffConfig next time) must
be the same, and name neither path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpudask.record.recorder import PROJECT_DIR
from tests.conftest import EXISTING_STACKS

# What `python` needs to run the program: the project file, the stacks, the program and its packages.
CHECKOUT = ["Pulumi.yaml", "__main__.py", "stacks", "components", "gpudask"]
PROVIDER_INPUTS = """
import json, sys
from gpudask.record.recorder import run_program
rec = run_program(sys.argv[1])
(provider,) = rec.of_type("pulumi:providers:kubernetes")
print(json.dumps(provider.inputs, sort_keys=True))
"""


def _checkout(root: Path) -> Path:
    root.mkdir(parents=True)
    for name in CHECKOUT:
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    return root


def _provider_inputs(checkout: Path, home: Path, stack: str) -> dict[str, object]:
    kubeconfig = home / ".kube" / "team-config"
    kubeconfig.parent.mkdir(parents=True)
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KUBECONFIG")},
        "HOME": str(home),
        "KUBECONFIG": str(kubeconfig),
        "PYTHONPATH": str(checkout),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROVIDER_INPUTS, stack],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.process
@pytest.mark.parametrize("stack", EXISTING_STACKS)
def test_two_checkouts_at_different_paths_give_the_provider_the_same_inputs(tmp_path: Path, stack: str) -> None:
    a = _provider_inputs(_checkout(tmp_path / "alice" / "src" / "gpu-dask"), tmp_path / "alice-home", stack)
    b = _provider_inputs(_checkout(tmp_path / "ci" / "work" / "repo"), tmp_path / "ci-home", stack)
    assert a == b
    text = json.dumps(a)
    assert str(tmp_path) not in text and "/home/" not in text and "~" not in text, a
