"""Step 5 of the replies poll: refresh the delivery status of recent texts, and apply what a
carrier's error teaches.

:func:`refresh_statuses` fetches the status of recent SMS still in ``sent`` (bounded per
poll) and records the final ones. A failure's error class (decided once, in
``adapters.twilio.errors``) has consequences: a number that cannot take SMS is disabled
(30005, 30006, 21614, ...) and its owners' SMS numbers re-chosen; 21610 means the recipient
opted out (in the configured opt-out scope, :func:`domain.consent.opt_out_scope`); an
expired message (30036) is counted, never resent by itself; configuration errors are
logged for an admin. :func:`apply_status` is where one status is applied, forward only:
the webhook receiver's status callbacks (``tasks/webhooks.py``) go through it too. Numbers
never reach logs: counts and error codes only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from adapters.twilio.errors import ErrorClass
from adapters.twilio.types import ProviderMessage
from domain.config import SmsConfig
from domain.consent import opt_out_scope
from domain.routing import ConsentSource, ConsentState
from models.campaigns import disable_number
from models.config import load_config
from models.consent import set_consent
from models.delivery import SentSms, record_delivery, sms_awaiting_status
from models.people_sync import refresh_sms_number
from tasks.env import Env
from tasks.poll_options import ACTOR, PollOptions
from tasks.runtime import Stopwatch, run_logger

_FINAL = {
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
}


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


async def _fetch_statuses(env: Env, sids: Sequence[str]) -> list[ProviderMessage]:
    gateway = env.gateway_factory()
    try:
        return await gateway.fetch_statuses(sids)
    finally:
        await gateway.aclose()


def final_status(provider_status: str) -> str | None:
    """The outbox status a Twilio message status ends a text in (None: not final yet)."""
    return _FINAL.get(provider_status)


def apply_status(
    s: Session,
    *,
    config: SmsConfig,
    sms: SentSms,
    provider: ProviderMessage,
    now: datetime,
    report: StatusReport,
    disabled: set[str],
) -> bool:
    """Record the status Twilio reports for one text, forward only
    (:func:`models.delivery.record_delivery`), and apply what a failure teaches: a number
    that cannot take SMS is disabled (once per call: ``disabled`` collects them), 21610
    opts the recipient out in the configured scope. Returns whether the text moved; a
    status that is not final, or that comes after the text already moved (a late ``sent``
    after ``delivered``, a second callback), changes nothing and teaches nothing.

    The one place a delivery status is applied: the poll's refresh and the webhook
    receiver's status callback both call it."""
    status = final_status(provider.status)
    if status is None:
        return False
    values: dict[str, Any] = {"status": status}
    if status == "delivered":
        values["delivered_at"] = provider.date_updated or now
    else:
        values["error_code"] = provider.error_code
        values["error_message"] = f"delivery {status}: error {provider.error_code}"
    if not record_delivery(session=s, message_id=sms.id, now=now, **values):
        return False
    setattr(report, status, getattr(report, status) + 1)
    report.statuses_updated += 1
    if status == "delivered" or not sms.to_addr:
        return True
    error = provider.error_class
    if error is ErrorClass.NOT_SMS_CAPABLE and sms.to_addr not in disabled:
        disabled.add(sms.to_addr)
        for person_id in disable_number(session=s, e164=sms.to_addr, code=provider.error_code):
            refresh_sms_number(session=s, person_id=person_id, config=config)
    elif error is ErrorClass.OPTED_OUT:
        scope = opt_out_scope(config.opt_out_scope, sms.from_addr)
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
        # It waited in Twilio's queue past its validity (the recipient's window closed):
        # it was never sent, and is not resent by itself.
        report.expired += 1
    elif error is ErrorClass.FATAL:
        code = str(provider.error_code)
        report.fatal_codes[code] = report.fatal_codes.get(code, 0) + 1
    return True


@task(name="refresh-statuses", cache_policy=NO_CACHE)
def refresh_statuses(env: Env, options: PollOptions) -> StatusReport:
    """Update recent SMS still in ``sent`` from Twilio and apply what failures teach."""
    clock = Stopwatch()
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
            moved = provider is not None and apply_status(
                s,
                config=config,
                sms=sms,
                provider=provider,
                now=now,
                report=report,
                disabled=disabled,
            )
            if not moved:
                # Checked: rotate it to the back of the queue.
                record_delivery(session=s, message_id=sms.id, now=now)
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


__all__ = ["StatusReport", "apply_status", "final_status", "refresh_statuses"]
