"""Benchmark: the SIS sync of 100,000 students (~2.5 phones each) on SQLite and PostgreSQL.

Targets (issue 2):
* full first sync <= 1.3x the floor: bare ``phonenumbers`` parse + validate + type + format of
  the same numbers, single process, measured in the same run;
* no-change re-sync >= 20,000 people/s;
* peak memory <= 1.5 GiB (each scenario runs in its own process; children included).

    python bench/bench_sync.py [--students N] [--postgres URL | --no-postgres]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import machine, record

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def floor(folder: Path) -> tuple[float, int]:
    """Bare phonenumbers over every number of phones.csv: the cost nobody can avoid."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat

    with (folder / "phones.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = [
            (r.get("number") or "", (r.get("country") or "").upper() or "US")
            for r in csv.DictReader(fh)
        ]
    start = time.perf_counter()
    for raw, region in rows:
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            continue
        phonenumbers.is_valid_number(number)
        phonenumbers.number_type(number)
        phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return time.perf_counter() - start, len(rows)


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    found = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found.extend(_tree(int(child)))
    except OSError:
        pass
    return found


class PeakMemory:
    """Samples the proportional set size (PSS) of this process and its children: pages a
    forked parse worker shares with the parent are counted once, not twice as RSS would."""

    def __init__(self) -> None:
        import threading

        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            total = sum(_pss_kib(p) for p in _tree(os.getpid()))
            self.peak_kib = max(self.peak_kib, total)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024


def scenario(url: str, folder: Path, workers: int) -> dict[str, float]:
    """Run in a child process: init, first sync, re-sync; report times and peak memory."""
    from flows.sis_sync import run_sync
    from models.db import upgrade_database
    from nudge.settings import Settings

    upgrade_database(url)
    memory = PeakMemory()
    settings = Settings(_env_file=None, database_url=url, sync_workers=workers)  # type: ignore[call-arg]
    start = time.perf_counter()
    first = run_sync(f"csv:{folder}", settings=settings)
    t_first = time.perf_counter() - start
    start = time.perf_counter()
    again = run_sync(f"csv:{folder}", settings=settings)
    t_again = time.perf_counter() - start
    peak_pss = memory.stop()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "first_s": t_first,
        "resync_s": t_again,
        "people": first["people_created"],
        "unchanged": again["people_unchanged"],
        "parsed_again": again["phones_parsed"],
        "peak_mib": peak_pss,
        "parent_rss_mib": rss_kib / 1024,
    }


def run_child(
    url: str, folder: Path, workers: int, *, field_checks: bool = True
) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            url,
            "--folder",
            str(folder),
            "--workers",
            str(workers),
            *([] if field_checks else ["--no-field-checks"]),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_pg(base: str) -> tuple[str, str]:
    from sqlalchemy import create_engine, text

    name = "bench_" + uuid.uuid4().hex[:8]
    admin = create_engine(
        base.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.rsplit("/", 1)[0] + "/" + name, name


def drop_pg(base: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(
        base.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument(
        "--postgres", default=os.environ.get("NUDGE_BENCH_POSTGRES_URL", DEFAULT_PG)
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--folder")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument(
        "--no-field-checks",
        action="store_true",
        help="child only: skip the per-field checks (the pre-issue-12 baseline, same run)",
    )
    args = parser.parse_args()
    if args.child:
        if args.no_field_checks:
            import adapters.sis.csv_table as csv_table

            csv_table.problem = lambda *_args: None  # type: ignore[assignment]
        print(json.dumps(scenario(args.child, Path(args.folder), args.workers)))
        return

    from sandbox.generate import generate

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="nudge-bench-sync-") as tmp:
        folder = Path(tmp) / "extract"
        summary = generate(folder, students=args.students, staff=200, seed=42)
        print(
            f"extract: {summary.students:,} students, {summary.phone_rows:,} phone rows "
            f"({summary.phones_per_student:.2f} per student)"
        )
        t_floor, n = floor(folder)
        print(f"floor (bare phonenumbers, 1 process): {t_floor:.2f} s for {n:,} numbers")
        targets = [("SQLite", f"sqlite:///{tmp}/bench.db", None)]
        if not args.no_postgres:
            url, name = fresh_pg(args.postgres)
            targets.append(("PostgreSQL", url, name))
        try:
            # Issue 12's target: the per-field checks cost at most 10% of a first sync.
            unchecked = run_child(
                f"sqlite:///{tmp}/bench-unchecked.db", folder, 0, field_checks=False
            )
            checked = run_child(f"sqlite:///{tmp}/bench-checked.db", folder, 0)
            cost = checked["first_s"] / unchecked["first_s"]
            print(
                f"field checks: first sync {checked['first_s']:.2f} s with, "
                f"{unchecked['first_s']:.2f} s without ({cost:.2f}x)"
            )
            record(
                "sync first, SQLite, with per-field checks",
                checked["first_s"],
                "s",
                baseline=f"without the checks {unchecked['first_s']:.1f} s",
                ratio=cost,
                target="<= 1.10x without",
                ok=cost <= 1.10,
            )
            for label, url, _name in targets:
                for workers in (0, 1):
                    if workers == 1 and label != "SQLite":
                        continue
                    if label == "SQLite" and workers == 1:
                        url = f"sqlite:///{tmp}/bench-1proc.db"
                    r = run_child(url, folder, workers)
                    ratio = r["first_s"] / t_floor
                    rate = r["unchanged"] / r["resync_s"]
                    mode = "all cores" if workers == 0 else "1 process"
                    print(
                        f"{label} ({mode}): first sync {r['first_s']:.2f} s = {ratio:.2f}x floor; "
                        f"re-sync {r['resync_s']:.2f} s = {rate:,.0f} people/s "
                        f"(parsed again: {r['parsed_again']:.0f}); peak {r['peak_mib']:.0f} MiB"
                    )
                    record(
                        f"sync first, {label}, {mode}",
                        r["first_s"],
                        "s",
                        baseline=f"phonenumbers floor {t_floor:.1f} s",
                        ratio=ratio,
                        target="<= 1.3x floor",
                        ok=ratio <= 1.3,
                    )
                    if workers == 0:
                        record(
                            f"sync no-change re-sync, {label}",
                            rate,
                            "people/s",
                            target=">= 20,000 people/s",
                            ok=rate >= 20_000,
                        )
                        record(
                            f"sync peak memory, {label}",
                            r["peak_mib"],
                            "MiB",
                            target="<= 1536 MiB",
                            ok=r["peak_mib"] <= 1536,
                        )
        finally:
            for _label, _url, name in targets:
                if name:
                    drop_pg(args.postgres, name)


if __name__ == "__main__":
    main()
