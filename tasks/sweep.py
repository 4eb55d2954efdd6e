"""The reconciliation sweep: the replies Twilio listed too late for any poll to see them.

The poll (:func:`tasks.replies.fetch_inbound`) lists newest first and stops at the first
message sent before its cursor minus the skew (5 minutes). Twilio promises no bound on when
an inbound message becomes listable: one that shows up more than the skew after its
``DateSent``, while newer replies move the cursor, is behind every later poll's stop.

The sweep (:func:`sweep_inbound`) lists a whole window instead (the last ``hours``), newest
first, and stops only at the window's start. What is not stored yet goes through the poll's
own store step (:func:`tasks.replies.store_inbound`, by message sid, once: consent changes,
the staff member's notification in the outbox in the same transaction), without a cursor:
the sweep never moves the poll cursor. The flow then sends the notifications with
:func:`tasks.notify.notify_staff`, like a poll. It holds the poll lease meanwhile
(:func:`wait_for_lease`), so a poll and a sweep never interleave.

A message the sweep stores is *late* when it was sent before the poll's horizon (cursor minus
skew): no poll would ever have listed it. Its lag is when the sweep found it minus its
``DateSent`` (an upper bound: it became listable at some moment before the sweep ran).
:func:`publish_lag` shows the lags as a Prefect artifact (``reconcile-replies-lag``): masked
numbers, never bodies.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from domain.masking import mask_phone
from models.inbound import known_sids
from models.leases import read_cursor
from tasks import poll_lease
from tasks.env import Env
from tasks.poll_options import PollOptions
from tasks.replies import CURSOR, Fetched, StoreReport, list_inbound
from tasks.runtime import Stopwatch, in_prefect_run, run_logger

#: The Prefect artifact that shows how late the late replies were.
ARTIFACT_KEY = "reconcile-replies-lag"
#: Lag buckets of the artifact and of ``lag_buckets``: (upper bound in seconds, label).
LAG_BUCKETS: tuple[tuple[float, str], ...] = (
    (600, "< 10 min"),
    (900, "10-15 min"),
    (1800, "15-30 min"),
    (3600, "30-60 min"),
    (7200, "1-2 h"),
    (6 * 3600, "2-6 h"),
    (24 * 3600, "6-24 h"),
    (float("inf"), ">= 24 h"),
)
#: The late replies the artifact lists one by one (the most recent first).
ARTIFACT_ROWS = 20


@dataclass(frozen=True, slots=True)
class Late:
    """A message the sweep found that no poll would ever have listed."""

    sid: str
    from_: str | None
    to: str | None
    date_sent: datetime
    lag_s: int


@dataclass(slots=True)
class Swept:
    """One sweep's listing: what is missing (as a :class:`Fetched` without a cursor to move,
    for :func:`tasks.replies.store_inbound`), and which of it is late."""

    missing: Fetched
    inbound: int
    already_stored: int
    window_start: datetime
    found_at: datetime
    horizon: datetime | None
    late: list[Late] = field(default_factory=list)
    seconds: float = 0.0


@task(name="sweep-inbound", cache_policy=NO_CACHE)
def sweep_inbound(env: Env, window: timedelta, options: PollOptions) -> Swept:
    """List every inbound message sent in the last ``window`` (no early stop but the
    window's start) and pick out those not stored yet; the cursor is read, never moved."""
    clock = Stopwatch()
    found_at = env.now()
    start = found_at - window
    since_day = start.astimezone(UTC).date()
    inbound, scanned, _ = asyncio.run(list_inbound(env, since_day, start, options.page_size))
    with Session(env.engine) as s:
        cursor = read_cursor(session=s, name=CURSOR)
        stored = known_sids(session=s, sids=[m.sid for m in inbound])
    missing, seen = [], set(stored)
    for message in inbound:  # newest first, as listed; a sid listed twice counts once
        if message.sid not in seen:
            seen.add(message.sid)
            missing.append(message)
    horizon = cursor - options.skew if cursor is not None else None
    late = [
        Late(m.sid, m.from_, m.to, m.date_sent, int((found_at - m.date_sent).total_seconds()))
        for m in missing
        if horizon is not None and m.date_sent is not None and m.date_sent < horizon
    ]
    swept = Swept(
        missing=Fetched(missing, scanned, since_day, start, cursor, None),
        inbound=len(inbound),
        already_stored=len(inbound) - len(missing),
        window_start=start,
        found_at=found_at,
        horizon=horizon,
        late=late,
    )
    swept.seconds = swept.missing.seconds = clock.lap()
    run_logger().info(
        "sweep listed %d messages since %s: %d inbound, %d not stored yet, %d late",
        scanned,
        start.isoformat(timespec="seconds"),
        len(inbound),
        len(missing),
        len(late),
    )
    return swept


def figures(swept: Swept, stored: StoreReport) -> dict[str, Any]:
    """The sweep's own figures for the result: ``scanned``, ``late_found``, ``max_lag_s``...

    ``late_found`` counts the late messages this sweep stored. Only the sweep and polls store
    replies while it holds the lease; should another writer (a webhook receiver) have stored
    some of them between the listing and the store, ``new`` says how many were really ours.
    """
    lags = [late.lag_s for late in swept.late]
    late_found = min(len(lags), stored.new)
    return {
        "scanned": swept.missing.scanned,
        "inbound": swept.inbound,
        "already_stored": swept.already_stored,
        "late_found": late_found,
        "max_lag_s": max(lags) if late_found else 0,
        "median_lag_s": int(statistics.median(lags)) if late_found else 0,
        "lag_buckets": lag_buckets(lags) if late_found else {},
        "window_start": swept.window_start.isoformat(),
        "since_day": swept.missing.since_day.isoformat(),
        "horizon": swept.horizon.isoformat() if swept.horizon is not None else None,
        "cursor": swept.missing.cursor_before.isoformat()
        if swept.missing.cursor_before is not None
        else None,
    }


def lag_buckets(lags: list[int]) -> dict[str, int]:
    """How many lags fall in each of :data:`LAG_BUCKETS` (only the buckets that have some)."""
    counts: dict[str, int] = {}
    for lag in lags:
        label = next(label for bound, label in LAG_BUCKETS if lag < bound)
        counts[label] = counts.get(label, 0) + 1
    return {label: counts[label] for _, label in LAG_BUCKETS if label in counts}


def _duration(seconds: int) -> str:
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def lag_markdown(result: dict[str, Any], late: list[Late]) -> str:
    """The artifact: how late the late replies were, with masked numbers and no bodies."""
    hours = result.get("hours")
    lines = [
        "# Late replies found by the reconciliation sweep",
        "",
        f"Window: the last **{hours} h** (since {result['window_start']}). Listed "
        f"**{result['scanned']}** messages, **{result['inbound']}** inbound: "
        f"{result['already_stored']} already stored, **{result.get('new', 0)}** stored now, "
        f"of which **{result['late_found']}** late (sent before the poll's horizon "
        f"{result['horizon'] or '(no poll yet)'}: no poll would have listed them).",
        "",
    ]
    if not result["late_found"]:
        lines.append("No late reply in this window: the polls saw everything.")
        return "\n".join(lines)
    lines += [
        f"Largest lag **{_duration(result['max_lag_s'])}**, median "
        f"{_duration(result['median_lag_s'])} (lag = found by the sweep minus Twilio's "
        "DateSent: an upper bound of how late Twilio listed it).",
        "",
        "| lag | late replies |",
        "|---|---:|",
        *(f"| {label} | {count} |" for label, count in result["lag_buckets"].items()),
        "",
        f"The {min(len(late), ARTIFACT_ROWS)} most recent (of {len(late)}):",
        "",
        "| sent (DateSent, UTC) | lag | from | to | message sid |",
        "|---|---:|---|---|---|",
    ]
    for item in sorted(late, key=lambda x: x.date_sent, reverse=True)[:ARTIFACT_ROWS]:
        lines.append(
            f"| {item.date_sent.astimezone(UTC).isoformat(timespec='seconds')} "
            f"| {_duration(item.lag_s)} | {mask_phone(item.from_)} | {mask_phone(item.to)} "
            f"| {item.sid} |"
        )
    return "\n".join(lines)


def publish_lag(result: dict[str, Any], swept: Swept) -> None:
    """Create the ``reconcile-replies-lag`` markdown artifact (inside a Prefect run only)
    from a sweep's result (with :func:`figures`) and its listing."""
    if not in_prefect_run():
        return
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        key=ARTIFACT_KEY,
        markdown=lag_markdown(result, swept.late),
        description="How late Twilio listed the replies the polls missed (numbers masked)",
    )


def wait_for_lease(env: Env, wait_s: float, *, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Take the poll lease, waiting up to ``wait_s`` for a running poll to let go (a poll
    takes seconds; a sweep that gave up at once would skip whenever it met one)."""
    deadline = time.monotonic() + max(wait_s, 0.0)
    while not poll_lease.hold_lease(env):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sleep(min(1.0, left))
    return True


__all__ = [
    "ARTIFACT_KEY",
    "LAG_BUCKETS",
    "Late",
    "Swept",
    "figures",
    "lag_buckets",
    "lag_markdown",
    "publish_lag",
    "sweep_inbound",
    "wait_for_lease",
]
