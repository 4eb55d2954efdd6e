"""Benchmark: 50,000 messages sent by 2 workers on PostgreSQL against the emulator.

25,000 students (opt-in notice + message each) planned as one campaign, then two worker
processes (``nudge work``) claim its chunks concurrently. Reports messages/s and the share
of worker time spent outside the Twilio call (planning, claims, quota, recording).

    python bench/bench_scale.py [--messages N] [--workers W]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import machine, record
from bench.bench_send import populate
from bench.bench_sync import DEFAULT_PG, drop_pg, fresh_pg

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--postgres", default=os.environ.get("NUDGE_BENCH_POSTGRES_URL", DEFAULT_PG)
    )
    args = parser.parse_args()

    from domain.audience import AudienceFilter
    from domain.campaign import CampaignRequest
    from nudge import wiring
    from nudge.settings import Settings
    from sandbox.twilio import EmulatorConfig, run_emulator
    from tasks.campaigns import plan_campaign

    print(f"machine: {machine()}")
    url, name = fresh_pg(args.postgres)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="nudge-bench-scale-") as tmp,
            run_emulator(EmulatorConfig(status_delay_ms=0), mode="subprocess") as emulator,
        ):
            settings = Settings(
                _env_file=None,
                database_url=url,
                twilio_base_url=emulator.base_url,
                outbox_dir=Path(tmp) / "outbox",
            )
            students = args.messages // 2
            populate(settings, Path(tmp) / "x", students)
            start = time.perf_counter()
            plan = plan_campaign.fn(
                CampaignRequest(
                    sender_id="T1",
                    message="Scale bench: hello {first_name}",
                    audience=AudienceFilter(caseload=["T1"]),
                ),
                settings,
                wiring.engine(settings),
            )
            t_plan = time.perf_counter() - start
            env = {
                **os.environ,
                "NUDGE_DATABASE_URL": url,
                "NUDGE_TWILIO_BASE_URL": emulator.base_url,
                "NUDGE_OUTBOX_DIR": str(Path(tmp) / "outbox"),
                "NUDGE_SENDER_MPS": "100000",
                "NUDGE_ACCOUNT_MPS": "100000",
                "NUDGE_SEND_CONCURRENCY": "32",
                "NUDGE_CHUNK_SIZE": "500",
            }
            start = time.perf_counter()
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "nudge",
                        "work",
                        "--campaign",
                        str(plan.campaign_id),
                        "--json",
                    ],
                    env=env,
                    cwd=REPO,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(args.workers)
            ]
            reports = []
            for proc in procs:
                out, err = proc.communicate(timeout=3600)
                if proc.returncode:
                    raise SystemExit(f"worker failed: {err[-2000:]}")
                reports.append(json.loads(out.strip().splitlines()[-1]))
            elapsed = time.perf_counter() - start
            created = emulator.counters()["messages_created"]
        total = sum(r["seconds_total"] for r in reports)
        twilio = sum(r["seconds_twilio"] for r in reports)
        outside = 1 - twilio / total if total else 0.0
        rate = created / elapsed
        print(f"planned {plan.summary.recipients:,} recipients in {t_plan:.1f} s")
        print(
            f"{args.workers} workers sent {created:,} SMS in {elapsed:.1f} s = {rate:,.0f} msg/s "
            f"(chunks per worker: {[r['chunks'] for r in reports]})"
        )
        print(f"share of worker time outside the Twilio call: {outside:.0%}")
        record(
            f"scale: {created:,} SMS, {args.workers} workers, PostgreSQL",
            rate,
            "msg/s",
            baseline=f"plan {t_plan:.1f} s",
            ratio=outside,
            target="report msg/s and share outside Twilio",
            note=f"ratio = share of time outside the Twilio call ({outside:.0%})",
        )
    finally:
        drop_pg(args.postgres, name)


if __name__ == "__main__":
    main()
