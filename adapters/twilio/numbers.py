"""Buying sender numbers: search near an area code, buy one, join a Messaging Service.

The gateway's :meth:`~adapters.twilio.gateway.TwilioSmsGateway.provision_number` runs
:func:`provision_number` with its SDK client and its retrying call.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from twilio.rest import Client

from adapters.twilio.errors import AmbiguousError, ProviderRejected
from adapters.twilio.types import ProvisionedNumber
from domain.masking import mask_phone

logger = logging.getLogger("nudge.twilio")
T = TypeVar("T")

#: Codes that mean "this number was bought by someone else since we searched".
_NUMBER_TAKEN = 21422
_ALREADY_IN_SERVICE = 21710


class Call(Protocol):
    """Runs one SDK call with retries, raising a ``GatewayError`` subclass when it gives up;
    ambiguous failures are retried only when ``idempotent``."""

    def __call__(
        self, operation: Callable[[], Awaitable[T]], *, idempotent: bool
    ) -> Awaitable[T]: ...


async def provision_number(
    client: Client,
    call: Call,
    *,
    area_code: str | None,
    country: str,
    friendly_name: str | None,
    service: str | None,
) -> ProvisionedNumber:
    """Buy an SMS-capable local number in ``country`` and add it to ``service`` if given.

    Searches ``area_code`` first and falls back to any area code when it has none. A number
    bought by someone else meanwhile is skipped; raises
    :class:`~adapters.twilio.errors.ProviderRejected` when none is left.
    """
    candidates = await _search(client, call, country, area_code)
    fell_back = False
    if not candidates and area_code:
        logger.info("no numbers in area code %s; searching the whole country", area_code)
        candidates = await _search(client, call, country, None)
        fell_back = True
    if not candidates:
        raise ProviderRejected(f"no SMS-capable local numbers available in {country}")
    bought = await _buy_first(client, call, candidates, friendly_name)
    if service:
        await _join_service(client, call, service, str(bought.sid))
    logger.info("provisioned sender number %s", mask_phone(bought.phone_number))
    return ProvisionedNumber(
        sid=str(bought.sid),
        phone_number=str(bought.phone_number),
        friendly_name=bought.friendly_name,
        requested_area_code=area_code,
        fell_back=fell_back,
        messaging_service_sid=service,
    )


async def _search(client: Client, call: Call, country: str, area_code: str | None) -> list[str]:
    local = client.available_phone_numbers(country).local
    filters: dict[str, Any] = {"sms_enabled": True, "limit": 20}
    if area_code:
        filters["area_code"] = int(area_code)
    found = await call(lambda: local.list_async(**filters), idempotent=True)
    return [str(n.phone_number) for n in found]


async def _buy_first(
    client: Client, call: Call, candidates: list[str], friendly_name: str | None
) -> Any:
    numbers = client.incoming_phone_numbers
    for phone_number in candidates[:5]:
        options: dict[str, Any] = {"phone_number": phone_number}
        if friendly_name:
            options["friendly_name"] = friendly_name
        try:
            return await call(functools.partial(numbers.create_async, **options), idempotent=False)
        except ProviderRejected as exc:
            if exc.code != _NUMBER_TAKEN:
                raise
        except AmbiguousError:
            # The purchase may have gone through: look before buying another one.
            lookup = functools.partial(numbers.list_async, phone_number=phone_number, limit=1)
            owned = await call(lookup, idempotent=True)
            if owned:
                return owned[0]
            raise
    raise ProviderRejected("every candidate number was taken meanwhile")


async def _join_service(client: Client, call: Call, service_sid: str, number_sid: str) -> None:
    pool = client.messaging.v1.services(service_sid).phone_numbers
    try:
        await call(lambda: pool.create_async(phone_number_sid=number_sid), idempotent=True)
    except ProviderRejected as exc:
        if exc.code != _ALREADY_IN_SERVICE:
            raise
