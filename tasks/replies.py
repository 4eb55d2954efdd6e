"""The replies poller's steps: fetch inbound texts, store them once, act on them, tell staff.

One poll, in the order ``flows/poll_replies.py`` writes once:

1. **fetch** (:func:`fetch_inbound`): list messages from Twilio since the durable cursor.
   Twilio filters ``DateSent`` by whole GMT days, so the listing starts at the cursor's day
   (the cursor minus :attr:`PollOptions.skew`) and, newest first, stops at the first message
   sent before ``cursor - skew``: the cost grows with new messages, not with history, and
   is the same for 1 or 500 staff numbers (one account-wide listing, no per-number calls).
2. **store** (:func:`store_inbound`), one transaction: insert each inbound message once
   (unique sid), matched to the student by From, to the staff member by To, threaded to the
   SMS it answers; apply carrier keywords (STOP/START in the configured opt-out scope, HELP
   recorded) and revocation phrases (flag + review pause); put what the reply asks for in
   the outbox (the staff member's notification email; nudge's own keyword answer when
   ``SmsConfig.keyword_replies`` is on); move the cursor. A crash before the commit leaves
   nothing behind and the next poll fetches the same messages again; after it, the outbox
   rows exist exactly once.
3. **notify** (:func:`notify_staff`): send the waiting notification emails through the
   outbox, one per reply, each marked, sent and recorded on its own (exactly once).
4. **keyword replies** (:func:`send_keyword_replies`): send nudge's own keyword answers
   waiting in the outbox (Twilio answers keywords itself unless that is configured).
5. **statuses** (:func:`refresh_statuses`): fetch the delivery status of recent SMS still in
   ``sent`` (bounded per poll) and apply what they teach: a number that cannot take SMS is
   disabled (30005, 30006, 21614, ...), 21610 means opted out.

Numbers and bodies never reach logs at INFO or above: counts only, numbers masked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from adapters.twilio_errors import ErrorClass
from adapters.twilio_gateway import ProviderMessage
from domain.config import OptOutScope, SmsConfig
from domain.keywords import Keyword, classify_keyword, detect_revocation
from domain.masking import mask_phone
from domain.outbox import Kind, OutChannel, Status
from domain.routing import ConsentSource, ConsentState
from domain.segments import segment_info
from models.campaigns import disable_number
from models.config import load_config
from models.consent import INSTITUTION, set_consent
from models.inbound import (
    PendingReply,
    answered_message,
    insert_inbound,
    institution_consent,
    known_sids,
    outbound_threads,
    people_by_number,
    read_cursor,
    replies_to_notify,
    sender_owners,
    sms_awaiting_status,
    write_cursor,
)
from models.outbox import address_notifications, enqueue, loose_counts, record_delivery
from models.people_sync import refresh_sms_number
from tasks.outbox import SendEnv, deliver_loose
from tasks.runtime import run_logger

log = logging.getLogger("nudge.replies")


#: The poll cursor: the newest ``DateSent`` (Twilio's clock) of a committed listing.
CURSOR = "inbound-messages"
#: The lease that keeps two polls from emailing the same reply twice.
LEASE = "poll-replies.lease"
ACTOR = "poll-replies"

#: nudge's own keyword answers (sent only when ``SmsConfig.keyword_replies`` is on), worded
#: as Twilio's are.
STOP_CONFIRMATION = (
    "You have successfully been unsubscribed. You will not receive any more messages from "
    "this number. Reply START to re-subscribe."
)
START_CONFIRMATION = (
    "You have successfully been re-subscribed to messages from this number. Reply HELP for "
    "help. Reply STOP to unsubscribe."
)

_FINAL = {
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
}


@dataclass(frozen=True, slots=True)
class PollOptions:
    """How much one poll looks at and does (defaults suit a poll every minute).

    * ``page_size``: messages per Twilio page (at most 1,000);
    * ``lookback``: how far back the very first poll looks;
    * ``skew``: overlap with the previous poll, for clock skew and late-indexed messages
      (messages in it are listed again and counted as duplicates);
    * ``status_window`` / ``status_limit``: delivery statuses are refreshed for SMS sent in
      this window, at most this many per poll;
    * ``notify_limit``: notification emails sent per poll (one per reply);
    * ``keyword_reply_window``: nudge's own keyword answers are not sent later than this.
    """

    page_size: int = 1000
    lookback: timedelta = timedelta(days=1)
    skew: timedelta = timedelta(minutes=5)
    status_window: timedelta = timedelta(days=3)
    status_limit: int = 500
    notify_limit: int = 10_000
    keyword_reply_window: timedelta = timedelta(days=1)


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


async def _list(
    env: SendEnv, since_day: date, cutoff: datetime, page_size: int
) -> tuple[list[ProviderMessage], int, datetime | None]:
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
def fetch_inbound(env: SendEnv, options: PollOptions) -> Fetched:
    """List what arrived since the cursor (minus the skew), following every page."""
    clock = _Stopwatch()
    with Session(env.engine) as s:
        before = read_cursor(session=s, name=CURSOR)
    cutoff = (before - options.skew) if before else env.now() - options.lookback
    since_day = cutoff.astimezone(UTC).date()
    inbound, scanned, newest = asyncio.run(_list(env, since_day, cutoff, options.page_size))
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
    seconds: float = 0.0


def _received(message: ProviderMessage, fallback: datetime) -> datetime:
    return message.date_sent or message.date_created or fallback


@task(name="store-inbound", cache_policy=NO_CACHE)
def store_inbound(
    env: SendEnv, fetched: Fetched, checkpoint: Callable[[str], None] | None = None
) -> StoreReport:
    """Store every new inbound message once and act on it; move the cursor; one commit.

    ``checkpoint(stage)`` is called with ``"stored"`` just before the commit (tests inject a
    crash there to prove nothing is lost and nothing doubled).
    """
    clock = _Stopwatch()
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
            _act(s, config, message, keyword, phrase, now)
            if keyword is not Keyword.NONE and config.keyword_replies and row["staff_person_id"]:
                answers.append(keyword_reply_row(row, inserted[sid], keyword, config, now))
        tz = ZoneInfo(config.timezone)
        notices = notification_rows(
            replies_to_notify(session=s, inbound_ids=list(inserted.values())), tz, now
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
    report.seconds = clock.lap()
    run_logger().info(
        "stored %d new inbound (%d duplicates): %d replies, %d STOP, %d START, %d HELP, "
        "%d flagged, %d from unknown senders",
        report.new,
        report.duplicates,
        report.replies,
        report.opt_outs,
        report.opt_ins,
        report.help,
        report.flagged,
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
) -> None:
    """Apply what one new inbound message asks for to consent (with its audit event)."""
    number, sender = message.from_ or "", message.to or ""
    scope = sender if config.opt_out_scope == OptOutScope.sender else INSTITUTION
    said = message.body.strip()[:20]
    common: dict[str, Any] = {
        # The change happens now (``received`` has whole seconds only and would sort the
        # event before changes made since): the inbound sid leads to the reply itself.
        "session": s,
        "e164": number,
        "actor": ACTOR,
        "inbound_sid": message.sid,
        "at": now,
    }
    if keyword is Keyword.STOP:
        set_consent(
            status=ConsentState.OPTED_OUT.value,
            source=ConsentSource.STOP.value,
            sender_e164=scope,
            reason=f"replied {said!r}",
            **common,
        )
    elif keyword is Keyword.START:
        set_consent(
            status=ConsentState.OPTED_IN.value,
            source=ConsentSource.START.value,
            sender_e164=scope,
            reason=f"replied {said!r}",
            **common,
        )
        if scope != INSTITUTION:
            # The review pause is institution-wide; the student's own START supersedes it.
            row = institution_consent(session=s, e164=number)
            if row is not None and row.status == ConsentState.PAUSED_FOR_REVIEW:
                set_consent(
                    status=ConsentState.OPTED_IN.value,
                    source=ConsentSource.START.value,
                    sender_e164=INSTITUTION,
                    reason=f"replied {said!r} after a review pause",
                    **common,
                )
    elif phrase is not None:
        row = institution_consent(session=s, e164=number)
        if row is None or row.status != ConsentState.OPTED_OUT:
            # Institution-wide on purpose ("wrong number" is about the number, not about
            # one sender): every SMS to it waits until an admin resolves the review.
            set_consent(
                status=ConsentState.PAUSED_FOR_REVIEW.value,
                source=ConsentSource.REPLY_REVIEW.value,
                sender_e164=INSTITUTION,
                reason=f"reply flagged for review: {phrase!r}",
                **common,
            )


# --- 3. notify ---------------------------------------------------------------------------


@dataclass(slots=True)
class NotifyReport:
    """What emailing staff did."""

    notifications_sent: int = 0
    replies_notified: int = 0
    notifications_failed: int = 0
    notifications_unknown: int = 0
    pending: int = 0
    no_staff_email: int = 0
    seconds: float = 0.0


def _when(moment: datetime | None, tz: ZoneInfo) -> str:
    if moment is None:
        return "an unknown time"
    return moment.astimezone(tz).strftime("%a %d %b %Y, %H:%M %Z")


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in (text.splitlines() or [""]))


def notification_text(replies: Sequence[PendingReply], tz: ZoneInfo) -> tuple[str, str]:
    """The subject and body of the email telling a staff member about the new replies of
    one conversation (one student, or one unknown number), oldest first."""
    first = replies[0]
    who = first.student_name and f"{first.student_name} ({first.student_sis_id})"
    sender = who or "an unknown number"
    count = len(replies)
    subject = f"New reply from {sender}" if count == 1 else f"{count} new replies from {sender}"
    given = first.staff_name.split(" ")[0]
    parts = [f"Hello {given},", ""]
    for reply in replies:
        if reply.student_sis_id:
            parts.append(
                f"{reply.student_name} (student id {reply.student_sis_id}) replied "
                f"on {_when(reply.received_at, tz)}:"
            )
        else:
            parts.append(
                f"An unknown number ({mask_phone(reply.from_e164)}) texted your "
                f"number on {_when(reply.received_at, tz)}:"
            )
        parts += ["", _indent(reply.body), ""]
        if reply.original_body is not None:
            parts += [
                f"In answer to your text of {_when(reply.original_sent_at, tz)}:",
                _indent(reply.original_body),
                "",
            ]
        if reply.flagged_phrase:
            parts += [
                f"This reply reads like a request to stop texts "
                f'("{reply.flagged_phrase}"). Texts to this number are paused until '
                "an admin reviews it (nudge consent resolve).",
                "",
            ]
    if first.student_sis_id:
        parts += [
            f"Answer: nudge reply --sender {first.staff_sis_id} "
            f'--student {first.student_sis_id} --message "..."',
            "",
        ]
    parts.append(f"All your conversations: nudge inbox --staff {first.staff_sis_id} --unread")
    return subject, "\n".join(parts)


def notification_rows(
    replies: Sequence[PendingReply], tz: ZoneInfo, now: datetime
) -> list[dict[str, Any]]:
    """The outbox rows of the notification emails for ``replies`` (stored in one poll): one
    email per conversation (staff member and student, or unknown number), unique by the
    conversation's first reply, so it is created and sent exactly once."""
    groups: dict[tuple[int, object], list[PendingReply]] = {}
    for reply in replies:
        who: object = reply.student_sis_id or reply.from_e164
        groups.setdefault((reply.staff_person_id, who), []).append(reply)
    rows = []
    for group in groups.values():
        subject, body = notification_text(group, tz)
        rows.append(
            {
                "outbox_key": f"notify:{group[0].provider_sid}",
                "kind": Kind.NOTIFICATION.value,
                "channel": OutChannel.EMAIL.value,
                "person_id": group[0].staff_person_id,
                "inbound_id": group[0].id,
                "to_addr": group[0].staff_email or None,
                "subject": subject,
                "body": body,
                "extra": {"inbound_ids": [r.id for r in group]},
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


@task(name="notify-staff", cache_policy=NO_CACHE)
def notify_staff(env: SendEnv, options: PollOptions) -> NotifyReport:
    """Send the reply notifications waiting in the outbox, each exactly once."""
    clock = _Stopwatch()
    report = NotifyReport()
    sent = deliver_loose(env, kinds=[Kind.NOTIFICATION], limit=options.notify_limit).emails
    report.notifications_sent = sent.sent
    report.replies_notified = sent.replies
    report.notifications_failed = sent.failed + sent.retry
    report.notifications_unknown = sent.unknown
    with Session(env.engine) as s:
        counts = loose_counts(session=s, kind=Kind.NOTIFICATION)
        report.pending = counts.get(Status.PLANNED.value, 0) + counts.get(Status.SENDING.value, 0)
        report.no_staff_email = count_unaddressed(s)
    report.seconds = clock.lap()
    if report.no_staff_email:
        run_logger().warning(
            "%d replies wait: their staff member has no email address", report.no_staff_email
        )
    if sent.failed or sent.retry:
        log.warning(
            "%d notification emails failed, %d will be retried next poll", sent.failed, sent.retry
        )
    return report


def count_unaddressed(s: Session) -> int:
    """Notifications waiting because their staff member has no email address."""
    return address_notifications(session=s)


# --- 4. keyword replies ----------------------------------------------------------------


def keyword_reply_row(
    row: dict[str, Any], inbound_id: int, keyword: Keyword, config: SmsConfig, now: datetime
) -> dict[str, Any]:
    """The outbox row of nudge's own answer to a keyword (unique per inbound message)."""
    body = {
        Keyword.STOP: STOP_CONFIRMATION,
        Keyword.START: START_CONFIRMATION,
        Keyword.HELP: config.help_text,
    }[keyword]
    info = segment_info(body)
    return {
        "outbox_key": f"keyword:{row['provider_sid']}",
        "kind": Kind.KEYWORD_REPLY.value,
        "channel": OutChannel.SMS.value,
        "reason": f"keyword_{keyword.value}",
        "person_id": row["person_id"],
        "inbound_id": inbound_id,
        "to_addr": row["from_e164"],
        "from_addr": row["to_e164"],
        "body": body,
        "segments": info.segments,
        "encoding": info.encoding,
        "extra": {"inbound_sid": row["provider_sid"]},
        "created_at": now,
        "updated_at": now,
    }


@task(name="send-keyword-replies", cache_policy=NO_CACHE)
def send_keyword_replies(env: SendEnv, options: PollOptions) -> int:
    """Send nudge's own STOP/START/HELP answers waiting in the outbox (each exactly once,
    never later than ``keyword_reply_window`` after the keyword)."""
    report = deliver_loose(env, kinds=[Kind.KEYWORD_REPLY], window=options.keyword_reply_window)
    return report.sms_sent


# --- 5. delivery statuses ----------------------------------------------------------------


@dataclass(slots=True)
class StatusReport:
    """What refreshing delivery statuses did."""

    statuses_checked: int = 0
    statuses_updated: int = 0
    delivered: int = 0
    undelivered: int = 0
    failed: int = 0
    numbers_disabled: int = 0
    carrier_opt_outs: int = 0
    expired: int = 0
    fatal_codes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


async def _fetch_statuses(env: SendEnv, sids: Sequence[str]) -> list[ProviderMessage]:
    gateway = env.gateway_factory()
    try:
        return await gateway.fetch_statuses(sids)
    finally:
        await gateway.aclose()


@task(name="refresh-statuses", cache_policy=NO_CACHE)
def refresh_statuses(env: SendEnv, options: PollOptions) -> StatusReport:
    """Update recent SMS still in ``sent`` from Twilio and apply what failures teach."""
    clock = _Stopwatch()
    report = StatusReport()
    now = env.now()
    with Session(env.engine) as s:
        waiting = sms_awaiting_status(
            session=s, since=now - options.status_window, limit=options.status_limit
        )
    if not waiting:
        return report
    found = {m.sid: m for m in asyncio.run(_fetch_statuses(env, [w.provider_sid for w in waiting]))}
    report.statuses_checked = len(waiting)
    disabled: set[str] = set()
    with Session(env.engine) as s:
        config = load_config(session=s)
        for sms in waiting:
            provider = found.get(sms.provider_sid)
            status = _FINAL.get(provider.status) if provider is not None else None
            values: dict[str, Any] = {"updated_at": now}  # checked: rotate to the back
            if provider is not None and status is not None:
                values["status"] = status
                if status == "delivered":
                    values["delivered_at"] = provider.date_updated or now
                else:
                    values["error_code"] = provider.error_code
                    values["error_message"] = f"delivery {status}: error {provider.error_code}"
                setattr(report, status, getattr(report, status) + 1)
                report.statuses_updated += 1
            values.pop("updated_at")
            record_delivery(session=s, message_id=sms.id, now=now, **values)
            if provider is None or status in (None, "delivered") or not sms.to_addr:
                continue
            error = provider.error_class
            if error is ErrorClass.NOT_SMS_CAPABLE and sms.to_addr not in disabled:
                disabled.add(sms.to_addr)
                for person_id in disable_number(
                    session=s, e164=sms.to_addr, code=provider.error_code
                ):
                    refresh_sms_number(session=s, person_id=person_id, config=config)
            elif error is ErrorClass.OPTED_OUT:
                scope = (
                    sms.from_addr or INSTITUTION
                    if config.opt_out_scope == OptOutScope.sender
                    else INSTITUTION
                )
                set_consent(
                    session=s,
                    e164=sms.to_addr,
                    status=ConsentState.OPTED_OUT.value,
                    source=ConsentSource.CARRIER_21610.value,
                    sender_e164=scope,
                    reason=f"delivery failed with {provider.error_code}",
                    actor=ACTOR,
                    at=now,
                )
                report.carrier_opt_outs += 1
            elif error is ErrorClass.EXPIRED:
                # It waited in Twilio's queue past its validity (the recipient's window
                # closed): it was never sent, and is not resent by itself.
                report.expired += 1
            elif error is ErrorClass.FATAL:
                code = str(provider.error_code)
                report.fatal_codes[code] = report.fatal_codes.get(code, 0) + 1
        s.commit()
    report.numbers_disabled = len(disabled)
    report.seconds = clock.lap()
    if report.fatal_codes:
        run_logger().error(
            "deliveries failed with configuration errors %s: check the "
            "account and sender registration",
            report.fatal_codes,
        )
    run_logger().info(
        "delivery statuses: %d checked, %d updated, %d numbers disabled",
        report.statuses_checked,
        report.statuses_updated,
        report.numbers_disabled,
    )
    return report


# --- helpers -----------------------------------------------------------------------------


class _Stopwatch:
    """Seconds since creation (``lap``), for the split a poll reports."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def lap(self) -> float:
        return round(time.perf_counter() - self._start, 4)


def as_dict(report: Any) -> dict[str, Any]:
    """A report dataclass as a plain dict."""
    return {k: v for k, v in asdict(report).items() if k != "seconds"}


__all__ = [
    "CURSOR",
    "LEASE",
    "START_CONFIRMATION",
    "STOP_CONFIRMATION",
    "Fetched",
    "NotifyReport",
    "PollOptions",
    "StatusReport",
    "StoreReport",
    "count_unaddressed",
    "fetch_inbound",
    "keyword_reply_row",
    "notification_rows",
    "notification_text",
    "notify_staff",
    "refresh_statuses",
    "send_keyword_replies",
    "store_inbound",
]
