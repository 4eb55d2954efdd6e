"""Deployment entrypoint ``poll-replies`` (every minute): students' replies in, staff told.

Thin orchestration: the steps live in ``tasks/replies.py``. :func:`run_poll` is the one place
their order is written; the Prefect flow runs it through the engine, and ``nudge poll`` runs
the same steps as plain functions when no Prefect server is configured.

:func:`run_reply` is what ``nudge reply`` runs: a one-student campaign of kind ``reply``
through the same router and send path as every campaign (opt-out, quota and quiet hours
apply), allowed regardless of role inside an existing conversation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from prefect import flow
from sqlalchemy.engine import Engine
from sqlmodel import Session

from adapters.twilio_errors import GatewayError
from domain.audience import AudienceFilter
from domain.campaign import CampaignRequest
from models.campaigns import staff_by_sis_id
from models.chunks import holder_is_dead
from models.db import make_engine
from models.inbound import (
    acquire_lease,
    conversation_exists,
    find_person,
    lease_holder,
    mark_read,
    release_lease,
)
from nudge.settings import Settings, get_settings
from tasks import replies
from tasks.outbox import SendEnv
from tasks.replies import LEASE, PollOptions, as_dict
from tasks.runtime import run_logger, stepper

log = logging.getLogger("nudge.poll")


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
    env: SendEnv | None = None,
    options: PollOptions | None = None,
    checkpoint: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Poll once: fetch and store replies, email staff, answer keywords, refresh statuses.

    Returns the figures (``POLL_KEYS`` and more, with ``errors`` listing failed steps and
    ``seconds`` the time per step). A Twilio outage fails the fetch but pending emails are
    still retried. Returns ``{"skipped": ...}`` while another poll holds the lease.
    """
    owned = env is None
    env = env or SendEnv.from_settings(settings, make_engine(settings.database_url))
    try:
        return _poll(env, engine=engine, options=options, checkpoint=checkpoint)
    finally:
        if owned:
            env.engine.dispose()


def _poll(
    env: SendEnv,
    *,
    engine: bool,
    options: PollOptions | None,
    checkpoint: Callable[[str], None] | None,
) -> dict[str, Any]:
    options = options or PollOptions()
    step = stepper(engine)
    if not _hold_lease(env):
        run_logger().warning("another poll is running; this one does nothing")
        return {
            "skipped": "another poll is running",
            **dict.fromkeys(POLL_KEYS, 0),
            "cursor": None,
            "errors": [],
        }
    result: dict[str, Any] = {"errors": []}
    seconds: dict[str, float] = {}
    keeper = _LeaseKeeper(env)
    try:
        try:
            fetched = step(replies.fetch_inbound)(env, options)
            seconds["fetch"] = fetched.seconds
            if checkpoint is not None:
                checkpoint("fetched")
            stored = step(replies.store_inbound)(env, fetched, checkpoint)
            seconds["store"] = stored.seconds
            result.update(
                fetched=len(fetched.inbound),
                scanned=fetched.scanned,
                since_day=fetched.since_day.isoformat(),
                cursor_before=fetched.cursor_before.isoformat() if fetched.cursor_before else None,
                cursor=fetched.cursor_after.isoformat() if fetched.cursor_after else None,
                **as_dict(stored),
            )
        except Exception as exc:  # one failing step never stops the others
            result["errors"].append(_failed("fetch", exc))
        if keeper.lost:
            # Another poll took over (this one outlived the lease): it sends the emails.
            result["errors"].append("lease lost to another poll; emails left to it")
            return result
        try:
            notified = step(replies.notify_staff)(env, options)
            seconds["notify"] = notified.seconds
            result.update(as_dict(notified))
        except Exception as exc:
            result["errors"].append(_failed("notify", exc))
        try:
            result["keyword_replies_sent"] = step(replies.send_keyword_replies)(env, options)
        except Exception as exc:
            result["errors"].append(_failed("keyword replies", exc))
        try:
            statuses = step(replies.refresh_statuses)(env, options)
            seconds["statuses"] = statuses.seconds
            result.update(as_dict(statuses))
        except Exception as exc:
            result["errors"].append(_failed("statuses", exc))
    finally:
        keeper.stop()
        with Session(env.engine) as s:
            release_lease(session=s, name=LEASE, holder=env.worker)
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


def _failed(step: str, exc: Exception) -> str:
    """An error line for the result (and the run log, with the traceback)."""
    if isinstance(exc, GatewayError):
        return f"{step}: {exc}"
    run_logger().error("poll step %s failed", step, exc_info=exc)
    return f"{step}: {type(exc).__name__}: {exc}"


