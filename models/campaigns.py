"""Repository functions of planning a campaign: who may send, what is stored about the
recipients (consent, numbers already texted, carrier verdicts), and the plan as rows.

A campaign's status changes are :mod:`models.campaign_lifecycle`, its figures
:mod:`models.campaign_views`, cancelling it :mod:`models.cancel`. The caller owns the
session and commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlmodel import Session, col

from domain.campaign import PlannedRecipient
from domain.consent import INSTITUTION, StoredConsent
from domain.holdout import HOLDOUT_REASON
from domain.outbox import REACHED_PROVIDER, Kind, Status, values
from domain.roles import RoleFilter
from domain.routing import Channel
from models.bulk import chunked
from models.consent import Consent
from models.messaging import (
    Campaign,
    InboundMessage,
    Message,
    SendChunk,
    SenderNumber,
)
from models.outbox import email_body, email_subject
from models.roles import DynamicRole, RoleGrant

message_t = Message.__table__  # type: ignore[attr-defined]
chunk_t = SendChunk.__table__  # type: ignore[attr-defined]
consent_t = Consent.__table__  # type: ignore[attr-defined]


def granted_roles(*, session: Session, staff_sis_id: str) -> list[str]:
    """Static roles an admin granted to this staff member."""
    rows = session.execute(
        select(col(RoleGrant.role)).where(col(RoleGrant.staff_sis_id) == staff_sis_id)
    )
    return [r for (r,) in rows]


def dynamic_roles(*, session: Session) -> dict[str, RoleFilter]:
    """Every dynamic role, by name."""
    rows = session.execute(select(col(DynamicRole.name), col(DynamicRole.filter)))
    return {name: RoleFilter.model_validate(spec) for name, spec in rows}


def sender_number(*, session: Session, staff_person_id: int) -> SenderNumber | None:
    """The staff member's sender number row (active or still provisioning), if any."""
    stmt = select(SenderNumber).where(SenderNumber.staff_person_id == staff_person_id)  # type: ignore[arg-type]
    return session.execute(stmt).scalar_one_or_none()


def consents_for(
    *, session: Session, numbers: Sequence[str], sender_e164: str | None
) -> dict[str, tuple[StoredConsent | None, StoredConsent | None]]:
    """Institution-wide and this-sender consent rows of ``numbers``."""
    found: dict[str, list[StoredConsent | None]] = {}
    scopes = [INSTITUTION] + ([sender_e164] if sender_e164 else [])
    for batch in chunked(sorted(set(numbers))):
        rows = session.execute(
            select(
                consent_t.c.e164, consent_t.c.sender_e164, consent_t.c.status, consent_t.c.source
            ).where(consent_t.c.e164.in_(list(batch)), consent_t.c.sender_e164.in_(scopes))
        )
        for e164, scope, status, source in rows:
            slot = found.setdefault(e164, [None, None])
            slot[0 if scope == INSTITUTION else 1] = StoredConsent(status, source)
    return {k: (v[0], v[1]) for k, v in found.items()}


def texted_numbers(
    *, session: Session, sender_e164: str | None, numbers: Sequence[str]
) -> set[str]:
    """Numbers this sender number has texted (or that texted it): no opt-in notice needed."""
    if not sender_e164:
        return set()
    seen: set[str] = set()
    for batch in chunked(sorted(set(numbers))):
        seen.update(
            session.execute(
                select(message_t.c.to_addr).where(
                    message_t.c.from_addr == sender_e164,
                    message_t.c.channel == "sms",
                    message_t.c.status.in_(values(REACHED_PROVIDER)),
                    message_t.c.to_addr.in_(list(batch)),
                )
            ).scalars()
        )
        seen.update(
            session.execute(
                select(col(InboundMessage.from_e164)).where(
                    col(InboundMessage.to_e164) == sender_e164,
                    col(InboundMessage.from_e164).in_(list(batch)),
                )
            ).scalars()
        )
    return seen


