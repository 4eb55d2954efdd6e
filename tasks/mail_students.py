"""A student's answer by email to a fallback email: recorded in their thread, once.

The answer becomes an inbound message on the email channel, with its staff notification
(and, when urgent, its on-call alerts) queued in the same transaction as the receipt that
says the mail was handled (``tasks/mailbox.py`` calls :func:`record_student_answer`). An
answer asking for the texts to stop ("STOP", "please stop texting me") is no carrier
keyword by email: it pauses the student's numbers for review, as such a text does.
"""

from __future__ import annotations

import hashlib
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from domain.config import SmsConfig
from domain.consent import INSTITUTION, keyword_consent_changes
from domain.keywords import Keyword, classify_keyword
from domain.mail_text import IncomingMail
from domain.revocation import detect_revocation
from domain.urgent import detect_urgent
from models.config import load_config
from models.consent import apply_changes, institution_consent
from models.inbound import insert_inbound
from models.mailbox import finish_receipt
from models.notifications import replies_to_notify
from models.outbox_loose import enqueue
from models.people import Person, student_numbers
from tasks.env import Env
from tasks.notify import notification_rows
from tasks.urgent import emit_urgent_events, queue_urgent

#: Receipt status of a mail acted on.
DONE = "done"


def mail_sid(key: str) -> str:
    """The ``inbound_message.provider_sid`` of a student's email answer (unique per mail)."""
    return "EM" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def record_student_answer(
    env: Env,
    s: Session,
    receipt_id: int,
    mail: IncomingMail,
    staff: Person,
    student: Person,
    now: Any,
) -> None:
    """The student's email answer in their thread, its staff notification in the outbox
    and the receipt done — one transaction. An urgent answer (crisis or safety phrases,
    :func:`domain.urgent.detect_urgent`) also gets its on-call alerts, queued before the
    notification (:func:`tasks.urgent.queue_urgent`; no crisis-line answer by text to an
    email), and its ``nudge.reply.urgent`` event after the commit."""
    sid = mail_sid(mail.key)
    config = load_config(session=s)
    body = mail.text or mail.full_text
    crisis = detect_urgent(body, config.urgent_phrases)
    stop = asks_to_stop(config, body)
    inserted = insert_inbound(
        session=s,
        rows=[
            {
                "provider_sid": sid,
                "from_e164": "",
                "to_e164": "",
                "channel": "email",
                "from_email": mail.from_addr[:320],
                "body": body,
                "received_at": now,
                "person_id": student.id,
                "staff_person_id": staff.id,
                "in_reply_to_id": None,
                "keyword": "none",
                "flagged_phrase": stop[:200] if stop else None,
                "urgent_phrase": crisis[:200] if crisis else None,
                "handled": True,
                "notified": False,
                "read_at": None,
                "created_at": now,
            }
        ],
    )
    if stop and inserted and student.id is not None:
        pause_for_review(s, student.id, stop, body, sid, now)
    urgent = queue_urgent(s, env, config, list(inserted.values()), now)
    notices = notification_rows(
        replies_to_notify(session=s, inbound_ids=list(inserted.values())),
        ZoneInfo(config.timezone),
        now,
        reply_by_email=bool(env.settings.reply_address),
    )
    enqueue(session=s, rows=notices)
    finish_receipt(
        session=s,
        receipt_id=receipt_id,
        now=now,
        status=DONE,
        inbound_id=next(iter(inserted.values()), None),
    )
    s.commit()
    emit_urgent_events(urgent.replies)  # after the commit: a crash loses the event only


def asks_to_stop(config: SmsConfig, body: str) -> str | None:
    """What in a student's email answer asks for the texts to stop: ``STOP`` (or another
    opt-out keyword, in the configured languages) as the whole answer, or a review phrase
    ("please stop texting me"); None otherwise. By email it is no carrier keyword: nudge
    pauses the student's numbers for review instead (:func:`pause_for_review`)."""
    if classify_keyword(body, config.keyword_languages) is Keyword.STOP:
        return body.strip()[:40]
    return detect_revocation(body, config.revocation_phrases, config.keyword_languages)


def pause_for_review(
    s: Session, student_id: int, phrase: str, body: str, sid: str, now: Any
) -> None:
    """Pause every number of the student institution-wide for review, as a text read as a
    request to stop does (:func:`domain.consent.keyword_consent_changes`), with the audit
    trail naming the email; a number already opted out stays so."""
    for number in sorted(student_numbers(session=s, person_id=student_id)):
        row = institution_consent(session=s, e164=number)
        apply_changes(
            session=s,
            e164=number,
            changes=keyword_consent_changes(
                Keyword.NONE,
                phrase,
                said=body.strip()[:20],
                scope=INSTITUTION,
                institution_status=row.status if row is not None else None,
            ),
            actor="poll-mailbox",
            inbound_sid=sid,
            at=now,
            reason_prefix="by email: ",
        )


__all__ = ["asks_to_stop", "mail_sid", "pause_for_review", "record_student_answer"]