def lease_ttl(env: SendEnv) -> timedelta:
    """A poll whose lease was not renewed for this long is presumed dead and the next poll
    takes over: a killed poller delays replies by at most this much (seconds, not minutes)."""
    return timedelta(seconds=env.settings.claim_stale_s)


def _hold_lease(env: SendEnv) -> bool:
    """Take or renew this poll's lease; a lease whose holder is a dead process of this host
    is taken over at once."""
    with Session(env.engine) as s:
        if acquire_lease(
            session=s, name=LEASE, holder=env.worker, now=env.now(), ttl=lease_ttl(env)
        ):
            return True
        if not holder_is_dead(lease_holder(session=s, name=LEASE)):
            return False
        return acquire_lease(
            session=s, name=LEASE, holder=env.worker, now=env.now(), ttl=timedelta(0)
        )


class _LeaseKeeper:
    """Renews the poll's lease from a thread every ``heartbeat_s`` while the poll runs, so a
    slow step never looks dead and a dead poll is noticed within ``claim_stale_s``."""

    def __init__(self, env: SendEnv) -> None:
        self.env = env
        self.lost = False
        self._stop = threading.Event()
        interval = min(env.settings.heartbeat_s, env.settings.claim_stale_s / 3)
        self._thread = threading.Thread(
            target=self._run, args=(max(interval, 0.05),), name="poll-lease", daemon=True
        )
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                if not _hold_lease(self.env):
                    self.lost = True
                    return
            except Exception:  # a missed renewal is retried next interval
                log.warning("renewing the poll lease failed; retrying", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@flow(name="poll-replies", log_prints=False)
def poll_replies() -> dict[str, Any]:
    """Fetch students' replies from Twilio, honour STOP/START/HELP, email staff their
    replies and refresh the delivery status of recent texts. Scheduled every minute."""
    result = run_poll(get_settings(), engine=True)
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
    env: SendEnv | None = None,
    created_by: str | None = None,
) -> dict[str, Any]:
    """Text one student as a staff member: ``nudge reply``.

    Inside an existing conversation (the staff member's number texted the student, or the
    student texted it) any staff member may reply; otherwise the normal permission check
    applies. The text is sent as written (braces are not template variables). Replying
    marks the conversation's replies read.
    """
    # Built here rather than left to the send path, so its engine is disposed when done.
    owned = env is None
    env = env or SendEnv.from_settings(settings, make_engine(settings.database_url))
    try:
        return _reply(
            settings,
            env.engine,
            sender_id=sender_id,
            student_id=student_id,
            message=message,
            engine=engine,
            env=env,
            created_by=created_by,
        )
    finally:
        if owned:
            env.engine.dispose()


def _reply(
    settings: Settings,
    db: Engine,
    *,
    sender_id: str,
    student_id: str,
    message: str,
    engine: bool,
    env: SendEnv,
    created_by: str | None,
) -> dict[str, Any]:
    from models.types import utcnow

    with Session(db) as s:
        staff = staff_by_sis_id(session=s, sis_id=sender_id)
        student = find_person(session=s, sis_id=student_id)
        staff_pk = staff.id if staff is not None else None
        student_pk = student.id if student is not None else None
        refusal = None
        if staff_pk is None:
            refusal = f"no staff member with SIS id {sender_id!r}"
        elif student is None or student_pk is None or student.role != "student":
            refusal = f"no student with SIS id {student_id!r}"
        elif student.status != "active":
            refusal = f"student {student_id} is inactive"
        if refusal is not None or staff_pk is None or student_pk is None:
            return {
                "campaign_id": None,
                "status": "refused",
                "refused_reason": refusal,
                "conversation": False,
                "marked_read": 0,
            }
        in_conversation = conversation_exists(
            session=s, staff_person_id=staff_pk, student_person_id=student_pk
        )
    literal = message.replace("{", "{{").replace("}", "}}")
    request = CampaignRequest(
        sender_id=sender_id, message=literal, audience=AudienceFilter(student_ids=[student_id])
    )
    from flows.send_campaign import run_campaign

    result = run_campaign(
        request,
        settings=settings,
        engine=engine,
        env=env,
        kind="reply",
        is_reply=in_conversation,
        created_by=created_by,
    )
    result["conversation"] = in_conversation
    result["marked_read"] = 0
    if result.get("campaign_id") is not None and result.get("status") != "refused":
        with Session(db) as s:
            result["marked_read"] = mark_read(
                session=s, staff_person_id=staff_pk, student_person_id=student_pk, now=utcnow()
            )
            s.commit()
    return result


__all__ = ["POLL_KEYS", "PollFailed", "poll_replies", "run_poll", "run_reply"]
