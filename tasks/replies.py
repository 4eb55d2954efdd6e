"""The replies poller's first two steps: fetch inbound texts, store them once, act on them.

One poll, in the order ``flows/poll_replies.py`` writes once:

1. **fetch** (:func:`fetch_inbound`): list messages from Twilio since the durable cursor.
   Twilio filters ``DateSent`` by whole GMT days, so the listing starts at the cursor's day
   (the cursor minus :attr:`~tasks.poll_options.PollOptions.skew`) and, newest first, stops
   at the first message sent before ``cursor - skew``: the cost grows with new messages, not
   with history, and is the same for 1 or 500 staff numbers (one account-wide listing, no
   per-number calls). A reply Twilio lists later than the skew is behind that stop: the
   reconciliation sweep (:mod:`tasks.sweep`) lists whole windows with :func:`list_inbound`
   and stores what is missing through :func:`store_inbound`, without moving the cursor.
2. **store** (:func:`store_inbound`), one transaction: insert each inbound message once
   (unique sid), matched to the student by From, to the staff member by To, threaded to the
   SMS it answers; apply carrier keywords (STOP/START in the configured opt-out scope, HELP
   recorded) and revocation phrases (flag + review pause); mark crisis and safety phrases
   urgent (:func:`domain.urgent.detect_urgent`, keywords never); put what the reply asks
   for in the outbox (an urgent reply's on-call alerts and crisis-line answer,
   :mod:`tasks.urgent`; the staff member's notification email, :mod:`tasks.notify`; nudge's
   own keyword answer, :mod:`tasks.keyword_replies`, when ``SmsConfig.keyword_replies`` is
   on); move the cursor. A crash before the commit leaves nothing behind and the next poll
   fetches the same messages again; after it, the outbox rows exist exactly once. After
   the commit, the ``nudge.reply.urgent`` event is emitted once per urgent reply.
3. **urgent** (:func:`tasks.urgent.send_urgent`): send the on-call alerts and crisis-line
   answers first.
4. **notify** (:func:`tasks.notify.notify_staff`): send the waiting notification emails
   through the outbox, one per reply, each marked, sent and recorded on its own (exactly
   once).
5. **keyword replies** (:func:`tasks.keyword_replies.send_keyword_replies`): send nudge's own
   keyword answers waiting in the outbox (Twilio answers keywords itself unless that is
   configured).
6. **statuses** (:func:`tasks.statuses.refresh_statuses`): fetch the delivery status of
   recent SMS still in ``sent`` (bounded per poll) and apply what they teach: a number that
   cannot take SMS is disabled (30005, 30006, 21614, ...), 21610 means opted out.

One poll at a time holds the lease (:mod:`tasks.poll_lease`). Numbers and bodies never
reach logs at INFO or above: counts only, numbers masked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from adapters.twilio.types import ProviderMessage
from domain.config import SmsConfig
from domain.consent import (
    INSTITUTION,
    keyword_consent_changes,
    late_keyword_reason,
    opt_out_scope,
    out_of_order,
)
from domain.keywords import Keyword, classify_keyword
from domain.revocation import detect_revocation
from domain.routing import ConsentSource
from domain.urgent import detect_urgent
from models.config import load_config
from models.consent import (
    apply_changes,
    institution_consent,
    last_decision_at,
    note_consent,
)
from models.inbound import (
    answered_message,
    insert_inbound,
    known_sids,
    outbound_threads,
    sender_owners,
)
from models.leases import read_cursor, write_cursor
from models.notifications import replies_to_notify
from models.outbox_loose import enqueue
from models.people import people_by_number
from tasks.env import Env
from tasks.keyword_replies import keyword_reply_row
from tasks.notify import notification_rows
from tasks.poll_options import ACTOR, PollOptions
from tasks.runtime import Stopwatch, run_logger
from tasks.urgent import emit_urgent_events, queue_urgent

#: The poll cursor: the newest ``DateSent`` (Twilio's clock) of a committed listing.
CURSOR = "inbound-messages"


# --- 1. fetch --------------------------------------------------------------------------


@dataclass(slots=True)
class Fetched:
    """One listing: inbound messages newest first, and where the cursor may move."""

    inbound: list[ProviderMessage]
    scanned: int
    since_day: date
    cutoff: datetime
    cursor_before: datetime | None
    cursor_after: datetime | None
    seconds: float = 0.0


async def list_inbound(
    env: Env, since_day: date, cutoff: datetime, page_size: int
) -> tuple[list[ProviderMessage], int, datetime | None]:
    """Inbound messages sent on or after ``cutoff``, newest first (listed from ``since_day``,
    a GMT day, and no further back than the first message sent before ``cutoff``); with how
    many messages were listed and the newest ``DateSent`` seen. The poll's cutoff is its
    cursor minus the skew; the reconciliation sweep's is the start of its window."""
    inbound: list[ProviderMessage] = []
    scanned = 0
    newest: datetime | None = None
    gateway = env.gateway_factory()
    try:
        pages = gateway.list_messages(sent_after=since_day, page_size=page_size)
        try:
            async for message in pages:
                sent = message.date_sent
                # Newest first (by send or creation date, as Twilio orders): whatever
                # follows a message sent before the cutoff is older still. Stopping here
                # also stops paging.
                if sent is not None and sent < cutoff:
                    break
                scanned += 1
                if sent is not None and (newest is None or sent > newest):
                    newest = sent
                if message.is_inbound:
                    inbound.append(message)
        finally:
            closer = getattr(pages, "aclose", None)
            if closer is not None:
                await closer()
    finally:
        await gateway.aclose()
    return inbound, scanned, newest


