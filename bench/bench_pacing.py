"""Benchmark: one sender's MPS limit held across worker processes on PostgreSQL.

Targets (issue): "three workers on PostgreSQL pacing one sender at 10 msg/s: busiest second
<= 10", and per-sender limits "never above the limit, at least 90% of it when a campaign is
limit-bound".

One campaign for one sender is planned on a fresh PostgreSQL database: ``--students``
students who were never texted, so each gets an opt-in notice and then the text (300
students -> 600 SMS, every send through the same sender number). Then ``--workers`` processes
of ``python -m nudge work --campaign ID --json`` start at once with ``NUDGE_SENDER_MPS=10``
(the account limit is out of the way); the Twilio emulator runs in its own process with a
small latency. Everything is measured at the emulator, from when it accepted each message
(its record's sub-second ``created_at``): the busiest second as calendar-second buckets and
as a sliding 1-s window, the rate over the limit-bound middle (the first and last 10% of the
messages left out), and which worker sent which chunk (from the claim token each message
was marked with). The same campaign with one worker is measured first, for comparison.

    python bench/bench_pacing.py [--students N] [--workers W] [--limit-mps R]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import machine, record
from bench.bench_send import emulator_times, pace_figures, populate, sent_sms
from bench.bench_sync import DEFAULT_PG, drop_pg, fresh_pg

REPO = Path(__file__).resolve().parents[1]


def pid_of(token: str | None) -> int | None:
    """The worker process a claim token belongs to (``host:pid:suffix#...``)."""
    if not token:
        return None
    try:
        return int(token.split("#", 1)[0].split(":")[1])
    except (IndexError, ValueError):
        return None


def run_workers(emulator: Any, args: argparse.Namespace, workers: int, tmp: Path) -> dict[str, Any]:
    """Plan the campaign on a fresh database, run ``workers`` processes, measure the pace."""
    from domain.audience import AudienceFilter
    from domain.campaign import CampaignRequest
    from nudge import wiring
    from nudge.settings import Settings
    from tasks.campaigns import plan_campaign

    url, name = fresh_pg(args.postgres)
    try:
        folder = tmp / f"w{workers}"
        settings = Settings(
            _env_file=None,
            database_url=url,
            twilio_base_url=emulator.base_url,
            outbox_dir=folder / "outbox",
            chunk_size=args.chunk_size,
            sender_mps=args.limit_mps,
            account_mps=args.account_mps,
        )
        populate(settings, folder, args.students)
        plan = plan_campaign.fn(
            CampaignRequest(
                sender_id="T1",
                message="Pacing bench: hello {first_name}",
                audience=AudienceFilter(caseload=["T1"]),
            ),
            settings,
            wiring.engine(settings),
        )
        assert plan.campaign_id is not None
        emulator.reset()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "NUDGE_DATABASE_URL": url,
            "NUDGE_TWILIO_BASE_URL": emulator.base_url,
            "NUDGE_OUTBOX_DIR": str(folder / "outbox"),
            "NUDGE_SENDER_MPS": str(args.limit_mps),
            "NUDGE_ACCOUNT_MPS": str(args.account_mps),
            "NUDGE_CHUNK_SIZE": str(args.chunk_size),
        }
        command = [
            sys.executable,
            "-m",
            "nudge",
            "work",
            "--campaign",
            str(plan.campaign_id),
            "--json",
        ]
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                command,
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(workers)
        ]
        reports: dict[int, dict[str, Any]] = {}
        for proc in procs:
            out, err = proc.communicate(timeout=3600)
            if proc.returncode:
                raise SystemExit(f"worker {proc.pid} failed: {err[-2000:]}")
            reports[proc.pid] = json.loads(out.strip().splitlines()[-1])
        elapsed = time.perf_counter() - start
        sent = sent_sms(url, plan.campaign_id)
        times = emulator_times(emulator, [sid for sid, _token, _chunk in sent])
        counters = emulator.counters()
    finally:
        drop_pg(args.postgres, name)
    by_pid: dict[int | None, int] = Counter(pid_of(token) for _sid, token, _chunk in sent)
    chunks_by_pid: dict[int | None, set[int]] = defaultdict(set)
    for _sid, token, chunk in sent:
        if chunk is not None:
            chunks_by_pid[pid_of(token)].add(chunk)
    return {
        "workers": workers,
        "campaign_id": plan.campaign_id,
        "planned_chunks": plan.chunks,
        "sms": len(sent),
        "created": counters["messages_created"],
        "elapsed": elapsed,
        "pace": pace_figures(times, args.limit_mps),
        "times": times,
        "per_worker": [
            {
                "pid": pid,
                "chunk_passes": reports[pid]["chunks"],
                "chunks_sent": len(chunks_by_pid.get(pid, set())),
                "sms": by_pid.get(pid, 0),
                "errors": reports[pid]["errors"],
            }
            for pid in reports
        ],
    }


