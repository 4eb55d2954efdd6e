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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prefect import flow
from sqlmodel import Session

from adapters.twilio.errors import GatewayError
from models.away import away_answers_due
from nudge import wiring
from nudge.settings import Settings
from tasks import keyword_replies, notify, outcomes, poll_lease, replies, reply, statuses, urgent
from tasks.env import Env
from tasks.poll_options import PollOptions
from tasks.runtime import Stopwatch, as_dict, run_logger, stepper

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
    "urgent",
    "urgent_alerts_sent",
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
        try:  # inside a Prefect run: each recent campaign's outcomes table, refreshed
            result["outcome_artifacts"] = outcomes.publish_outcomes(env)
        except Exception as exc:
            result["errors"].append(failed_step("outcomes", exc))
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
    """Send what storing replies put in the outbox: first the on-call alerts of urgent
    replies and their crisis-line answers (:func:`tasks.urgent.send_urgent`, figures
    ``urgent_alerts_sent``, ``urgent_replies_sent``), then the staff notifications, then
    nudge's own keyword answers, then the away messages of staff who are away
    (:func:`send_away_answers`, figures ``away_*``). Each step's figures go into ``result``
    (a failure into its ``errors``, and the other steps still run); the poll and the sweep
    both end with it."""
    try:
        sent = step(urgent.send_urgent)(env, options)
        seconds["urgent"] = sent.seconds
        result |= as_dict(sent)
    except Exception as exc:
        result["errors"].append(failed_step("urgent alerts", exc))
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
    result.setdefault("away_sent", 0)
    try:
        away = send_away_answers(env)
        seconds["away"] = away.seconds
        result |= away.figures()
        result["errors"].extend(away.errors)
    except Exception as exc:
        result["errors"].append(failed_step("away answers", exc))


#: How far back the away step reads students' texts: an answer owed longer than this (the
#: poll failing for a week) is no longer worth sending.
AWAY_LOOKBACK = timedelta(days=7)


@dataclass(slots=True)
class AwayReport:
    """What the away step did: answers planned (one reply campaign each), how they went
    (texted now, deferred by quiet hours, by email instead), and the ones that failed."""

    answers: int = 0
    sms_sent: int = 0
    deferred: int = 0
    emailed: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def figures(self) -> dict[str, int]:
        """The poll result's ``away_*`` keys (``away_sent``: texted now)."""
        return {
            "away_answers": self.answers,
            "away_sent": self.sms_sent,
            "away_deferred": self.deferred,
            "away_emailed": self.emailed,
        }


def send_away_answers(
    env: Env, *, settings: Settings | None = None, lookback: timedelta = AWAY_LOOKBACK
) -> AwayReport:
    """Answer the students who texted a staff member who is away (``nudge away``): each
    gets the away message once per absence, as a reply campaign from the staff member's
    number (opt-out, the monthly quota and quiet hours apply; the text is sent as written;
    the replies stay unread for the staff member).

    Crash-safe without state of its own: what is owed is read from the stored texts
    (:func:`models.away.away_answers_due`), and each answer's request key is
    :func:`models.away.away_request_key`, so a step that dies half-way answers the rest
    next time and never anyone twice. An answer planned but not sent (the step died
    between) is in the outbox: ``dispatch-due`` sends it. One failing answer does not stop
    the others (each is an error line). ``settings`` default to the env's.
    """
    from flows.send_campaign import run_campaign

    watch = Stopwatch()
    report = AwayReport()
    now = env.now()
    with Session(env.engine) as s:
        due = away_answers_due(session=s, now=now, since=now - lookback)
    if not due:
        report.seconds = watch.lap()
        return report
    conf = settings or _settings_of(env)
    for answer in due:
        try:
            sent = run_campaign(
                reply.reply_request(
                    sender_id=answer.staff_sis_id,
                    student_id=answer.student_sis_id,
                    message=answer.message,
                ),
                settings=conf,
                env=env,
                kind="reply",
                is_reply=True,
                request_key=answer.request_key,
                created_by="away",
            )
        except Exception as exc:
            report.errors.append(
                failed_step(f"away answer to {answer.student_sis_id} ({answer.request_key})", exc)
            )
            continue
        report.answers += 1
        report.errors.extend(
            f"away answer to {answer.student_sis_id}: {error}" for error in sent.get("errors", [])
        )
        report.sms_sent += int(sent.get("sent_now", {}).get("sms", 0))
        report.deferred += int(sent.get("status") == "waiting")
        report.emailed += int(sent.get("email", 0))
        if sent.get("status") == "refused":
            run_logger().warning(
                "away answer %s refused: %s", answer.request_key, sent.get("refused_reason")
            )
    report.seconds = watch.lap()
    return report


def _settings_of(env: Env) -> Settings:
    """The shell's settings an env was built with (``nudge.wiring.env`` always passes them)."""
    if not isinstance(env.settings, Settings):
        raise TypeError("the away answers need the env's settings to be nudge's Settings")
    return env.settings


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
    request_key: str | None = None,
) -> dict[str, Any]:
    """Text one student as a staff member: ``nudge reply``, and a staff member's answer by
    email (``request_key`` names the mail, so it is planned once however often it is read).

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
        request_key=request_key,
    )
    return reply.mark_replied(env.engine, to, result)


__all__ = [
    "AWAY_LOOKBACK",
    "POLL_KEYS",
    "AwayReport",
    "PollFailed",
    "failed_step",
    "poll_replies",
    "run_poll",
    "run_reply",
    "send_away_answers",
]