def insert_plan(
    *,
    session: Session,
    campaign: Campaign,
    planned: Sequence[PlannedRecipient],
    held_out: Sequence[int] = (),
    sender_name: str,
    chunk_size: int,
    kind: str = "campaign",
    now: datetime,
) -> int:
    """Write the plan as message rows in chunks, in the caller's transaction.

    Unique (campaign, recipient, kind) makes this idempotent: planning the same campaign
    twice fails instead of doubling anything. The students of ``held_out`` (person ids) get
    one row each in status ``held_out`` (channel ``none``, reason ``holdout``, no body, no
    address, in no chunk): no send path ever selects it. Returns the number of chunks.
    """
    assert campaign.id is not None  # noqa: S101 - the campaign row was flushed
    order = sorted(planned, key=lambda p: (p.decision.send_at or now, p.member.id))
    subject = email_subject(sender_name)
    rows: list[tuple[int, list[dict[str, Any]]]] = []  # (chunk seq, messages)
    skipped: list[dict[str, Any]] = []
    seq, in_chunk = 0, 0
    for item in order:
        d, m = item.decision, item.member
        base = {
            "campaign_id": campaign.id,
            "person_id": m.id,
            "created_at": now,
            "updated_at": now,
            "extra": {},
        }
        if d.channel is Channel.NONE:
            skipped.append(
                {
                    **base,
                    "kind": kind,
                    "channel": "none",
                    "status": "skipped",
                    "reason": (d.sms_blocked or d.reason).value,
                    "body": item.body,
                }
            )
            continue
        if in_chunk >= chunk_size:
            seq, in_chunk = seq + 1, 0
        if not rows or rows[-1][0] != seq:
            rows.append((seq, []))
        in_chunk += 1
        messages = rows[-1][1]
        if d.channel is Channel.EMAIL:
            messages.append(
                {
                    **base,
                    "kind": kind,
                    "channel": "email",
                    "status": "planned",
                    "reason": d.reason.value,
                    "to_addr": m.email,
                    "subject": subject,
                    "body": email_body(item.body, sender_name),
                }
            )
            continue
        status = (Status.DEFERRED if d.send_at is not None else Status.PLANNED).value
        if item.notice is not None and item.notice_segments is not None:
            messages.append(
                {
                    **base,
                    "kind": Kind.OPT_IN_NOTICE.value,
                    "channel": "sms",
                    "status": status,
                    "reason": d.reason.value,
                    "to_addr": m.sms_e164,
                    "body": item.notice,
                    "segments": item.notice_segments.segments,
                    "encoding": item.notice_segments.encoding,
                    "send_after": d.send_at,
                }
            )
        messages.append(
            {
                **base,
                "kind": kind,
                "channel": "sms",
                "status": status,
                "reason": d.reason.value,
                "to_addr": m.sms_e164,
                "body": item.body,
                "segments": item.segments.segments,
                "encoding": item.segments.encoding,
                "send_after": d.send_at,
                "extra": {"auto_opt_in": True} if d.auto_opt_in else {},
            }
        )
    for seq_no, messages in rows:
        # Deferred (quiet hours) messages sort last: a chunk waits only if all of it waits.
        starts: list[datetime | None] = [msg.get("send_after") for msg in messages]
        deferred = [t for t in starts if t is not None]
        not_before = min(deferred) if len(deferred) == len(starts) else None
        chunk_id = session.execute(
            insert(chunk_t).returning(chunk_t.c.id),
            [
                {
                    "campaign_id": campaign.id,
                    "seq": seq_no,
                    "status": "pending",
                    "not_before": not_before,
                }
            ],
        ).scalar_one()
        for msg in messages:
            msg["chunk_id"] = chunk_id
    held = [
        {
            "campaign_id": campaign.id,
            "person_id": person_id,
            "created_at": now,
            "updated_at": now,
            "extra": {},
            "kind": kind,
            "channel": Channel.NONE.value,
            "status": Status.HELD_OUT.value,
            "reason": HOLDOUT_REASON,
            "body": "",
        }
        for person_id in held_out
    ]
    all_rows = [msg for _, messages in rows for msg in messages] + skipped + held
    for batch in chunked(all_rows):
        session.execute(insert(message_t), _normalise(batch))
    return len(rows)


_MESSAGE_KEYS = (
    "campaign_id",
    "person_id",
    "chunk_id",
    "kind",
    "channel",
    "status",
    "reason",
    "to_addr",
    "from_addr",
    "subject",
    "body",
    "segments",
    "encoding",
    "send_after",
    "created_at",
    "updated_at",
    "extra",
)


def _normalise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    # executemany needs every row to carry the same keys.
    defaults: dict[str, Any] = {
        "chunk_id": None,
        "to_addr": None,
        "from_addr": None,
        "subject": None,
        "segments": 0,
        "encoding": None,
        "send_after": None,
    }
    return [{k: row.get(k, defaults.get(k)) for k in _MESSAGE_KEYS} for row in rows]


def disable_number(*, session: Session, e164: str, code: int | None) -> list[int]:
    """Mark every stored row of ``e164`` as disabled by the carrier; returns the people."""
    from models.people import PhoneNumber

    phone_t = PhoneNumber.__table__  # type: ignore[attr-defined]
    people = list(
        session.execute(
            select(phone_t.c.person_id).where(phone_t.c.e164 == e164).distinct()
        ).scalars()
    )
    session.execute(
        update(phone_t)
        .where(phone_t.c.e164 == e164)
        .values(disabled_by_carrier=True, carrier_error_code=code)
    )
    return people


def by_request_key(*, session: Session, request_key: str) -> Campaign | None:
    """The campaign an earlier identical request created (idempotent ``run_deployment``)."""
    return session.execute(
        select(Campaign).where(col(Campaign.request_key) == request_key)
    ).scalar_one_or_none()
