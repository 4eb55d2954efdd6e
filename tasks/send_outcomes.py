"""What a pass over a campaign chunk writes: its report, the SMS outcomes by the gateway's
taxonomy, the fall back to email, and the campaign's stop with the admins' alert.

* sent → ``sent`` with the provider's SID (an opt-in notice first, then the text);
* ambiguous (the answer was lost) → left ``sending``, looked up again once no request can
  be in flight;
* 21610 → the recipient is opted out (with the institution's opt-out scope), then email;
* a number that cannot take SMS → disabled with the code, then email; rejected → email;
* a fatal configuration error → the campaign stops, admins get an alert email (an outbox
  row written with the stop) and the event ``nudge.campaign.stopped``;
* not attempted (deadline) or retriable failures ran out → ``planned`` again, for later
  (after :data:`~tasks.outbox_sms.MAX_SMS_ATTEMPTS` passes: email).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from adapters.twilio.errors import SendOutcome
from adapters.twilio.types import SendResult
from domain.config import SmsConfig
from domain.consent import opt_out_scope
from domain.masking import mask_phone
from domain.outbox import Status
from models.campaign_lifecycle import stop_campaign
from models.campaigns import disable_number
from models.consent import record_auto_opt_in, set_consent
from models.outbox import Fence, OutRow, move, to_email, unmark
from models.outbox_loose import enqueue
from models.people_sync import refresh_sms_number
from tasks.env import Env
from tasks.outbox import RETRY_LATER
from tasks.outbox_loose import alert_rows
from tasks.outbox_sms import (
    MAX_SMS_ATTEMPTS,
    SmsJob,
    keep_for_reconciliation,
    record_retry,
    record_sent,
)
from tasks.runtime import in_prefect_run, run_logger

#: A phone number in E.164 inside free text (a provider's error message quotes the 'To').
_E164 = re.compile(r"\+\d{8,15}")


def masked(reason: str) -> str:
    """``reason`` with every phone number in it masked, for the logs (``+1******0123``)."""
    return _E164.sub(lambda m: mask_phone(m.group()), reason)


@dataclass(slots=True)
class ChunkReport:
    """What one pass over a chunk did."""

    chunk_id: int
    sms_sent: int = 0
    emails_sent: int = 0
    fell_back: int = 0
    deferred: int = 0
    refused: int = 0
    retry_later: int = 0
    reconciled: int = 0
    unknown_emails: int = 0
    stopped: str | None = None
    lost_claim: bool = False
    done: bool = False
    seconds_total: float = 0.0
    seconds_twilio: float = 0.0


class ChunkOutcomes:
    """Where one pass over a chunk writes what happened, and what it knows while it does:
    the institution's configuration, the sender, and when the chunk is due again.

    Preparing one group and recording another may overlap (two threads): both hold
    :attr:`lock` while they write.
    """

    def __init__(self, env: Env, fence: Fence, campaign_id: int, report: ChunkReport) -> None:
        self.env = env
        self.fence = fence
        self.campaign_id = campaign_id
        self.report = report
        self.config: SmsConfig = SmsConfig()
        self.sender_e164 = ""
        self.sender_name = ""
        #: When the chunk should be passed over again (None: when its next message is due).
        self.retry_at: datetime | None = None
        self.stopped_now = False
        self.lock = threading.Lock()

    def fallback(self, s: Session, job: SmsJob, reason: str, code: int | None = None) -> None:
        """The job's text goes by email for ``reason`` (its opt-in notice is not needed)."""
        now = self.env.now()
        for row in job.rows[:-1]:  # the notice is not needed when the text goes by email
            if row.status == Status.SENDING:
                unmark(session=s, row=row, now=now)
            move(
                session=s,
                ids=[row.id],
                to=Status.SKIPPED,
                now=now,
                fence=self.fence,
                reason="not_needed",
            )
        if to_email(
            session=s,
            row=job.main,
            reason=reason,
            sender_name=self.sender_name,
            now=now,
            code=code,
            fence=self.fence,
        ):
            self.report.fell_back += 1

    def record(self, jobs: list[SmsJob]) -> None:
        """Write the outcomes of a group's calls (and the auto opt-ins of those texted); a
        stop made here alerts the admins."""
        env, config = self.env, self.config
        now = env.now()
        auto: list[str] = []
        with self.lock, Session(env.engine) as s:
            for job in jobs:
                self._record_job(s, job, now)
                main = job.main
                if main.status == Status.SENT and main.extra.get("auto_opt_in"):
                    auto.append(main.to_addr or "")
            if config.auto_opt_in and auto:
                record_auto_opt_in(
                    session=s,
                    numbers=auto,
                    now=now,
                    reason="texted under auto opt-in",
                    actor="send",
                )
            s.commit()
        if self.report.stopped and self.stopped_now:
            self._alert(self.report.stopped)

    def _record_job(self, s: Session, job: SmsJob, now: datetime) -> None:
        failure: tuple[OutRow, SendResult] | None = None
        for row in job.rows:
            result = job.results.get(row.id)
            if result is None:  # an earlier message of the job failed: this one never went
                unmark(session=s, row=row, now=now)
                continue
            if result.outcome is SendOutcome.SENT:
                if record_sent(s, row, result, now) and row is job.main:
                    self.report.sms_sent += 1
                continue
            failure = (row, result)
        if failure is None:
            return
        row, result = failure
        outcome = result.outcome
        number = row.to_addr or ""
        if outcome is SendOutcome.AMBIGUOUS:
            # The provider may have it: keep it ``sending``; it is looked up again once no
            # request can be in flight.
            keep_for_reconciliation(s, row, now)
            self.retry_at = now + self.env.sms_bound()
            self.report.retry_later += 1
            return
        if outcome is SendOutcome.OPTED_OUT:
            scope = opt_out_scope(self.config.opt_out_scope, self.sender_e164)
            set_consent(
                session=s,
                e164=number,
                status="opted_out",
                source="carrier_21610",
                sender_e164=scope,
                reason="Twilio refused the send with 21610",
                actor="send",
                at=now,
            )
            self.fallback(s, job, "opted_out", result.error_code)
        elif outcome is SendOutcome.NOT_SMS_CAPABLE:
            for person_id in disable_number(session=s, e164=number, code=result.error_code):
                refresh_sms_number(session=s, person_id=person_id, config=self.config)
            self.fallback(s, job, f"not_sms_capable_{result.error_code}", result.error_code)
        elif outcome is SendOutcome.REJECTED:
            self.fallback(s, job, f"rejected_{result.error_code}", result.error_code)
        elif outcome is SendOutcome.FATAL:
            record_retry(s, row, result, now)
            for other in job.rows:
                if other.status == Status.SENDING:
                    unmark(session=s, row=other, now=now)
            reason = (
                f"Twilio error {result.error_code or result.http_status}: "
                f"{result.message or 'configuration problem'}"
            )
            if stop_campaign(session=s, campaign_id=self.campaign_id, reason=reason):
                self.stopped_now = True
                self._enqueue_alert(s, reason, now)
            self.report.stopped = reason
        else:  # not attempted (deadline), or retriable failures ran out
            record_retry(s, row, result, now)
            for other in job.rows:
                if other.status == Status.SENDING:
                    unmark(session=s, row=other, now=now)
            if (
                outcome is SendOutcome.RETRIABLE_EXHAUSTED
                and row is job.main
                and row.attempts >= MAX_SMS_ATTEMPTS
            ):
                self.fallback(s, job, "sms_failed", result.error_code)
            else:
                self.retry_at = now + (
                    RETRY_LATER if outcome is SendOutcome.RETRIABLE_EXHAUSTED else timedelta(0)
                )
                self.report.retry_later += 1

    def stop(self, reason: str) -> None:
        """Stop the campaign (admins alerted): nothing more is sent until it is resumed."""
        now = self.env.now()
        with Session(self.env.engine) as s:
            if stop_campaign(session=s, campaign_id=self.campaign_id, reason=reason):
                self.stopped_now = True
                self._enqueue_alert(s, reason, now)
            s.commit()
        self.report.stopped = reason
        if self.stopped_now:
            self._alert(reason)

    def _enqueue_alert(self, s: Session, reason: str, now: datetime) -> None:
        """The campaign-stopped alert is an outbox row, created with the stop itself."""
        body = (
            f"Campaign {self.campaign_id} stopped sending.\n\nReason: {reason}\n\n"
            "Nothing further was sent. Fix the account or sender configuration, then run "
            f"`nudge campaigns resume {self.campaign_id}`."
        )
        enqueue(
            session=s,
            rows=alert_rows(
                key=f"campaign-stopped:{self.campaign_id}:{now.isoformat()}",
                recipients=self.env.settings.alert_emails,
                subject=f"nudge: campaign {self.campaign_id} stopped",
                body=body,
                now=now,
            ),
        )

    def _alert(self, reason: str) -> None:
        """Tell admins a campaign stopped: the run log and a Prefect event (the email is an
        outbox row sent by the worker loop)."""
        run_logger().error("campaign %s stopped: %s", self.campaign_id, masked(reason))
        if in_prefect_run():
            from prefect.events import emit_event

            emit_event(
                event="nudge.campaign.stopped",
                resource={"prefect.resource.id": f"nudge.campaign.{self.campaign_id}"},
                payload={"campaign_id": self.campaign_id, "reason": reason},
            )


__all__ = ["ChunkOutcomes", "ChunkReport", "masked"]
