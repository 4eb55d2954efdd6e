"""The reply mailbox: what each mail in it is, and acting on it exactly once.

Staff notifications and fallback emails carry ``Reply-To: texts+<token>@college.edu``
(``tasks/reply_to.py``). A mail that comes back to that address is one of:

* **a staff member's answer** — From is the staff member the token names: its new text
  goes to the student by SMS through the router and the outbox (the flow runs it as a
  reply campaign keyed by this mail, ``flows/poll_mailbox.py``); if it could not be sent the
  staff member gets a short bounce-back email saying why;
* **a student's answer** to a fallback email — From is the student: recorded in the thread
  as an inbound message on the email channel, and the staff member notified as for a text;
* **refused** — the token is unknown or tampered with, or From is neither of the two:
  nothing is sent, the mail is kept for review (``nudge mail review``) and reported to
  ``NUDGE_ALERT_EMAILS``;
* an **automatic reply** (out-of-office, delivery report): nothing is sent.

Each mail gets a receipt (``models/mailbox.py``, unique by Message-ID) before anything is
acted on, so a poller that dies between reading a mail and moving it acts on it once.
Bodies and addresses never reach logs above DEBUG.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from domain.mail_quotes import drop_sign_off
from domain.mail_text import IncomingMail
from domain.reply_tokens import ReplyPair, read_token
from models.mailbox import AnswerOutcome, answer_outcome, claim_receipt, finish_receipt
from models.outbox_loose import enqueue
from models.people import Person
from tasks.env import Env
from tasks.mail_students import mail_sid, record_student_answer
from tasks.outbox_loose import alert_rows
from tasks.reply_to import reply_key

log = logging.getLogger("nudge.mailbox")

#: Receipt statuses.
RECEIVED, DONE, REFUSED, SKIPPED = "received", "done", "refused", "skipped"
#: Where a mail goes once handled (the names are settings; these are the roles).
HANDLED, REVIEW = "handled", "review"


@dataclass(slots=True)
class MailPollReport:
    """What one pass over the reply mailbox did (``nudge poll-mail --json``)."""

    fetched: int = 0  # mails carrying one of our tokens, read
    ignored: int = 0  # mails without a token of ours: left where they are
    sent: int = 0  # staff answers that went to the student (by text, or email fallback)
    sent_by_email: int = 0  # of those, by email (opted out of texts, no mobile number)
    deferred: int = 0  # staff answers waiting for the end of quiet hours
    bounced: int = 0  # staff answers that could not be sent: the staff member was told why
    recorded: int = 0  # students' email answers recorded in their thread
    refused: int = 0  # forged sender, unknown or tampered token: kept for review
    auto_replies: int = 0  # out-of-office and delivery reports: nothing sent
    already_handled: int = 0  # handled by an earlier pass that died before moving them
    emails_sent: int = 0  # notifications, bounce-backs and review reports sent this pass
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "fetched": self.fetched,
            "ignored": self.ignored,
            "sent": self.sent,
            "sent_by_email": self.sent_by_email,
            "deferred": self.deferred,
            "bounced": self.bounced,
            "recorded": self.recorded,
            "refused": self.refused,
            "auto_replies": self.auto_replies,
            "already_handled": self.already_handled,
            "emails_sent": self.emails_sent,
            "errors": list(self.errors),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class StaffAnswer:
    """A staff member's answer to text to the student (the flow sends it)."""

    receipt_id: int
    staff_sis_id: str
    staff_email: str
    student_sis_id: str
    student_name: str
    text: str

    @property
    def request_key(self) -> str:
        """The reply campaign's request key: one campaign per mail, however often read."""
        return f"mail:{self.receipt_id}"


@dataclass(frozen=True, slots=True)
class Handled:
    """A mail needing nothing more: where it goes (``handled`` or ``review``)."""

    folder: str


def _same_address(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.strip().lower() == b.strip().lower())


