"""Sender numbers: the Twilio number each staff member texts from, bought on their first SMS.

Two workers sending a staff member's first campaign at once buy one number: the first to
insert the ``provisioning`` row buys it, the others wait for it (or take over an attempt
that went stale).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import Session

from adapters.twilio.types import SmsGateway
from domain.masking import mask_phone
from models.people import Person
from models.senders import (
    ACTIVE,
    CONFLICT,
    abandon_provisioning,
    activate,
    holder_of,
    sender_row,
    start_provisioning,
    take_over_stale,
)
from tasks.env import Env
from tasks.runtime import run_logger


class SenderNumberConflict(RuntimeError):
    """The number Twilio sold is already on record for another staff member: sending from
    it would mix two people's conversations. An admin resolves it (``nudge senders``)."""


#: A provisioning attempt that went quiet this long is taken over by another worker.
STALE_PROVISIONING = timedelta(minutes=2)


async def ensure_sender_number(env: Env, gateway: SmsGateway, staff: Person) -> str:
    """The staff member's sender number, provisioned through Twilio on their first SMS.

    Two concurrent first sends provision one number: the first to insert the
    ``provisioning`` row buys it, the others wait for it (or take over a stale attempt). A
    number already on record for someone else ends in :class:`SenderNumberConflict`, at
    once and on every later attempt, until an admin resolves it.
    """
    assert staff.id is not None  # noqa: S101 - a stored person
    deadline = env.now() + timedelta(seconds=90)
    while True:
        with Session(env.engine) as s:
            row = sender_row(session=s, staff_person_id=staff.id)
            if row is not None and row.status == ACTIVE and row.e164:
                return row.e164
            if row is not None and row.status == CONFLICT:
                raise SenderNumberConflict(_conflict_message(staff, row.provider_sid))
            if row is None:
                mine = start_provisioning(session=s, staff_person_id=staff.id, now=env.now())
            else:
                mine = take_over_stale(session=s, row=row, now=env.now(), stale=STALE_PROVISIONING)
            s.commit()
        if mine:
            return await _provision(env, gateway, staff)
        if env.now() > deadline:
            raise TimeoutError(f"sender number of {staff.sis_id} is still being provisioned")
        await asyncio.sleep(0.2)


def _conflict_message(staff: Person, provider_sid: str | None, holder: str | None = None) -> str:
    owner = f" (it is on record for {holder})" if holder else ""
    return (
        f"the number Twilio sold for {staff.sis_id} (SID {provider_sid}) is already another "
        f"staff member's sender number{owner}. Release or reassign it in the Twilio console, "
        f"then run `nudge senders reset {staff.sis_id}` and `nudge campaigns resume ID`."
    )


async def _provision(env: Env, gateway: SmsGateway, staff: Person) -> str:
    assert staff.id is not None  # noqa: S101 - a stored person
    try:
        bought = await gateway.provision_number(
            area_code=env.settings.twilio_area_code,
            country=env.settings.twilio_country,
            friendly_name=f"nudge {staff.sis_id}",
        )
    except BaseException:
        with Session(env.engine) as s:  # let the next attempt try again
            abandon_provisioning(session=s, staff_person_id=staff.id)
            s.commit()
        raise
    with Session(env.engine) as s:
        ok = activate(
            session=s,
            staff_person_id=staff.id,
            e164=bought.phone_number,
            provider_sid=bought.sid,
            now=env.now(),
        )
        holder = None if ok else holder_of(session=s, e164=bought.phone_number)
        s.commit()
    if not ok:
        raise SenderNumberConflict(_conflict_message(staff, bought.sid, holder))
    run_logger().info(
        "sender number %s provisioned for %s", mask_phone(bought.phone_number), staff.sis_id
    )
    return bought.phone_number


__all__ = ["SenderNumberConflict", "ensure_sender_number"]