@task(name="fetch-inbound", cache_policy=NO_CACHE)
def fetch_inbound(env: Env, options: PollOptions) -> Fetched:
    """List what arrived since the cursor (minus the skew), following every page."""
    clock = Stopwatch()
    with Session(env.engine) as s:
        before = read_cursor(session=s, name=CURSOR)
    cutoff = (before - options.skew) if before else env.now() - options.lookback
    since_day = cutoff.astimezone(UTC).date()
    inbound, scanned, newest = asyncio.run(list_inbound(env, since_day, cutoff, options.page_size))
    after = before
    if newest is not None and (after is None or newest > after):
        after = newest
    fetched = Fetched(inbound, scanned, since_day, cutoff, before, after, clock.lap())
    run_logger().info(
        "fetched %d inbound of %d messages listed since %s", len(inbound), scanned, since_day
    )
    return fetched


# --- 2. store --------------------------------------------------------------------------


@dataclass(slots=True)
class StoreReport:
    """What storing one listing did."""

    new: int = 0
    duplicates: int = 0
    opt_outs: int = 0
    opt_ins: int = 0
    help: int = 0
    replies: int = 0
    flagged: int = 0
    unknown_senders: int = 0
    not_our_number: int = 0
    threaded: int = 0
    notifications_queued: int = 0
    keyword_replies_queued: int = 0
    urgent: int = 0
    urgent_alerts_queued: int = 0
    urgent_replies_queued: int = 0
    urgent_events: int = 0
    seconds: float = 0.0


def _received(message: ProviderMessage, fallback: datetime) -> datetime:
    return message.date_sent or message.date_created or fallback


@task(name="store-inbound", cache_policy=NO_CACHE)
def store_inbound(
    env: Env,
    fetched: Fetched,
    checkpoint: Callable[[str], None] | None = None,
    actor: str = ACTOR,
) -> StoreReport:
    """Store every new inbound message once and act on it; move the cursor; one commit.

    ``actor`` names who stored it in the consent audit trail (the poll, the sweep, the
    webhook receiver). ``checkpoint(stage)`` is called with ``"stored"`` just before the
    commit (tests inject a crash there to prove nothing is lost and nothing doubled).
    """
    clock = Stopwatch()
    report = StoreReport()
    now = env.now()
    # Oldest first: a STOP followed by a START in one listing must end opted in.
    ordered: list[ProviderMessage] = []
    seen: set[str] = set()
    for message in reversed(fetched.inbound):
        if message.sid not in seen:
            seen.add(message.sid)
            ordered.append(message)
    with Session(env.engine, expire_on_commit=False) as s:
        config = load_config(session=s)
        stored = known_sids(session=s, sids=[m.sid for m in ordered])
        fresh = [m for m in ordered if m.sid not in stored]
        froms = {m.from_ or "" for m in fresh}
        tos = {m.to or "" for m in fresh}
        owners = sender_owners(session=s, numbers=tos)
        people = people_by_number(session=s, numbers=froms)
        threads = outbound_threads(session=s, senders=tos, numbers=froms)
        rows: list[dict[str, Any]] = []
        facts: dict[str, tuple[ProviderMessage, Keyword, str | None]] = {}
        for m in fresh:
            sender, number = m.to or "", m.from_ or ""
            received = _received(m, now)
            keyword = classify_keyword(m.body, config.keyword_languages)
            phrase = (
                detect_revocation(m.body, config.revocation_phrases, config.keyword_languages)
                if keyword is Keyword.NONE
                else None
            )
            crisis = (
                detect_urgent(m.body, config.urgent_phrases) if keyword is Keyword.NONE else None
            )
            original = answered_message(threads.get((sender, number), ()), received)
            person_id = (
                original.person_id
                if original is not None and original.person_id is not None
                else people.get(number)
            )
            rows.append(
                {
                    "provider_sid": m.sid,
                    "from_e164": number[:20],
                    "to_e164": sender[:20],
                    "body": m.body,
                    "received_at": received,
                    "person_id": person_id,
                    "staff_person_id": owners.get(sender),
                    "in_reply_to_id": original.id if original is not None else None,
                    "keyword": keyword.value,
                    "flagged_phrase": phrase[:200] if phrase else None,
                    "urgent_phrase": crisis[:200] if crisis else None,
                    # What a reply asks for is in the outbox (or needs nothing) once stored.
                    "handled": True,
                    "notified": False,
                    "read_at": None,
                    "created_at": now,
                }
            )
            facts[m.sid] = (m, keyword, phrase)
        inserted = insert_inbound(session=s, rows=rows)
        answers: list[dict[str, Any]] = []
        for row in rows:
            sid = row["provider_sid"]
            if sid not in inserted:
                continue  # another poll stored it meanwhile: it acted on it too
            message, keyword, phrase = facts[sid]
            _count(report, row, keyword, phrase)
            _act(s, config, message, keyword, phrase, now, actor)
            if keyword is not Keyword.NONE and config.keyword_replies and row["staff_person_id"]:
                answers.append(keyword_reply_row(row, inserted[sid], keyword, config, now))
        # Urgent replies first: their alerts have the lowest outbox ids of this commit.
        urgent = queue_urgent(s, env, config, list(inserted.values()), now)
        report.urgent = len(urgent.replies)
        report.urgent_alerts_queued = urgent.alerts
        report.urgent_replies_queued = urgent.answers
        tz = ZoneInfo(config.timezone)
        notices = notification_rows(
            replies_to_notify(session=s, inbound_ids=list(inserted.values())),
            tz,
            now,
            reply_by_email=bool(env.settings.reply_address),
        )
        report.notifications_queued = enqueue(session=s, rows=notices)
        report.keyword_replies_queued = enqueue(session=s, rows=answers)
        report.new = len(inserted)
        report.duplicates = len(fetched.inbound) - report.new
        if fetched.cursor_after is not None:
            write_cursor(session=s, name=CURSOR, value=fetched.cursor_after, now=now)
        if checkpoint is not None:
            checkpoint("stored")
        s.commit()
    # After the commit: a crash here loses the events, never the alerts (in the outbox).
    report.urgent_events = emit_urgent_events(urgent.replies)
    report.seconds = clock.lap()
    run_logger().info(
        "stored %d new inbound (%d duplicates): %d replies, %d STOP, %d START, %d HELP, "
        "%d flagged, %d urgent, %d from unknown senders",
        report.new,
        report.duplicates,
        report.replies,
        report.opt_outs,
        report.opt_ins,
        report.help,
        report.flagged,
        report.urgent,
        report.unknown_senders,
    )
    return report


