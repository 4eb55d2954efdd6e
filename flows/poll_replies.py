"""Deployment entrypoint ``poll-replies`` (every minute): students' replies in, staff told.

Thin orchestration: :func:`run_poll` is the one place the order of the poll's steps is
written; the steps live in ``tasks/`` (fetch and store in ``tasks/replies.py``, staff
emails in ``tasks/notify.py``, keyword answers in ``tasks/keyword_replies.py``, delivery
statuses in ``tasks/statuses.py``, the lease in ``tasks/poll_lease.py``). The Prefect flow
runs them through the engine, and ``nudge poll`` runs the same steps as plain functions
when no Prefect server is configured.

:func:`run_reply` is what ``nudge reply`` runs: a one-student campaign of kind ``reply``
through the same router and send path as every campaign (opt-out, quota and quiet hours
apply), allowed regardless of role inside an existing conversation (the rules are in
``tasks/reply.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from prefect import flow

from adapters.twilio.errors import GatewayError
from nudge import wiring
from nudge.settings import Settings
from tasks import keyword_replies, notify, poll_lease, replies, reply, statuses
from tasks.env import Env
from tasks.poll_options import PollOptions
from tasks.runtime import as_dict, run_logger, stepper

#: Keys ``nudge poll --json`` always prints.
POLL_KEYS = (
    "fetched",
    "new",
    "duplicates",
    "opt_outs",
    "opt_ins",
    "help",
    "replies",
    "flagged",
    "notifications_sent",
    "unknown_senders",
    "statuses_updated",
    "cursor",
)


class PollFailed(RuntimeError):
    """A step of the poll failed; the other steps still ran (see ``errors`` in the result)."""


def run_poll(
    settings: Settings,
    *,
    engine: bool = False,
    env: Env | None = None,
    options: PollOptions | None = None,
    checkpoint: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Poll once: fetch and store replies, email staff, answer keywords, refresh statuses.

    Returns the figures (``POLL_KEYS`` and more, with ``errors`` listing failed steps and
    ``seconds`` the time per step). A Twilio outage fails the fetch but pending emails are
    still retried. Returns ``{"skipped": ...}`` while another poll holds the lease.
    """
    env = env or wiring.env(settings)
    return _poll(env, engine=engine, options=options, checkpoint=checkpoint)


def _poll(
    env: Env,
    *,
    engine: bool,
    options: PollOptions | None,
    checkpoint: Callable[[str], None] | None,
) -> dict[str, Any]:
    options = options or PollOptions()
    step = stepper(engine)
    if not poll_lease.hold_lease(env):
        run_logger().warning("another poll is running; this one does nothing")
        return {
            "skipped": "another poll is running",
            **dict.fromkeys(POLL_KEYS, 0),
            "cursor": None,
            "errors": [],
        }
    result: dict[str, Any] = {"errors": []}
    seconds: dict[str, float] = {}
    keeper = poll_lease.LeaseKeeper(env)
    try:
        try:
            fetched = step(replies.fetch_inbound)(env, options)
            seconds["fetch"] = fetched.seconds
            if checkpoint is not None:
                checkpoint("fetched")
            stored = step(replies.store_inbound)(env, fetched, checkpoint)
            seconds["store"] = stored.seconds
            result |= {
                "fetched": len(fetched.inbound),
                "scanned": fetched.scanned,
                "since_day": fetched.since_day.isoformat(),
                "cursor_before": _iso(fetched.cursor_before),
                "cursor": _iso(fetched.cursor_after),
                **as_dict(stored),
            }
        except Exception as exc:  # one failing step never stops the others
            result["errors"].append(failed_step("fetch", exc))
        if keeper.lost:
            # Another poll took over (this one outlived the lease): it sends the emails.
            result["errors"].append("lease lost to another poll; emails left to it")
            return result
        send_follow_ups(env, options, step, result, seconds)
        try:
            refreshed = step(statuses.refresh_statuses)(env, options)
            seconds["statuses"] = refreshed.seconds
            result |= as_dict(refreshed)
        except Exception as exc:
            result["errors"].append(failed_step("statuses", exc))
    finally:
        keeper.stop()
        poll_lease.drop_lease(env)
        for key in POLL_KEYS:
            result.setdefault(key, None if key == "cursor" else 0)
        result["seconds"] = seconds
    run_logger().info(
        "poll: %d fetched, %d new, %d replies, %d emails sent, %d statuses updated%s",
        result["fetched"],
        result["new"],
        result["replies"],
        result["notifications_sent"],
        result["statuses_updated"],
        f"; errors: {result['errors']}" if result["errors"] else "",
    )
    return result


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def send_follow_ups(
    env: Env,
    options: PollOptions,
    step: Callable[[Any], Callable[..., Any]],
    result: dict[str, Any],
    seconds: dict[str, float],
) -> None:
    """Send what storing replies put in the outbox: the staff notifications, then nudge's
    own keyword answers. Each step's figures go into ``result`` (a failure into its
    ``errors``, and the other step still runs); the poll and the sweep both end with it."""
    try:
        notified = step(notify.notify_staff)(env, options)
        seconds["notify"] = notified.seconds
        result |= as_dict(notified)
    except Exception as exc:
        result["errors"].append(failed_step("notify", exc))
    try:
        result["keyword_replies_sent"] = step(keyword_replies.send_keyword_replies)(env, options)
    except Exception as exc:
        result["errors"].append(failed_step("keyword replies", exc))


def failed_step(step: str, exc: Exception) -> str:
    """An error line for the result (and the run log, with the traceback, unless it is a
    classified provider failure); the reconciliation sweep reports its steps the same way."""
    if isinstance(exc, GatewayError):
        return f"{step}: {exc}"
    run_logger().error("poll step %s failed", step, exc_info=exc)
    return f"{step}: {type(exc).__name__}: {exc}"


@flow(name="poll-replies", log_prints=False)
def poll_replies() -> dict[str, Any]:
    """Fetch students' replies from Twilio, honour STOP/START/HELP, email staff their
    replies and refresh the delivery status of recent texts. Scheduled every minute."""
    result = run_poll(wiring.settings(), engine=True)
    if result["errors"]:
        raise PollFailed("; ".join(result["errors"]))
    return result


def run_reply(
    settings: Settings,
    *,
    sender_id: str,
    student_id: str,
    message: str,
    engine: bool = False,
    env: Env | None = None,
    created_by: str | None = None,
) -> dict[str, Any]:
    """Text one student as a staff member: ``nudge reply``.

    Inside an existing conversation (the staff member's number texted the student, or the
    student texted it) any staff member may reply; otherwise the normal permission check
    applies. The text is sent as written (braces are not template variables). Replying
    marks the conversation's replies read.
    """
    from flows.send_campaign import run_campaign

    env = env or wiring.env(settings)
    to = reply.check_reply(env.engine, sender_id=sender_id, student_id=student_id)
    if isinstance(to, reply.Refused):
        return to.result()
    result = run_campaign(
        reply.reply_request(sender_id=sender_id, student_id=student_id, message=message),
        settings=settings,
        engine=engine,
        env=env,
        kind="reply",
        is_reply=to.exists,
        created_by=created_by,
    )
    return reply.mark_replied(env.engine, to, result)


__all__ = ["POLL_KEYS", "PollFailed", "failed_step", "poll_replies", "run_poll", "run_reply"]
