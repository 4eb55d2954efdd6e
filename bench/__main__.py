"""``make bench``: run every benchmark, then print one table of their headline figures.

Each benchmark runs in its own process (its figures stay independent) and appends its
records to a shared file; this prints them as the markdown table the README carries.

    python -m bench [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._report import machine

BENCH = Path(__file__).resolve().parent
#: name -> (script, arguments for the full run, arguments for --quick)
SUITE: dict[str, tuple[str, list[str], list[str]]] = {
    "cli": ("bench_cli.py", [], ["--repeats", "3"]),
    "router": ("bench_router.py", [], ["--recipients", "50000", "--repeats", "1"]),
    "sync": ("bench_sync.py", [], ["--students", "10000", "--no-postgres"]),
    "sources": ("bench_sources.py", [], []),
    "emulator": ("bench_twilio_emulator.py", [], []),
    "send": ("bench_send.py", [], ["--messages", "2000", "--limit-mps", "20"]),
    "pacing": ("bench_pacing.py", [], ["--students", "150"]),
    "audience": ("bench_audience.py", [], ["--students", "20000"]),
    "poll": ("bench_poll.py", [], []),
    "sweep": ("bench_sweep.py", [], ["--messages", "10000", "--late", "50"]),
    "mailbox": ("bench_mailbox.py", [], ["--mails", "200"]),
    "report": ("bench_report.py", [], []),
    "scale": ("bench_scale.py", [], ["--messages", "5000"]),
    "outcomes": ("bench_outcomes.py", [], ["--recipients", "10000", "--replies", "2000"]),
}


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| benchmark | figure | baseline (same run) | ratio | target | met |",
        "|---|---:|---|---:|---|:-:|",
    ]
    for r in rows:
        figure = r["figure"]
        shown = f"{figure:,.2f}" if isinstance(figure, float) and figure < 100 else f"{figure:,.0f}"
        ratio = r["ratio"]
        ratio_s = f"{ratio:.2f}" if isinstance(ratio, float) else ""
        met = {True: "yes", False: "**no**", None: ""}[r["ok"]]  # type: ignore[index]
        lines.append(
            f"| {r['benchmark']} | {shown} {r['unit']} | {r['baseline']} | {ratio_s} "
            f"| {r['target']} | {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="Smaller sizes (minutes, not an hour)."
    )
    parser.add_argument("--only", nargs="*", choices=sorted(SUITE), help="Run only these.")
    args = parser.parse_args()
    chosen = args.only or list(SUITE)
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as fh:
        summary = Path(fh.name)
    env = {**os.environ, "BENCH_SUMMARY_FILE": str(summary), "PYTHONPATH": str(BENCH.parent)}
    failed = []
    for name in chosen:
        script, full, quick = SUITE[name]
        print(f"\n=== {name} ({script}) ===", flush=True)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(BENCH / script), *(quick if args.quick else full)],
            env=env,
            check=False,
        )
        print(f"--- {name}: {time.perf_counter() - start:.0f} s", flush=True)
        if done.returncode:
            failed.append(name)
    rows = [json.loads(line) for line in summary.read_text().splitlines() if line.strip()]
    summary.unlink()
    print(f"\nMachine: {machine()}\n")
    print(table(rows))
    if failed:
        print(f"\nbenchmarks that failed to run: {', '.join(failed)}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
