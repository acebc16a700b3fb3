"""Benchmark: `python -m gpudask plan <stack>` against a bare run of the same program under mocks.

Prints wall-time medians and their ratio (target: plan <= 2x bare). Both sides are fresh
processes, so imports count on both. Usage: python benchmarks/plan_bench.py [stack] [repeats]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    stack = sys.argv[1] if len(sys.argv) > 1 else "dev"
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    bare = [sys.executable, "-c", f"from gpudask.record.recorder import run_program; run_program({stack!r})"]
    with tempfile.TemporaryDirectory() as out:
        plan = [sys.executable, "-m", "gpudask", "plan", stack, "--out", out]
        timed(bare)  # warm the file cache once for both
        bare_times = [timed(bare) for _ in range(repeats)]
        plan_times = [timed(plan) for _ in range(repeats)]
    b, p = statistics.median(bare_times), statistics.median(plan_times)
    print(f"stack {stack}, {repeats} runs each, fresh processes")
    print(f"bare program under mocks: median {b:.2f}s (min {min(bare_times):.2f}s)")
    print(f"gpudask plan:             median {p:.2f}s (min {min(plan_times):.2f}s)")
    print(f"ratio plan/bare: {p / b:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
