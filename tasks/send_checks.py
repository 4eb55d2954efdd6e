"""Send-time checks of a campaign chunk: what was true when a message was planned is checked
again when it is sent, however long ago that was.

* the sender still holds a permitted role and is active (router step 1); otherwise every
  open message of the campaign ends ``refused``/``sender_not_permitted``;
* consent (``domain.routing.consent_block``): a STOP since planning wins, and the text goes
  by email;
* the opt-in notice goes only to a number this sender has not texted yet;
* quiet hours in the recipient's local time: deferred to the window's start, never dropped;
  a text that goes now carries a ``ValidityPeriod`` ending when the window closes.

The quota is the fourth check: it is reserved atomically with the mark
(``tasks/outbox_sms.mark_jobs``).
"""

from __future__ import annotations

from sqlmodel import Session

from domain.config import SmsConfig
from domain.consent import effective_consent
from domain.outbox import Status
from domain.quiet_hours import (
    next_allowed,
    parse_window,
    recipient_timezone,
    validity_seconds,
    zone,
)
from domain.quota import message_cost
from domain.routing import Refusal, check_sender, consent_block
from models.campaigns import consents_for, texted_numbers
from models.messaging import Campaign
from models.outbox import defer, move
from models.people import Person
from tasks.campaigns import sender_policy
from tasks.outbox_sms import SmsJob
from tasks.send_outcomes import ChunkOutcomes


def sender_refusal(
    s: Session, campaign: Campaign, staff: Person, config: SmsConfig
) -> Refusal | None:
    """Router step 1 again, at send time: may this sender still send this campaign?"""
    facts, policy = sender_policy(s, config, staff)
    return check_sender(facts, policy, is_reply=campaign.conversation)


def check_jobs(out: ChunkOutcomes, jobs: list[SmsJob]) -> list[SmsJob]:
    """Consent, the opt-in notice and quiet hours, now; returns the jobs to send now (with
    their validity and quota units). The others fall back to email or are deferred, and
    are written so through ``out``."""
    env, config = out.env, out.config
    now = env.now()
    window = parse_window(config.quiet_hours)
    ready: list[SmsJob] = []
    with Session(env.engine) as s:
        numbers = [j.main.to_addr for j in jobs if j.main.to_addr]
        consents = consents_for(session=s, numbers=numbers, sender_e164=out.sender_e164)
        introduced = texted_numbers(session=s, sender_e164=out.sender_e164, numbers=numbers)
        for job in jobs:
            number = job.main.to_addr or ""
            inst, mine = consents.get(number, (None, None))
            state, _source = effective_consent(inst, mine, config.opt_out_scope)
            blocked = consent_block(state, auto_opt_in=config.auto_opt_in)
            if blocked is not None:
                out.fallback(s, job, blocked.value)
                continue
            if len(job.rows) == 2 and number in introduced:
                move(
                    session=s,
                    ids=[job.rows[0].id],
                    to=Status.SKIPPED,
                    now=now,
                    fence=out.fence,
                    reason="already_introduced",
                )
                job.rows = job.rows[1:]
            tz = zone(recipient_timezone(number, config.timezone))
            opens = next_allowed(now, window, tz)
            if opens is not None:
                for row in job.rows:
                    defer(
                        session=s,
                        row=row,
                        until=opens,
                        now=now,
                        reason="quiet hours",
                        fence=out.fence,
                    )
                out.report.deferred += 1
                continue
            job.validity_s = validity_seconds(now, window, tz)
            job.units = {
                r.id: message_cost(max(r.segments, 1), config.quota_unit) for r in job.rows
            }
            ready.append(job)
        s.commit()
    return ready


__all__ = ["check_jobs", "sender_refusal"]
