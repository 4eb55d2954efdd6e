"""Sender numbers: the Twilio number each staff member texts from, bought on their first SMS.

Two workers sending a staff member's first campaign at once buy one number: the first to
insert the ``provisioning`` row buys it, the others wait for it (or take over an attempt
that went stale).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from adapters.twilio_gateway import SmsGateway
from domain.masking import mask_phone
from models.messaging import SenderNumber
from models.people import Person
from tasks.outbox import SendEnv
from tasks.runtime import run_logger

sender_t = SenderNumber.__table__  # type: ignore[attr-defined]


async def ensure_sender_number(env: SendEnv, gateway: SmsGateway, staff: Person) -> str:
    """The staff member's sender number, provisioned through Twilio on their first SMS.

    Two concurrent first sends provision one number: the first to insert the
    ``provisioning`` row buys it, the others wait for it (or take over a stale attempt).
    """
    assert staff.id is not None  # noqa: S101 - a stored person
    deadline = env.now() + timedelta(seconds=90)
    while True:
        with Session(env.engine) as s:
            row = s.execute(select(sender_t).where(sender_t.c.staff_person_id == staff.id)).first()
            if row is not None and row.status == "active" and row.e164:
                return str(row.e164)
            mine = False
            if row is None:
                try:
                    s.execute(
                        sender_t.insert().values(
                            staff_person_id=staff.id,
                            status="provisioning",
                            created_at=env.now(),
                            updated_at=env.now(),
                        )
                    )
                    s.commit()
                    mine = True
                except IntegrityError:
                    s.rollback()
            elif row.updated_at < env.now() - timedelta(minutes=2):
                mine = bool(
                    s.execute(
                        update(sender_t)
                        .where(
                            sender_t.c.id == row.id,
                            sender_t.c.status == "provisioning",
                            sender_t.c.updated_at == row.updated_at,
                        )
                        .values(updated_at=env.now())
                    ).rowcount  # type: ignore[attr-defined]
                )
                s.commit()
        if mine:
            return await _provision(env, gateway, staff)
        if env.now() > deadline:
            raise TimeoutError(f"sender number of {staff.sis_id} is still being provisioned")
        await asyncio.sleep(0.2)


async def _provision(env: SendEnv, gateway: SmsGateway, staff: Person) -> str:
    try:
        bought = await gateway.provision_number(
            area_code=env.settings.twilio_area_code,
            country=env.settings.twilio_country,
            friendly_name=f"nudge {staff.sis_id}",
        )
    except BaseException:
        with Session(env.engine) as s:  # let the next attempt try again
            s.execute(
                sender_t.delete().where(
                    sender_t.c.staff_person_id == staff.id, sender_t.c.status == "provisioning"
                )
            )
            s.commit()
        raise
    with Session(env.engine) as s:
        s.execute(
            update(sender_t)
            .where(sender_t.c.staff_person_id == staff.id)
            .values(
                e164=bought.phone_number,
                provider_sid=bought.sid,
                status="active",
                updated_at=env.now(),
            )
        )
        s.commit()
    run_logger().info(
        "sender number %s provisioned for %s", mask_phone(bought.phone_number), staff.sis_id
    )
    return bought.phone_number


__all__ = ["ensure_sender_number"]