def _receipt_values(mail: IncomingMail, kind: str, pair: ReplyPair | None) -> dict[str, Any]:
    return {
        "kind": kind,
        "status": RECEIVED,
        "from_addr": mail.from_addr[:320] or None,
        "subject": mail.subject[:300] or None,
        "body": mail.text if kind != "refused" else mail.full_text,
        "staff_person_id": pair.staff_person_id if pair else None,
        "student_person_id": pair.student_person_id if pair else None,
    }


def record_mail(
    env: Env, mail: IncomingMail, tokens: list[str], report: MailPollReport
) -> StaffAnswer | Handled:
    """Classify one mail that carries ``tokens`` (its reply addresses, normally one) and
    record it once: a student's answer is stored (with its staff notification) here; a
    staff member's answer is returned for the flow to send; refused and automatic mails are
    recorded and reported. A mail an earlier pass handled is only moved again.

    Refused: an unknown or altered token, a From that is neither of the conversation's
    people (or that the receiving server found forged: DMARC fail), and a mail addressed to
    several conversations at once (one answer would reach one student silently)."""
    now = env.now()
    token = tokens[0]
    with Session(env.engine, expire_on_commit=False) as s:
        pair = read_token(reply_key(env, s), token)
        staff = s.get(Person, pair.staff_person_id) if pair else None
        student = s.get(Person, pair.student_person_id) if pair else None
        reason: str | None = None
        if len(tokens) > 1:
            reason = (
                f"it is addressed to {len(tokens)} conversations at once; "
                "answer each student in an email of its own"
            )
        elif mail.auth_failed:
            reason = "the receiving mail server found its sender forged (DMARC fail)"
        elif pair is None:
            reason = "the reply address carries an unknown or altered token"
        elif staff is None or staff.role != "staff" or student is None:
            reason = "the reply address names a conversation whose people no longer exist"
        elif _same_address(mail.from_addr, staff.email):
            kind = "staff_reply"
        elif _same_address(mail.from_addr, student.email):
            kind = "student_reply"
        else:
            reason = "sent from an address that is neither the staff member's nor the student's"
        if reason is not None:
            kind = "refused"
        receipt = claim_receipt(
            session=s,
            mail_key=f"{mail.key[:150]}|{token[:48]}",  # one mail, one conversation
            values=_receipt_values(mail, kind, pair),
        )
        s.commit()
        if receipt.status != RECEIVED:
            report.already_handled += 1
            return Handled(REVIEW if receipt.status == REFUSED else HANDLED)
        assert receipt.id is not None  # noqa: S101 - a stored row
        if receipt.kind == "refused":
            _refuse(env, s, receipt.id, mail, reason or "refused", now)
            report.refused += 1
            return Handled(REVIEW)
        if mail.auto_reply:
            finish_receipt(
                session=s,
                receipt_id=receipt.id,
                now=now,
                status=SKIPPED,
                reason="an automatic reply (out-of-office or delivery report): nothing sent",
            )
            s.commit()
            report.auto_replies += 1
            return Handled(HANDLED)
        assert staff is not None  # noqa: S101 - checked above
        assert student is not None  # noqa: S101 - checked above
        if receipt.kind == "student_reply":
            record_student_answer(env, s, receipt.id, mail, staff, student, now)
            report.recorded += 1
            return Handled(HANDLED)
        answer = StaffAnswer(
            receipt_id=receipt.id,
            staff_sis_id=staff.sis_id,
            staff_email=staff.email or mail.from_addr,
            student_sis_id=student.sis_id,
            student_name=student.display_name,
            text=drop_sign_off(
                mail.text,
                [staff.first_name or "", staff.preferred_name or "", staff.last_name or ""],
            ),
        )
        if not answer.text.strip():
            why = "the email had no new text above the quoted conversation"
            enqueue(session=s, rows=bounce_rows(answer, why, now))
            finish_receipt(session=s, receipt_id=receipt.id, now=now, status=DONE, reason=why)
            s.commit()
            report.bounced += 1
            return Handled(HANDLED)
        return answer


