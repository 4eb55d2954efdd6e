"""The rules around a staff member's reply to one student (``nudge reply``).

The reply itself is a one-student campaign of kind ``reply``, sent through the same router
and send path as every campaign (``flows/poll_replies.py`` runs it: opt-out, quota and
quiet hours apply). What is particular to a reply is decided here:

* :func:`check_reply`: the sender must be a staff member and the recipient an active
  student; whether the two already have a conversation (inside one any staff member may
  reply, whatever their role; otherwise the normal permission check applies);
* :func:`reply_request`: the text is sent as written (braces are not template variables);
* :func:`mark_replied`: a reply that went out marks the conversation's replies read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from domain.audience import AudienceFilter
from domain.campaign import CampaignRequest
from models.conversations import conversation_exists, mark_read
from models.people import NoSuchStaff, staff_by_sis_id
from models.people import person_by_sis_id as find_person
from models.types import utcnow


@dataclass(frozen=True, slots=True)
class Conversation:
    """A reply that may go ahead: from this staff member to this student, and whether it
    answers an existing conversation (the staff member's number texted the student, or the
    student texted it)."""

    staff_person_id: int
    student_person_id: int
    exists: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """A reply refused before anything was planned, and why."""

    reason: str

    def result(self) -> dict[str, Any]:
        """What ``nudge reply`` reports for it (nothing planned, nothing marked read)."""
        return {
            "campaign_id": None,
            "status": "refused",
            "refused_reason": self.reason,
            "conversation": False,
            "marked_read": 0,
        }


def check_reply(db: Engine, *, sender_id: str, student_id: str) -> Conversation | Refused:
    """May staff member ``sender_id`` reply to student ``student_id`` (SIS ids)? Refused
    unless the sender is a staff member and the recipient an active student."""
    with Session(db) as s:
        staff = staff_by_sis_id(session=s, sis_id=sender_id)
        student = find_person(session=s, sis_id=student_id)
        staff_pk = staff.id if staff is not None else None
        student_pk = student.id if student is not None else None
        if staff_pk is None:
            return Refused(str(NoSuchStaff(sender_id)))
        if student is None or student_pk is None or student.role != "student":
            return Refused(f"no student with SIS id {student_id!r}")
        if student.status != "active":
            return Refused(f"student {student_id} is inactive")
        exists = conversation_exists(
            session=s, staff_person_id=staff_pk, student_person_id=student_pk
        )
    return Conversation(staff_pk, student_pk, exists)


def reply_request(*, sender_id: str, student_id: str, message: str) -> CampaignRequest:
    """The one-student campaign request of a reply; ``message`` is sent as written (its
    braces are escaped, so they are not template variables)."""
    literal = message.replace("{", "{{").replace("}", "}}")
    return CampaignRequest(
        sender_id=sender_id, message=literal, audience=AudienceFilter(student_ids=[student_id])
    )


def mark_replied(db: Engine, to: Conversation, result: dict[str, Any]) -> dict[str, Any]:
    """Complete the campaign ``result`` of a reply: whether it answered a conversation, and
    how many of the student's replies it marked read (all unread ones, when it was not
    refused)."""
    result["conversation"] = to.exists
    result["marked_read"] = 0
    if result.get("campaign_id") is not None and result.get("status") != "refused":
        with Session(db) as s:
            result["marked_read"] = mark_read(
                session=s,
                staff_person_id=to.staff_person_id,
                student_person_id=to.student_person_id,
                now=utcnow(),
            )
            s.commit()
    return result


__all__ = ["Conversation", "Refused", "check_reply", "mark_replied", "reply_request"]
