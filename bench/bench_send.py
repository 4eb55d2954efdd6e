"""Benchmark: campaign send throughput against the emulator with 50 ms injected latency.

Targets (issue 4):
* >= 20x the throughput of a plain sequential ``client.messages.create`` loop measured in the
  same run (same emulator, same latency);
* never above a configured messages-per-second limit, and >= 95% of it when the limit is the
  bottleneck.

The emulator runs in its own process. The campaign path is the real one: plan (router,
opt-in notices) then claim chunks and send with bounded concurrency.

    python bench/bench_send.py [--messages N] [--limit-mps R]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import machine, record


def populate(settings: Any, folder: Path, students: int) -> None:
    """A new database holding one Texting staff member advising every student; no quiet
    hours, no quota."""
    from models.db import upgrade_database
    from tests.helpers import populate_college

    upgrade_database(settings.database_url)
    populate_college(settings, folder, students)


def sequential_rate(base_url: str, count: int) -> float:
    """Messages/s of a plain loop of the synchronous SDK's messages.create."""
    from adapters.twilio_gateway import build_sync_client
    from nudge.settings import Settings

    client = build_sync_client(Settings(_env_file=None, twilio_base_url=base_url))  # type: ignore[call-arg]
    start = time.perf_counter()
    for i in range(count):
        client.messages.create(to=f"+1212555{i:04d}", from_="+14155550100", body="baseline")
    return count / (time.perf_counter() - start)


class Timed:
    """Wraps the gateway to record when each send started (to check the MPS limit)."""

    def __init__(self, inner: Any, starts: list[float]) -> None:
        self.inner, self.starts = inner, starts

    async def send(self, **kw: Any) -> Any:
        self.starts.append(time.monotonic())
        return await self.inner.send(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def campaign(settings: Any, students: int, wrap: Callable[[Any], Any] | None = None) -> float:
    """Send one campaign to ``students`` (notice + message each); returns SMS/s."""
    from adapters.mailer import make_mailer
    from adapters.twilio_gateway import TwilioSmsGateway
    from domain.audience import AudienceFilter
    from domain.campaign import CampaignRequest
    from flows.send_campaign import run_campaign
    from models.db import make_engine
    from tasks.send import SendEnv

    engine = make_engine(settings.database_url)

    def gateway() -> Any:
        real = TwilioSmsGateway(settings)
        return wrap(real) if wrap else real

    env = SendEnv(settings, engine, make_mailer(settings), gateway)
    request = CampaignRequest(
        sender_id="T1",
        message=f"Bench {time.time()}: hello {{first_name}}",
        audience=AudienceFilter(caseload=["T1"]),
    )
    start = time.perf_counter()
    result = run_campaign(request, settings=settings, env=env)
    elapsed = time.perf_counter() - start
    engine.dispose()
    sent = result["result"]["sms"] + result["opt_in_notices"]
    return sent / elapsed


def max_in_window(starts: list[float], window: float = 1.0) -> int:
    """The most sends that started within any ``window`` seconds."""
    starts = sorted(starts)
    best, left = 0, 0
    for right, moment in enumerate(starts):
        while moment - starts[left] >= window:
            left += 1
        best = max(best, right - left + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--limit-mps", type=float, default=40.0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    from nudge.settings import Settings
    from sandbox.twilio import EmulatorConfig, run_emulator

    print(f"machine: {machine()}")
    config = EmulatorConfig(latency_ms=args.latency_ms, status_delay_ms=0)
    with (
        tempfile.TemporaryDirectory(prefix="nudge-bench-send-") as tmp,
        run_emulator(config, mode="subprocess") as emulator,
    ):
        base = Settings(
            _env_file=None,
            database_url=f"sqlite:///{tmp}/send.db",  # type: ignore[call-arg]
            twilio_base_url=emulator.base_url,
            outbox_dir=Path(tmp) / "outbox",
            sender_mps=100_000,
            account_mps=100_000,
            send_concurrency=64,
            chunk_size=500,
        )
        students = args.messages // 2  # each student: opt-in notice + message
        populate(base, Path(tmp) / "x", students)
        seq = sequential_rate(emulator.base_url, 100)
        print(f"baseline: sequential SDK loop {seq:,.1f} msg/s ({args.latency_ms:.0f} ms latency)")
        rate = campaign(base, students)
        ratio = rate / seq
        print(f"campaign: {students * 2:,} SMS at {rate:,.0f} msg/s = {ratio:.1f}x sequential")
        record(
            "send throughput, 50 ms latency",
            rate,
            "msg/s",
            baseline=f"sequential create loop {seq:.1f} msg/s",
            ratio=ratio,
            target=">= 20x sequential",
            ok=ratio >= 20,
        )

        limited = base.model_copy(
            update={"sender_mps": args.limit_mps, "database_url": f"sqlite:///{tmp}/limited.db"}
        )
        n_limited = int(args.limit_mps * 20) // 2
        populate(limited, Path(tmp) / "y", n_limited)
        starts: list[float] = []
        achieved = campaign(limited, n_limited, wrap=lambda g: Timed(g, starts))
        sends_rate = (len(starts) - 1) / (max(starts) - min(starts))
        peak = max_in_window(starts)
        share = sends_rate / args.limit_mps
        print(
            f"limited to {args.limit_mps:.0f}/s per sender: achieved {sends_rate:.1f}/s "
            f"({share:.1%} of the limit), busiest second {peak} sends, campaign "
            f"{achieved:.1f} msg/s end to end"
        )
        record(
            "send pace under a per-sender MPS limit",
            sends_rate,
            "msg/s",
            baseline=f"limit {args.limit_mps:.0f}/s",
            ratio=share,
            target=">= 95% of the limit, never above",
            ok=share >= 0.95 and peak <= args.limit_mps + 1,
        )


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
