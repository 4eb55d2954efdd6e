"""Benchmark: the data-quality report over 100,000 students, Great Expectations included.

Target (issue 6): the whole report in <= 30 s on this machine, counting the import of Great
Expectations (seconds on its own). The database is built once with the messy generator and
the SIS sync, then reused (``--rebuild`` to redo it).

The report runs in a fresh child process, as ``nudge report`` would, and the split is
printed: snapshot query, figures, GX import, GX validation (Data Docs included), outputs.
Baselines, measured in the same child on the same data:

* snapshot query vs. the same two SELECTs fetched as raw DB-API tuples (no columns built);
* GX validation vs. the same ten checks written directly in pandas (no Data Docs).

Great Expectations' import dominates when no module is byte-compiled (this environment sets
PYTHONDONTWRITEBYTECODE=1 and installs without .pyc): ``--compiled`` shows the split a normal
install has.

    python bench/bench_report.py [--students N] [--db PATH] [--rebuild] [--repeats N]
                                 [--compiled]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from datetime import time as dt_time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import machine, record  # noqa: E402

TARGET_S = 30.0
SEED = 7


def build(db: Path, students: int) -> float:
    """Generate a messy extract and sync it into a new SQLite database; returns seconds."""
    from flows.sis_sync import run_sync
    from models.db import upgrade_database
    from nudge.settings import Settings
    from sandbox.generate import generate

    db.parent.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    url = f"sqlite:///{db}"
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nudge-bench-extract-") as folder:
        generate(Path(folder), students=students, staff=max(20, students // 500), seed=SEED)
        upgrade_database(url)
        settings = Settings(_env_file=None, database_url=url)
        run_sync(f"csv:{folder}", settings=settings)
    return time.perf_counter() - start


def raw_fetch(url: str) -> float:
    """The snapshot's two SELECTs fetched as plain DB-API tuples: the floor of any snapshot."""
    from models.db import make_engine
    from models.quality import snapshot_queries

    engine = make_engine(url)
    with engine.connect() as conn:
        queries = [
            str(q.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            for q in snapshot_queries()
        ]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        start = time.perf_counter()
        for sql in queries:
            cursor.execute(sql)
            cursor.fetchall()
        seconds = time.perf_counter() - start
        cursor.close()
    engine.dispose()
    return seconds


def pandas_checks(data: dict[str, Any]) -> float:
    """The ten expectations as direct pandas expressions: what GX's checking costs at least."""
    st, ph = data["students"], data["phones"]
    start = time.perf_counter()
    st["sms_reachable"].mean()
    st["sis_id"].duplicated(keep=False).sum()
    st["sms_e164"].dropna().duplicated(keep=False).sum()
    st["sms_is_parent_number"].sum()
    st["email"].isna().sum()
    ph["e164"].dropna().str.match(r"^\+[1-9]\d{7,14}$").sum()
    ph["valid"].mean()
    ph["type_code"].isin(["CELL", "PR"]).sum()
    (ph["kind"].eq("mobile") & ph["line_type"].eq("FIXED_LINE")).sum()
    (ph["age_years"].dropna() > 3).mean()
    return time.perf_counter() - start


def child(url: str, out: Path, repeats: int) -> dict[str, Any]:
    """In a fresh interpreter: import, raw baseline, the report (cold, then warm)."""
    start = time.perf_counter()
    from adapters import gx_validator
    from flows.data_quality import run_report
    from nudge import wiring
    from nudge.settings import Settings
    from sandbox.generate import DEFAULT_AS_OF
    from tasks import quality

    import_s = time.perf_counter() - start
    assert "great_expectations" not in sys.modules
    # The extract's dates are relative to the generator's day: report as of that morning.
    as_of = datetime.combine(DEFAULT_AS_OF, dt_time(6), UTC)
    raw_s = min(raw_fetch(url) for _ in range(2))
    settings = Settings(_env_file=None, database_url=url, report_dir=out, outbox_dir=out / "outbox")
    runs = []
    result: dict[str, Any] = {}
    for i in range(repeats):
        start = time.perf_counter()
        result = run_report(settings, out_dir=out / f"run{i}", now=as_of)
        runs.append({"wall_s": time.perf_counter() - start, **result["timings_s"]})
    inputs = quality.load_inputs.fn(wiring.engine(settings), as_of)
    measured = quality.measure_inputs.fn(inputs, as_of)
    data = gx_validator.frames(inputs.snapshot, measured.derived)
    pandas_s = min(pandas_checks(data) for _ in range(3))
    return {
        "import_s": import_s,
        "raw_fetch_s": raw_s,
        "pandas_checks_s": pandas_s,
        "runs": runs,
        "students": result["students"],
        "phones": result["phones"],
        "sms_reachable_pct": result["sms_reachable_pct"],
        "expectations_failed": result["expectations_failed"],
        "followup_files": len(result["files"]["followup"]),
        "report_bytes": sum(p.stat().st_size for p in (out / "run0").rglob("*") if p.is_file()),
    }


def bytecode_note() -> str:
    from importlib.util import find_spec

    spec = find_spec("great_expectations")  # locates the package without importing it
    site = Path(spec.origin if spec and spec.origin else ".").parent
    compiled = next(site.rglob("*.pyc"), None) is not None
    if compiled:
        return "site-packages compiled (.pyc present)"
    flag = " and PYTHONDONTWRITEBYTECODE=1" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""
    return f"no .pyc in site-packages{flag}: every import compiles from source"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--repeats", type=int, default=2, help="report runs in the child")
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="let the child use compiled bytecode (a cache under the temp dir, warmed first), "
        "as a normal install has; by default it runs as this environment is set up",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.out, args.repeats)))
        return

    db = args.db or Path(tempfile.gettempdir()) / f"nudge-bench-report-{args.students}.db"
    if args.rebuild or not db.exists():
        print(f"building {db} ({args.students:,} students: generate + sync) ...", flush=True)
        print(f"  built in {build(db, args.students):.1f} s", flush=True)
    else:
        print(f"reusing {db} (--rebuild to regenerate)")
    env = dict(os.environ)
    if args.compiled:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "nudge-bench-pycache")
        warm = "import great_expectations, prefect, pandas, flows.data_quality"
        subprocess.run([sys.executable, "-c", warm], check=True, env=env, cwd=ROOT)
    with tempfile.TemporaryDirectory(prefix="nudge-bench-report-") as out:
        done = subprocess.run(
            [sys.executable, __file__, "--child", f"sqlite:///{db}", "--out", out,
             "--repeats", str(args.repeats)],
            check=True, capture_output=True, text=True, env=env, cwd=ROOT,
        )  # fmt: skip
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    cold = figures["runs"][0]
    load = os.getloadavg()
    print()
    print(f"machine: {machine()}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    note = "compiled (--compiled: cache warmed first)" if args.compiled else bytecode_note()
    print(f"python bytecode: {note}")
    print(
        f"data: {figures['students']:,} active students, {figures['phones']:,} phones; "
        f"{figures['sms_reachable_pct']}% SMS-reachable; "
        f"{figures['expectations_failed']} expectation(s) failed; "
        f"{figures['followup_files']} follow-up lists; "
        f"report folder {figures['report_bytes'] / 1e6:.1f} MB"
    )
    print()
    print(f"{'step':<34}{'cold run':>10}{'warm run':>10}   baseline")
    warm = figures["runs"][1] if len(figures["runs"]) > 1 else {}
    rows = [
        ("snapshot query (SQLite)", "snapshot",
         f"raw fetch {figures['raw_fetch_s']:.2f} s", figures["raw_fetch_s"]),
        ("figures + follow-ups", "measure", "", None),
        ("Great Expectations import", "gx_import", "", None),
        ("GX validation + Data Docs", "gx_validation",
         f"pandas checks {figures['pandas_checks_s']:.2f} s", figures["pandas_checks_s"]),
        ("outputs (summary, CSV, SVG)", "outputs", "", None),
        ("whole report (run_report)", "wall_s", "", None),
    ]  # fmt: skip
    for label, key, base, base_s in rows:
        ratio = f"  (x{cold[key] / base_s:.1f})" if base_s else ""
        warm_s = f"{warm[key]:>9.2f}s" if key in warm else f"{'':>10}"
        print(f"{label:<34}{cold[key]:>9.2f}s{warm_s}   {base}{ratio}")
    print(f"{'(before: python + prefect import)':<34}{figures['import_s']:>9.2f}s")
    total = cold["wall_s"]
    ok = total <= TARGET_S
    print()
    print(
        f"report, GX import included: {total:.1f} s (target <= {TARGET_S:.0f} s) "
        f"{'OK' if ok else 'OVER TARGET'}; with python + prefect start-up: "
        f"{total + figures['import_s']:.1f} s"
    )
    gx_ratio = cold["gx_validation"] / figures["pandas_checks_s"]
    record(
        f"data-quality report, {figures['students']:,} students",
        round(total, 2),
        "s",
        baseline=f"snapshot vs raw fetch; GX validation vs pandas checks x{gx_ratio:.0f}",
        ratio=round(cold["snapshot"] / figures["raw_fetch_s"], 2),
        target=f"<= {TARGET_S:.0f} s",
        ok=ok,
        note=f"gx import {cold['gx_import']:.1f} s, snapshot {cold['snapshot']:.1f} s",
    )


if __name__ == "__main__":
    main()
