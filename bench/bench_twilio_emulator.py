"""Benchmark: message creates per second the Twilio emulator sustains on loopback.

The client is the real async send path: ``TwilioSmsGateway.send()`` (the official SDK over
aiohttp) with bounded concurrency. The emulator runs in its own process
(``EmulatorServer(mode="subprocess")``) so it does not share the client's GIL.

Figures, all from the same run:

* creates/s through the SDK (target >= 1,000/s: the emulator must never be the bottleneck of
  the campaign benchmarks);
* baseline: the same number of bare aiohttp POSTs, no SDK on top (how much is the client);
* the emulator's own CPU time per create (read from /proc), and the capacity it implies
  (creates/s one core can serve): unlike wall-clock rates, it does not depend on what else
  the machine is running;
* exactly-once: the emulator's counters must show one message per recipient.

    python bench/bench_twilio_emulator.py [--messages 5000] [--concurrency 50]
        [--mode subprocess|thread] [--state]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from adapters.twilio.errors import SendOutcome
from bench._report import record
from nudge.settings import Settings
from nudge.wiring import sms_gateway
from sandbox.twilio import EmulatorConfig, EmulatorServer

ACCOUNT = "AC" + "b" * 32
SENDER = "+14155550100"
TARGET_PER_S = 1000.0


def recipients(count: int, offset: int) -> list[str]:
    """Distinct, valid-looking US numbers."""
    return [f"+1555{offset + i:07d}" for i in range(count)]


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of a process (Linux), or None when unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def sdk_run(base_url: str, numbers: list[str], concurrency: int) -> float:
    """Send one SMS to each number through the gateway; return the elapsed seconds."""
    settings = Settings(twilio_base_url=base_url, twilio_account_sid=ACCOUNT)
    gate = asyncio.Semaphore(concurrency)
    async with sms_gateway(settings, max_connections=concurrency) as gateway:

        async def one(to: str) -> None:
            async with gate:
                result = await gateway.send(to=to, from_=SENDER, body="Bench message")
            if result.outcome is not SendOutcome.SENT:
                raise RuntimeError(f"unexpected outcome {result.outcome}")

        await one(numbers[0])  # warm-up: connection pool and lazy imports
        started = time.perf_counter()
        await asyncio.gather(*(one(to) for to in numbers[1:]))
        return time.perf_counter() - started


async def raw_run(base_url: str, numbers: list[str], concurrency: int) -> float:
    """The baseline: bare aiohttp form POSTs, no SDK; return the elapsed seconds."""
    url = f"{base_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    auth = base64.b64encode(f"{ACCOUNT}:token".encode()).decode()
    headers = {"Authorization": f"Basic {auth}"}
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(to: str) -> None:
            data = {"To": to, "From": SENDER, "Body": "Bench message"}
            async with gate, session.post(url, data=data, headers=headers) as response:
                await response.read()
                if response.status != 201:
                    raise RuntimeError(f"unexpected status {response.status}")

        await one(numbers[0])
        started = time.perf_counter()
        await asyncio.gather(*(one(to) for to in numbers[1:]))
        return time.perf_counter() - started


def measure(
    emulator: EmulatorServer,
    run: Callable[[str, list[str], int], Coroutine[Any, Any, float]],
    numbers: list[str],
    concurrency: int,
) -> tuple[float, float | None]:
    """(creates/s, emulator CPU µs per create) of one run."""
    # In thread mode the process also runs the client: its CPU time says nothing alone.
    pid = emulator.pid if emulator.mode == "subprocess" else None
    cpu_before = process_cpu_s(pid)
    elapsed = asyncio.run(run(emulator.base_url, numbers, concurrency))
    cpu_after = process_cpu_s(pid)
    timed = len(numbers) - 1
    cpu_us = None
    if cpu_before is not None and cpu_after is not None:
        cpu_us = (cpu_after - cpu_before) / timed * 1e6
    return timed / elapsed, cpu_us


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--mode", choices=["subprocess", "thread"], default="subprocess")
    parser.add_argument("--state", action="store_true", help="persist to a SQLite file")
    args = parser.parse_args()
    n = args.messages

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {platform.platform()} | {platform.machine()} | {os.cpu_count()} CPUs | "
        f"Python {platform.python_version()} | load average {load:.2f} at start"
    )
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "twilio.sqlite" if args.state else None
        config = EmulatorConfig(status_delay_ms=0)
        with EmulatorServer(config, state_path=state, mode=args.mode) as emulator:
            raw_rate, raw_cpu = measure(emulator, raw_run, recipients(n, 0), args.concurrency)
            sdk_rate, sdk_cpu = measure(emulator, sdk_run, recipients(n, n), args.concurrency)
            counters = emulator.counters()

    print(
        f"emulator: {args.mode} mode, state={'sqlite' if state else 'memory'}, "
        f"{n} creates per run, concurrency {args.concurrency}"
    )
    print(f"baseline, bare aiohttp POST:  {raw_rate:7.0f} creates/s")
    print(f"async SDK via the gateway:    {sdk_rate:7.0f} creates/s ({sdk_rate / raw_rate:.2f}x)")
    if sdk_cpu is not None and raw_cpu is not None:
        capacity = 1e6 / sdk_cpu
        print(
            f"emulator CPU per create:      {sdk_cpu:7.0f} µs (SDK run), {raw_cpu:.0f} µs "
            f"(baseline run) -> one core serves ~{capacity:,.0f} creates/s"
        )
        record(
            "twilio emulator capacity (CPU per create)",
            round(capacity),
            "creates/s/core",
            target=">= 1000/s",
            ok=capacity >= TARGET_PER_S,
            note=f"{sdk_cpu:.0f} µs CPU per create",
        )
    verdict = "OK" if sdk_rate >= TARGET_PER_S else "BELOW TARGET"
    print(f"target {TARGET_PER_S:.0f}/s via the SDK: {verdict} ({sdk_rate / TARGET_PER_S:.2f}x)")
    exactly_once = counters["messages_created"] == 2 * n and counters["max_per_to"] == 1
    print(
        f"exactly once: messages_created={counters['messages_created']} (expected {2 * n}), "
        f"max_per_to={counters['max_per_to']} -> {'OK' if exactly_once else 'FAILED'}"
    )
    record(
        "twilio emulator creates/s (async SDK, loopback)",
        round(sdk_rate),
        "creates/s",
        baseline=f"bare aiohttp {raw_rate:.0f}/s",
        ratio=round(sdk_rate / raw_rate, 2),
        target=">= 1000/s",
        ok=sdk_rate >= TARGET_PER_S and exactly_once,
        note=f"{args.mode} mode, concurrency {args.concurrency}, load {load:.1f}",
    )


if __name__ == "__main__":
    main()