def _count(report: StoreReport, row: dict[str, Any], keyword: Keyword, phrase: str | None) -> None:
    if keyword is Keyword.STOP:
        report.opt_outs += 1
    elif keyword is Keyword.START:
        report.opt_ins += 1
    elif keyword is Keyword.HELP:
        report.help += 1
    else:
        report.replies += 1
    report.flagged += phrase is not None
    report.unknown_senders += row["person_id"] is None
    report.not_our_number += row["staff_person_id"] is None
    report.threaded += row["in_reply_to_id"] is not None


def _act(
    s: Session,
    config: SmsConfig,
    message: ProviderMessage,
    keyword: Keyword,
    phrase: str | None,
    now: datetime,
    actor: str,
) -> None:
    """Apply what one new inbound message asks for to consent (the rules are
    :func:`domain.consent.keyword_consent_changes`), each change with its audit event.

    A STOP or START the student sent before the last decision about their number (listed
    late by Twilio) is recorded in the trail with why, and changes nothing
    (:func:`domain.consent.out_of_order`)."""
    number = message.from_ or ""
    scope = opt_out_scope(config.opt_out_scope, message.to)
    if keyword in (Keyword.STOP, Keyword.START):
        said_at = _received(message, now)
        last = last_decision_at(session=s, e164=number)
        if last is not None and out_of_order(said_at, last):
            note_consent(
                session=s,
                e164=number,
                source=ConsentSource.STOP.value
                if keyword is Keyword.STOP
                else ConsentSource.START.value,
                reason=late_keyword_reason(keyword, said_at, last),
                sender_e164=scope,
                actor=actor,
                inbound_sid=message.sid,
                at=now,
            )
            return
    needs_institution = (keyword is Keyword.START and scope != INSTITUTION) or phrase is not None
    row = institution_consent(session=s, e164=number) if needs_institution else None
    changes = keyword_consent_changes(
        keyword,
        phrase,
        said=message.body.strip()[:20],
        scope=scope,
        institution_status=row.status if row is not None else None,
    )
    # The change happens now (``received`` has whole seconds only and would sort the event
    # before changes made since): the inbound sid leads to the reply itself.
    apply_changes(
        session=s, e164=number, changes=changes, actor=actor, inbound_sid=message.sid, at=now
    )


__all__ = [
    "CURSOR",
    "Fetched",
    "StoreReport",
    "fetch_inbound",
    "list_inbound",
    "store_inbound",
]
