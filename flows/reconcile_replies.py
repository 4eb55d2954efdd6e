"""Deployment entrypoint ``reconcile-replies``: the replies no poll could see, stored once.

Every 30 minutes over the last 2 hours and daily over the last 48 (``prefect.yaml``). Thin
orchestration: :func:`run_sweep` is the one place the order of the sweep's steps is
written; the steps are the poll's own (``tasks/replies.py`` stores, ``tasks/notify.py`` emails
staff, ``tasks/keyword_replies.py`` answers keywords) plus the sweep's listing and figures
(``tasks/sweep.py``). ``nudge poll --sweep`` runs the same steps as plain functions when no
Prefect server is configured.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from flows.poll_replies import PollFailed, failed_step, send_follow_ups
from nudge import wiring
from nudge.settings import Settings
from tasks import poll_lease, replies, sweep
from tasks.env import Env
from tasks.poll_options import PollOptions
from tasks.runtime import as_dict, run_logger, stepper

#: Keys ``nudge poll --sweep --json`` always prints.
SWEEP_KEYS = (
    "scanned",
    "inbound",
    "already_stored",
    "new",
    "late_found",
    "max_lag_s",
    "median_lag_s",
    "notifications_sent",
    "keyword_replies_sent",
)
#: The longest window a sweep may cover: a month (Twilio keeps messages far longer, but a
#: window that long is a one-off repair, to be run in pieces).
MAX_HOURS = 31 * 24
#: How long a sweep waits for a running poll to let go of the lease before it skips.
LEASE_WAIT_S = 60.0


class SweepFailed(PollFailed):
    """A step of the sweep failed; the others still ran (see ``errors`` in the result)."""


def run_sweep(
    settings: Settings,
    *,
    hours: float = 2.0,
    engine: bool = False,
    env: Env | None = None,
    options: PollOptions | None = None,
    lease_wait_s: float = LEASE_WAIT_S,
) -> dict[str, Any]:
    """Sweep the last ``hours`` once: store, act on and notify the replies polls missed.

    Returns the figures (``SWEEP_KEYS`` and more: ``lag_buckets``, the store step's counts,
    ``errors`` listing failed steps, ``seconds`` per step). Returns ``{"skipped": ...}`` when
    a poll (or another sweep) still holds the poll lease after ``lease_wait_s``.
    """
    if not 0 < hours <= MAX_HOURS:
        raise ValueError(f"hours must be more than 0 and at most {MAX_HOURS}, not {hours}")
    env = env or wiring.env(settings)
    options = options or PollOptions()
    step = stepper(engine)
    base: dict[str, Any] = {"hours": hours, "errors": []}
    if not sweep.wait_for_lease(env, lease_wait_s):
        run_logger().warning(
            "a poll held the lease for %.0f s; this sweep does nothing", lease_wait_s
        )
        return {"skipped": "a poll is running", **dict.fromkeys(SWEEP_KEYS, 0), **base}
    result = dict(base)
    seconds: dict[str, float] = {}
    swept: sweep.Swept | None = None
    keeper = poll_lease.LeaseKeeper(env)
    try:
        try:
            swept = step(sweep.sweep_inbound)(env, timedelta(hours=hours), options)
            seconds["list"] = swept.seconds
            stored = step(replies.store_inbound)(env, swept.missing, actor="reconcile-replies")
            seconds["store"] = stored.seconds
            result |= as_dict(stored) | sweep.figures(swept, stored)
        except Exception as exc:  # one failing step never stops the others
            result["errors"].append(failed_step("sweep", exc))
        if keeper.lost:
            result["errors"].append("lease lost to a poll; emails left to it")
        else:
            send_follow_ups(env, options, step, result, seconds)
    finally:
        keeper.stop()
        poll_lease.drop_lease(env)
        for key in SWEEP_KEYS:
            result.setdefault(key, 0)
        result["seconds"] = seconds
    if engine and swept is not None and "window_start" in result:
        sweep.publish_lag(result, swept)
    run_logger().info(
        "sweep of %s h: %d listed, %d new, %d late (max lag %d s), %d emails sent%s",
        hours,
        result["scanned"],
        result["new"],
        result["late_found"],
        result["max_lag_s"],
        result["notifications_sent"],
        f"; errors: {result['errors']}" if result["errors"] else "",
    )
    return result


@flow(name="reconcile-replies", log_prints=False)
def reconcile_replies(hours: Annotated[float, Field(gt=0, le=MAX_HOURS)] = 2.0) -> dict[str, Any]:
    """Store, act on and notify the students' replies that Twilio listed too late for the
    every-minute poll (each once, by message sid), and show how late they were (artifact
    ``reconcile-replies-lag``). Every 30 minutes over 2 hours, daily over 48.

    Args:
        hours: List every message sent in this many hours before now (at most a month).
    """
    result = run_sweep(wiring.settings(), hours=hours, engine=True)
    if result["errors"]:
        raise SweepFailed("; ".join(result["errors"]))
    return result


__all__ = ["MAX_HOURS", "SWEEP_KEYS", "SweepFailed", "reconcile_replies", "run_sweep"]
