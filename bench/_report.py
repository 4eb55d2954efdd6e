"""A shared way for benchmarks to report a figure, so ``python -m bench`` can tabulate them.

Each benchmark prints its own detailed output, and calls :func:`record` for its headline
figures; when ``BENCH_SUMMARY_FILE`` is set (``python -m bench`` sets it), each record is
appended there as one JSON line.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def machine() -> str:
    """The machine a figure was measured on."""
    return (
        f"{platform.machine()} {os.cpu_count()} CPUs, {platform.system()}, "
        f"py{platform.python_version()}"
    )


def record(
    benchmark: str,
    figure: float,
    unit: str,
    *,
    baseline: str = "",
    ratio: float | None = None,
    target: str = "",
    ok: bool | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Record one headline figure (and print it)."""
    row = {
        "benchmark": benchmark,
        "figure": figure,
        "unit": unit,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "ok": ok,
        "note": note,
        "machine": machine(),
    }
    path = os.environ.get("BENCH_SUMMARY_FILE")
    if path:
        with Path(path).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
    return row