def show(result: dict[str, Any], limit: float) -> None:
    """Print one run's figures."""
    pace = result["pace"]
    share = pace["rate_middle"] / limit
    print(
        f"{result['workers']} worker(s): limit {limit:.0f}/s, achieved "
        f"{pace['rate_middle']:.2f}/s ({share:.1%}), busiest second {pace['busiest_sliding']} "
        f"(sliding 1-s window; calendar seconds {pace['busiest_calendar']})"
    )
    print(
        f"  {result['sms']} SMS sent ({result['created']} created at the emulator) in "
        f"{result['elapsed']:.1f} s of workers; whole-run rate {pace['rate_all']:.2f}/s; "
        f"{result['planned_chunks']} chunks planned; consecutive SMS closer than half the "
        f"interval: {pace['close_pairs']}"
    )
    for w in result["per_worker"]:
        print(
            f"  worker {w['pid']}: {w['chunks_sent']} chunks sent ({w['chunk_passes']} "
            f"passes), {w['sms']} SMS ({w['sms'] / max(result['sms'], 1):.0%})"
            + (f", errors: {w['errors']}" if w["errors"] else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=300, help="2 SMS each (notice + text)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--limit-mps", type=float, default=10.0)
    parser.add_argument("--account-mps", type=float, default=100_000.0)
    parser.add_argument("--chunk-size", type=int, default=20, help="recipients per chunk")
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--no-single", action="store_true", help="Skip the 1-worker run.")
    parser.add_argument(
        "--postgres", default=os.environ.get("NUDGE_BENCH_POSTGRES_URL", DEFAULT_PG)
    )
    args = parser.parse_args()

    from sandbox.twilio import EmulatorConfig, run_emulator

    print(f"machine: {machine()}")
    limit = args.limit_mps
    runs = [1, args.workers] if not args.no_single and args.workers != 1 else [args.workers]
    config = EmulatorConfig(latency_ms=args.latency_ms, status_delay_ms=0)
    with (
        tempfile.TemporaryDirectory(prefix="nudge-bench-pacing-") as tmp,
        run_emulator(config, mode="subprocess") as emulator,
    ):
        for workers in runs:
            result = run_workers(emulator, args, workers, Path(tmp))
            show(result, limit)
            pace = result["pace"]
            share = pace["rate_middle"] / limit
            busy = [w for w in result["per_worker"] if w["sms"]]
            complete = result["sms"] == 2 * args.students
            record(
                f"pacing: {workers} worker(s), PostgreSQL, one sender",
                pace["rate_middle"],
                "msg/s",
                baseline=f"limit {limit:.0f}/s; busiest second {pace['busiest_sliding']} "
                f"(calendar {pace['busiest_calendar']}); "
                f"SMS per worker {[w['sms'] for w in result['per_worker']]}",
                ratio=share,
                target=f"busiest second <= {limit:.0f}, >= 90%",
                ok=pace["busiest_sliding"] <= limit
                and share >= 0.90
                and len(busy) == workers
                and complete,
            )


if __name__ == "__main__":
    main()