def _refuse(
    env: Env, s: Session, receipt_id: int, mail: IncomingMail, reason: str, now: Any
) -> None:
    """Keep the mail for review and tell the admins (no body in the report)."""
    finish_receipt(session=s, receipt_id=receipt_id, now=now, status=REFUSED, reason=reason)
    body = (
        "A mail reached the reply mailbox and was NOT sent to any student.\n\n"
        f"Why: {reason}.\n"
        f"From: {mail.from_addr or '(none)'}\n"
        f"Subject: {mail.subject or '(none)'}\n"
        f"Message-ID: {mail.message_id or '(none)'}\n\n"
        "It was moved to the review folder of the mailbox and kept in nudge: "
        "nudge mail review."
    )
    enqueue(
        session=s,
        rows=alert_rows(
            key=f"mail-review:{receipt_id}",
            recipients=env.settings.alert_emails,
            subject="nudge: a mail to the reply mailbox was refused",
            body=body,
            now=now,
        ),
    )
    s.commit()
    log.warning("reply mailbox: mail %s refused: %s", receipt_id, reason)


#: Message statuses of an answer that went (or is on its way).
_WENT = frozenset({"sending", "sent", "delivered"})
#: ... that waits for its time (quiet hours, a provider outage).
_WAITING = frozenset({"planned", "deferred"})


def why_not_sent(outcome: AnswerOutcome) -> str | None:
    """Why a staff member's answer did not go, in words for them; None when it went or
    waits for its time."""
    if outcome.campaign_status == "refused":
        return outcome.refused_reason or "the text was refused"
    if outcome.status in _WENT or outcome.status in _WAITING:
        return None
    if outcome.status is None:
        return outcome.refused_reason or f"nothing was planned ({outcome.campaign_status})"
    detail = outcome.error or outcome.reason or outcome.status
    if outcome.status == "skipped" and outcome.reason == "no_email_no_sms":
        return "the student cannot be texted and has no email address"
    return f"it ended {outcome.status} ({detail})"


def finish_answer(
    env: Env,
    answer: StaffAnswer,
    campaign_id: int | None,
    report: MailPollReport,
    refused_reason: str | None = None,
) -> None:
    """Record what became of a staff member's answer; bounce it back when it did not go
    (``refused_reason``: why no campaign was planned at all)."""
    now = env.now()
    with Session(env.engine) as s:
        outcome = (
            answer_outcome(session=s, campaign_id=campaign_id)
            if campaign_id is not None
            else AnswerOutcome(
                "refused", refused_reason or "nothing was planned", None, None, None, None
            )
        )
        why = why_not_sent(outcome)
        if why is None and outcome.status in _WAITING:
            report.deferred += 1
        elif why is None:
            report.sent += 1
            report.sent_by_email += outcome.channel == "email"
        else:
            report.bounced += 1
            enqueue(session=s, rows=bounce_rows(answer, why, now))
        finish_receipt(
            session=s,
            receipt_id=answer.receipt_id,
            now=now,
            status=DONE,
            campaign_id=campaign_id,
            reason=why[:300] if why else None,
            result={
                "channel": outcome.channel,
                "status": outcome.status,
                "campaign_status": outcome.campaign_status,
            },
        )
        s.commit()


def bounce_rows(answer: StaffAnswer, why: str, now: Any) -> list[dict[str, Any]]:
    """The short email telling a staff member their answer was not sent, and why."""
    quoted = "\n".join("    " + line for line in (answer.text.splitlines() or [""]))
    body = (
        f"Your answer to {answer.student_name} ({answer.student_sis_id}) was NOT sent.\n\n"
        f"Why: {why}.\n\n"
        f"Your text:\n{quoted}\n"
    )
    return alert_rows(
        key=f"mail-bounce:{answer.receipt_id}",
        recipients=[answer.staff_email],
        subject=f"Not sent: your answer to {answer.student_name}",
        body=body,
        now=now,
    )


__all__ = [
    "HANDLED",
    "REVIEW",
    "Handled",
    "MailPollReport",
    "StaffAnswer",
    "bounce_rows",
    "finish_answer",
    "mail_sid",
    "record_mail",
    "why_not_sent",
]
