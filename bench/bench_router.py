"""Benchmark: router decisions per second (target: >= 100,000/s in pure Python).

Routes 200,000 varied recipients (every consent state, missing numbers and emails, six time
zones, first and repeat contacts, a quota that runs out, daytime and quiet-hours chunks).
Baseline, measured in the same run: a bare loop constructing the same input objects, so the
ratio says what routing costs on top of merely holding the data.

Also measured, for the campaign planning path: rendering a template, counting segments and
routing, per recipient (the "exact numbers" preview needs all three).

    python bench/bench_router.py [--recipients N]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import record
from domain.quiet_hours import parse_window
from domain.routing import (
    ConsentSource,
    ConsentState,
    RecipientFacts,
    RoutingPolicy,
    route,
)
from domain.segments import segment_info
from domain.templates import parse_template

TARGET = 100_000
CHUNK = 200  # recipients routed at one `now`, as one send chunk is
ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    None,
]
CONSENTS = [
    (ConsentState.OPTED_IN, ConsentSource.START),
    (ConsentState.OPTED_IN, ConsentSource.AUTO),
    (ConsentState.UNKNOWN, None),
    (ConsentState.UNKNOWN, None),
    (ConsentState.OPTED_OUT, ConsentSource.STOP),
    (ConsentState.OPTED_OUT, ConsentSource.CARRIER_21610),
    (ConsentState.PAUSED_FOR_REVIEW, ConsentSource.REPLY_REVIEW),
]
NO_NUMBER_REASONS = ["no_mobile_number", "invalid_number", "parent_number_only"]


def make_spec(n: int, seed: int = 7) -> list[tuple[object, ...]]:
    """The raw field values of ``n`` recipients (generated outside any timing)."""
    rng = random.Random(seed)
    specs = []
    for i in range(n):
        has_number = rng.random() < 0.85
        consent, source = rng.choice(CONSENTS)
        specs.append(
            (
                f"S{i:07d}",
                f"+1212555{i % 10_000:04d}" if has_number else None,
                f"s{i}@students.example.edu" if rng.random() < 0.9 else None,
                None if has_number else rng.choice(NO_NUMBER_REASONS),
                consent,
                source,
                rng.choice(ZONES),
                rng.random() < 0.6,
            )
        )
    return specs


def build(specs: list[tuple[object, ...]]) -> list[RecipientFacts]:
    return [
        RecipientFacts(
            person_id=pid,  # type: ignore[arg-type]
            sms_e164=e164,  # type: ignore[arg-type]
            email=email,  # type: ignore[arg-type]
            no_sms_reason=reason,  # type: ignore[arg-type]
            consent=consent,  # type: ignore[arg-type]
            consent_source=source,  # type: ignore[arg-type]
            timezone=tz,  # type: ignore[arg-type]
            texted_before=before,  # type: ignore[arg-type]
        )
        for pid, e164, email, reason, consent, source, tz, before in specs
    ]


def route_all(
    recipients: list[RecipientFacts], policy: RoutingPolicy, nows: list[datetime], chunk: int
) -> int:
    """Route everyone like a campaign: chunk by chunk, reserving quota as it goes."""
    quota_left = len(recipients) // 2  # runs out part-way: later SMS fall back to email
    sms = 0
    for start in range(0, len(recipients), chunk):
        now = nows[(start // chunk) % len(nows)]
        for r in recipients[start : start + chunk]:
            d = route(r, policy=policy, quota_left=quota_left, cost=1, now=now)
            if d.quota_cost:
                quota_left -= d.quota_cost
                sms += 1
    return sms


def best_of(repeats: int, fn: object, *args: object) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn(*args)  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.recipients

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, {platform.processor() or '?'}")
    print(f"python:  {platform.python_implementation()} {platform.python_version()}")
    print(f"recipients: {n:,}, chunks of {CHUNK}, best of {args.repeats}")

    specs = make_spec(n)
    policy = RoutingPolicy(
        auto_opt_in=True, window=parse_window("08:00-21:00"), institution_tz="America/Chicago"
    )
    # Chunks alternate between daytime and night (deferred), and each has its own `now`.
    base = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    nows = [base + timedelta(minutes=37 * i) for i in range(max(n // CHUNK, 1))]

    t_build, built = best_of(args.repeats, build, specs)
    recipients: list[RecipientFacts] = built  # type: ignore[assignment]
    t_route, sms = best_of(args.repeats, route_all, recipients, policy, nows, CHUNK)
    # Worst case for the quiet-hours cache: every decision at a different `now`.
    distinct = [base + timedelta(seconds=7 * i) for i in range(n)]
    t_cold, _ = best_of(1, route_all, recipients, policy, distinct, 1)

    rate = n / t_route
    cold = n / t_cold
    print()
    print(f"baseline (construct inputs): {t_build:7.3f} s  {n / t_build:12,.0f} objects/s")
    print(
        f"router, campaign chunks:     {t_route:7.3f} s  {rate:12,.0f} decisions/s  ({sms:,} SMS)"
    )
    print(f"router, a new `now` each:    {t_cold:7.3f} s  {cold:12,.0f} decisions/s")
    print(f"ratio to target {TARGET:,}/s: {rate / TARGET:.2f}x (cold: {cold / TARGET:.2f}x)")
    print(f"routing cost vs constructing the inputs: {t_route / t_build:.2f}x")
    record(
        "router decisions",
        rate,
        "decisions/s",
        baseline=f"constructing inputs {n / t_build:,.0f}/s",
        ratio=rate / TARGET,
        target=">= 100,000/s",
        ok=rate >= TARGET,
        note=f"a new `now` per decision: {cold:,.0f}/s",
    )

    # The planning path for a preview: render, count segments, route.
    template = parse_template(
        "Hi {preferred_name}, this is {sender_name}. Registration for {program} opens "
        "Monday; {advisor_name} can help you pick classes. Reply here with questions!"
    )
    people = [
        {
            "first_name": f"Student{i}",
            "preferred_name": None if i % 3 else f"S{i}",
            "sender_name": "Dr. Rivera",
            "program": "Nursing" if i % 2 else "Welding Technology",
            "advisor_name": None if i % 5 == 0 else "Sam Park",
        }
        for i in range(min(n, 50_000))
    ]

    def plan() -> int:
        total = 0
        now = base
        for values, r in zip(people, recipients, strict=False):
            info = segment_info(template.render(values))
            d = route(r, policy=policy, quota_left=None, cost=info.segments, now=now)
            total += d.quota_cost
        return total

    def render_only() -> int:
        return sum(len(template.render(values)) for values in people)

    t_render, _ = best_of(args.repeats, render_only)
    t_plan, _ = best_of(args.repeats, plan)
    m = len(people)
    print()
    print(f"render {m:,} bodies:                      {t_render:7.3f} s  {m / t_render:12,.0f}/s")
    print(f"render + segments + route {m:,} recipients: {t_plan:7.3f} s  {m / t_plan:12,.0f}/s")


if __name__ == "__main__":
    main()
