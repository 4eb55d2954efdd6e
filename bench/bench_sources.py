"""Benchmark: generating and reading an SIS extract (100,000 students, ~250,000 phones).

Figures:

* ``generate`` — writing the messy extract (target: a few seconds).
* ``csv: read`` — ``CsvSource.read()`` of that extract (target: ~1 s), against a baseline
  measured in the same run: decoding both files and iterating them with the bare ``csv``
  module, which no CSV source can beat. The ratio is what structure checks, quarantine and
  building ``SourcePerson``/``SourcePhone`` objects cost on top.
* ``ethos: read`` (``--ethos-persons``, default 20,000) — ``EthosSource.read()`` over loopback
  from the sandbox API, against fetching the same pages with a bare ``httpx`` client.

    python bench/bench_sources.py [--students N] [--staff M] [--repeats R] [--ethos-persons P]
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from adapters.sis.csv_source import CsvSource
from adapters.sis.ethos_source import EthosSource
from bench._report import record
from sandbox.ethos import EthosSandbox, EthosSandboxConfig, persons_from_extract, run_ethos_sandbox
from sandbox.generate import generate

KEY = "bench-key"


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Fastest of ``repeats`` runs (the least disturbed by other work on the machine)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def bare_csv(folder: Path) -> int:
    """The floor: decode and iterate both files with the csv module, building nothing."""
    rows = 0
    for name in ("people.csv", "phones.csv"):
        text = (folder / name).read_bytes().decode("utf-8-sig")
        for _row in csv.reader(io.StringIO(text, newline="")):
            rows += 1
    return rows


def bare_pages(url: str, total: int, page: int) -> int:
    """The floor for Ethos: fetch and JSON-decode every page, map nothing."""
    n = 0
    with httpx.Client(base_url=url) as client:
        jwt = client.post("/auth", headers={"Authorization": f"Bearer {KEY}"}).text
        for offset in range(0, total, page):
            response = client.get(
                "/api/persons",
                params={"offset": offset, "limit": page},
                headers={"Authorization": f"Bearer {jwt}"},
            )
            n += len(response.json())
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--staff", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ethos-persons", type=int, default=20_000)
    args = parser.parse_args()

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"python:  {platform.python_implementation()} {platform.python_version()}")
    print(f"students: {args.students:,}, staff: {args.staff:,}, best of {args.repeats}")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t_gen, summary = best_of(
            1, lambda: generate(folder, students=args.students, staff=args.staff, seed=1)
        )
        print()
        print(
            f"generate:        {t_gen:7.3f} s  ({summary.people_rows:,} people rows, "
            f"{summary.phone_rows:,} phone rows, {summary.phones_per_student:.2f}/student)"
        )
        record("sources: generate 100k students", t_gen, "s", target="a few seconds",
               ok=t_gen <= 5 if args.students == 100_000 else None)  # fmt: skip

        t_bare, rows = best_of(args.repeats, lambda: bare_csv(folder))
        t_read, extract = best_of(args.repeats, lambda: CsvSource(folder).read())
        rate = (len(extract.people) + len(extract.phones)) / t_read
        print(f"baseline (bare csv module, {rows:,} rows): {t_bare:7.3f} s")
        print(f"csv: read        {t_read:7.3f} s  {rate:12,.0f} rows/s  "
              f"({len(extract.people):,} people, {len(extract.phones):,} phones, "
              f"{len(extract.quarantined)} quarantined)")  # fmt: skip
        print(f"csv: read / bare csv = {t_read / t_bare:.2f}x")
        record("sources: csv read 100k/250k", t_read, "s", baseline=f"bare csv {t_bare:.3f} s",
               ratio=t_read / t_bare, target="~1 s")  # fmt: skip

        if args.ethos_persons:
            persons = persons_from_extract(extract)[: args.ethos_persons]
            n_phones = sum(len(p["phones"]) for p in persons)
            sandbox = EthosSandbox(persons, EthosSandboxConfig(api_key=KEY))
            with run_ethos_sandbox(sandbox) as url:
                t_pages, got = best_of(args.repeats, lambda: bare_pages(url, len(persons), 500))
                t_ethos, ethos = best_of(
                    args.repeats, lambda: EthosSource(url, api_key=KEY, page_size=500).read()
                )
            assert got == len(ethos.people) == len(persons)
            print()
            print(f"baseline (bare httpx pages, {got:,} persons): {t_pages:7.3f} s")
            print(f"ethos: read      {t_ethos:7.3f} s  {len(persons) / t_ethos:12,.0f} persons/s  "
                  f"({n_phones:,} phones)")  # fmt: skip
            print(f"ethos: read / bare pages = {t_ethos / t_pages:.2f}x")
            record(f"sources: ethos read {len(persons):,} persons", t_ethos, "s",
                   baseline=f"bare httpx {t_pages:.3f} s", ratio=t_ethos / t_pages)  # fmt: skip


if __name__ == "__main__":
    main()
