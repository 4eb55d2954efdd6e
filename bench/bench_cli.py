"""Benchmark: ``nudge --help`` start-up (target <= 0.5 s), against a bare interpreter.

python bench/bench_cli.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import machine, record

REPO = Path(__file__).resolve().parents[1]


def timed(args: list[str], repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(args, cwd=REPO, check=True, capture_output=True)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    bare = timed([sys.executable, "-c", "pass"], args.repeats)
    help_s = timed([sys.executable, "-m", "nudge", "--help"], args.repeats)
    print(
        f"bare interpreter: {bare:.3f} s; nudge --help: {help_s:.3f} s (median of {args.repeats})"
    )
    record(
        "nudge --help start-up",
        help_s,
        "s",
        baseline=f"bare python {bare:.2f} s",
        ratio=help_s / bare,
        target="<= 0.5 s",
        ok=help_s <= 0.5,
    )


if __name__ == "__main__":
    main()
