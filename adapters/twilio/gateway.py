"""The SMS gateway: :class:`TwilioSmsGateway`, over the official ``twilio`` SDK (async).

It talks to Twilio or, when ``TwilioConfig.base_url`` is set, to the sandbox emulator
(:mod:`adapters.twilio.http`). ``send()`` never raises for a provider outcome: it returns a
:class:`~adapters.twilio.types.SendResult` whose outcome is the failure's class (the
taxonomy is :mod:`adapters.twilio.errors`). Reads (lists, fetches) retry retriable and
ambiguous failures alike (they are idempotent) and raise a
:class:`~adapters.twilio.errors.GatewayError` subclass when they give up. Retries are
bounded (:mod:`adapters.twilio.retries`).

Validity period: ``send(validity_period_s=N)`` passes Twilio's ``ValidityPeriod``, the
longest a message may wait in Twilio's queue before Twilio drops it (30036) instead of
sending it late. Twilio accepts whole seconds from 1 to 36,000 and refuses anything else
(21624), so the gateway clamps to that range rather than lose the send; ``None`` sends no
value (Twilio's default, 36,000 s). A value below 1 becomes 1: a caller whose window is
already closed should not be sending at all.

Fencing: ``send(not_after=T)`` takes a ``time.monotonic()`` deadline after which no attempt
may start, neither the first nor a retry after its backoff. The send path marks a message
``sending`` before calling the provider, and once the takeover's in-flight bound has passed
another worker may reconcile that message against the provider's list and send it again. A
process that was paused (GC, swap, SIGSTOP, a stalled event loop) and wakes up after that
must not start a call of its own, or the student gets the text twice. The deadline is
checked in one place, immediately before each create (after any backoff sleep); it bounds
when a call may start, not when it ends, so the caller's in-flight bound must exceed
``not_after`` by at least the HTTP timeout (``TwilioConfig.timeout_s``).

One gateway belongs to one event loop (its aiohttp session is created on first use); close
it with ``await gateway.aclose()`` or ``async with``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

from twilio.base import values

from adapters.twilio.config import TwilioConfig
from adapters.twilio.errors import (
    PROVIDER_ERRORS,
    GatewayError,
    ProviderRejected,
    ProviderUnavailable,
    RetriableError,
    SendOutcome,
    error_from,
)
from adapters.twilio.http import RewritingAsyncHttpClient, sdk_client
from adapters.twilio.numbers import provision_number
from adapters.twilio.retries import RetryPolicy, with_retries
from adapters.twilio.types import ProviderMessage, ProvisionedNumber, SendResult
from domain.masking import mask_phone

logger = logging.getLogger("nudge.twilio")
T = TypeVar("T")

#: Twilio's range for ``ValidityPeriod`` (seconds); its default is the maximum.
MIN_VALIDITY_S = 1
MAX_VALIDITY_S = 36_000


class TwilioSmsGateway:
    """:class:`~adapters.twilio.types.SmsGateway` over the official SDK (async), against
    Twilio or the emulator."""

    def __init__(
        self,
        config: TwilioConfig,
        *,
        retry: RetryPolicy | None = None,
        max_connections: int = 100,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        http_client: RewritingAsyncHttpClient | None = None,
    ) -> None:
        """``retry`` defaults to ``config.max_retries`` retries; ``sleep`` and
        ``http_client`` are injectable for tests (a recording client, an instant sleep)."""
        self._config = config
        self._retry = retry or RetryPolicy(max_retries=config.max_retries)
        self._sleep = sleep
        self._http = http_client or RewritingAsyncHttpClient(
            config.base_url, timeout_s=config.timeout_s, max_connections=max_connections
        )
        self._client = sdk_client(config, self._http)
        # The SDK imports the 2010 API lazily (~0.5 s): pay it here, not in the first send.
        self._messages = self._client.api.v2010.account.messages

    def __repr__(self) -> str:
        target = self._config.base_url or "https://api.twilio.com"
        return f"<TwilioSmsGateway {target}>"

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent)."""
        await self._http.close()

    async def __aenter__(self) -> TwilioSmsGateway:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _with_retries(
        self, attempt: Callable[[int], Awaitable[T]], *, retry_on: type[GatewayError]
    ) -> T:
        return await with_retries(attempt, policy=self._retry, retry_on=retry_on, sleep=self._sleep)

    # --- sending ----------------------------------------------------------------------

    async def send(
        self,
        *,
        to: str,
        from_: str | None,
        body: str,
        messaging_service_sid: str | None = None,
        validity_period_s: int | None = None,
        not_after: float | None = None,
    ) -> SendResult:
        """Send one SMS; with no ``from_``, through the Messaging Service (argument or
        config). Retries retriable failures within the policy; never retries ambiguous
        ones; never raises for provider outcomes.

        ``validity_period_s`` is sent as ``ValidityPeriod``, clamped to 1..36000 (None sends
        nothing: Twilio's default, 36000). ``not_after`` is a ``time.monotonic()`` deadline:
        no attempt starts at or after it (see "Fencing" in the module docstring).
        """
        service = messaging_service_sid
        if service is None and from_ is None:
            service = self._config.messaging_service_sid
        validity = (
            values.unset
            if validity_period_s is None
            else min(max(validity_period_s, MIN_VALIDITY_S), MAX_VALIDITY_S)
        )
        attempts = 0
        requested_at = datetime.now(UTC)
        last: RetriableError | None = None

        async def attempt(number: int) -> SendResult:
            nonlocal attempts, requested_at, last
            # The one deadline check: here, after any backoff, right before the create.
            if not_after is not None and time.monotonic() >= not_after:
                return _too_late(last, attempts, requested_at)
            attempts, requested_at = number, datetime.now(UTC)
            try:
                return await self._send_once(
                    to, from_, body, service, validity, number, requested_at
                )
            except RetriableError as exc:
                last = exc
                raise

        try:
            result = await self._with_retries(attempt, retry_on=RetriableError)
        except RetriableError as exc:
            # Retriable failures outlasted the retries: the last one, as a result.
            result = SendResult.failed(exc, attempts=attempts, requested_at=requested_at)
        return self._log_result(result, to)

    async def _send_once(
        self,
        to: str,
        from_: str | None,
        body: str,
        service: str | None,
        validity: object,
        attempts: int,
        requested_at: datetime,
    ) -> SendResult:
        """One create; raises :class:`RetriableError`, returns any other outcome."""
        try:
            record = await self._messages.create_async(
                to=to,
                from_=from_ if from_ is not None else values.unset,
                body=body,
                messaging_service_sid=service if service is not None else values.unset,
                validity_period=validity,
                status_callback=self._config.status_callback or values.unset,
            )
        except (*PROVIDER_ERRORS, ValueError) as exc:
            # ValueError: a 2xx whose body we could not read (ambiguous: it probably exists).
            error = error_from(exc)
            if isinstance(error, RetriableError):
                raise error from exc
            return SendResult.failed(error, attempts=attempts, requested_at=requested_at)
        return SendResult.accepted(record, attempts=attempts, requested_at=requested_at)

    def _log_result(self, result: SendResult, to: str) -> SendResult:
        level = logging.INFO if result.outcome is SendOutcome.SENT else logging.WARNING
        logger.log(
            level,
            "sms to %s: %s (attempts=%d, code=%s)",
            mask_phone(to),
            result.outcome.value,
            result.attempts,
            result.error_code or result.http_status,
        )
        return result

    async def find_message(
        self,
        *,
        to: str,
        from_: str | None,
        body: str,
        sent_after: datetime,
        sent_before: datetime | None = None,
        clock_skew: timedelta = timedelta(minutes=2),
    ) -> ProviderMessage | None:
        """Find the outbound message an ambiguous send may have created (newest match).

        Lists the messages To (and From) the number, newest first by ``DateSent``, and stops
        at the first one sent before ``sent_after - clock_skew``: it was created before that,
        and so was everything listed after it. Messages with no send date (still queued, or
        failed, listed first however old) are checked by creation date, never stopped at.
        """
        lower = _as_utc(sent_after).replace(microsecond=0) - clock_skew
        upper = _as_utc(sent_before) + clock_skew if sent_before is not None else None
        pages = self.list_messages(to=to, from_=from_)
        async with contextlib.aclosing(pages):
            async for message in pages:
                created = message.date_created
                if message.date_sent is not None and message.date_sent < lower:
                    break
                if created is None or created < lower:
                    continue
                if upper is not None and created > upper:
                    continue
                if message.direction == "outbound-api" and message.body == body:
                    return message
        return None

    # --- reading ----------------------------------------------------------------------

    async def _call(self, operation: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:
        """Run one SDK call with retries; raise a GatewayError subclass when it gives up.

        Retriable failures are retried; ambiguous ones too when the call is idempotent.
        """

        async def attempt(_number: int) -> T:
            try:
                return await operation()
            except PROVIDER_ERRORS as exc:
                raise error_from(exc) from exc

        retry_on = ProviderUnavailable if idempotent else RetriableError
        return await self._with_retries(attempt, retry_on=retry_on)

    async def list_messages(
        self,
        *,
        to: str | None = None,
        from_: str | None = None,
        sent_after: datetime | date | None = None,
        sent_before: datetime | date | None = None,
        page_size: int = 50,
    ) -> AsyncGenerator[ProviderMessage, None]:
        """Messages newest first, following ``next_page_uri`` (which keeps the filters).

        ``sent_after``/``sent_before`` filter on the send date, inclusive, by whole GMT days:
        Twilio ignores a ``datetime``'s time of day and uses its GMT date (naive ones are
        refused). Messages with no send date yet (queued, receiving) match no date filter.
        """
        filters: dict[str, Any] = {"page_size": page_size}
        if to is not None:
            filters["to"] = to
        if from_ is not None:
            filters["from_"] = from_
        if sent_after is not None:
            filters["date_sent_after"] = _date_param(sent_after)
        if sent_before is not None:
            filters["date_sent_before"] = _date_param(sent_before, end_of_day=True)
        messages = self._messages
        page = await self._call(lambda: messages.page_async(**filters), idempotent=True)
        while page is not None:
            for record in page:
                yield ProviderMessage.from_record(record)
            current = page
            page = await self._call(current.next_page_async, idempotent=True)

    async def list_inbound(
        self, *, since_day: date, to: str | None = None, page_size: int = 1000
    ) -> AsyncGenerator[ProviderMessage, None]:
        """Inbound messages sent on or after ``since_day`` (GMT), to ``to`` if given."""
        pages = self.list_messages(to=to, sent_after=since_day, page_size=page_size)
        async with contextlib.aclosing(pages):
            async for message in pages:
                if message.is_inbound:
                    yield message

    async def fetch_statuses(
        self, sids: Sequence[str], *, concurrency: int = 10
    ) -> list[ProviderMessage]:
        """Fetch each message (``concurrency`` at a time), in the order given; SIDs Twilio
        does not know (404) are left out."""
        gate = asyncio.Semaphore(concurrency)

        async def fetch(sid: str) -> ProviderMessage | None:
            async with gate:
                try:
                    record = await self._call(self._messages(sid).fetch_async, idempotent=True)
                except ProviderRejected as exc:
                    if exc.http_status == 404:
                        logger.warning("message %s not found at the provider", sid)
                        return None
                    raise
                return ProviderMessage.from_record(record)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(fetch(sid)) for sid in sids]
        return [m for m in (task.result() for task in tasks) if m is not None]

    # --- provisioning -----------------------------------------------------------------

    async def provision_number(
        self,
        *,
        area_code: str | None,
        country: str | None = None,
        friendly_name: str | None = None,
        messaging_service_sid: str | None = None,
    ) -> ProvisionedNumber:
        """Buy an SMS-capable local number and, optionally, add it to a Messaging Service
        (see :func:`adapters.twilio.numbers.provision_number`).

        ``country`` defaults to the config's; ``messaging_service_sid`` to the config's
        service (none if unset).
        """
        return await provision_number(
            self._client,
            self._call,
            area_code=area_code,
            country=country or self._config.country,
            friendly_name=friendly_name,
            service=messaging_service_sid or self._config.messaging_service_sid,
        )


def _too_late(last: RetriableError | None, attempts: int, requested_at: datetime) -> SendResult:
    """``not_after`` passed before an attempt could start.

    Before the first attempt nothing was sent. Before a retry, the earlier attempt failed
    retriably, i.e. certainly did not send: report that failure, as when retries run out.
    """
    if last is not None:
        return SendResult.failed(last, attempts=attempts, requested_at=requested_at)
    return SendResult(
        outcome=SendOutcome.NOT_ATTEMPTED,
        requested_at=datetime.now(UTC),
        attempts=0,
        message="not attempted: the send deadline (not_after) had passed",
    )


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware (preferably UTC) datetime")
    return moment.astimezone(UTC)


def _date_param(value: datetime | date, *, end_of_day: bool = False) -> str:
    """A DateSent filter value: a UTC instant, never a local time.

    A ``date`` becomes the first (or last) second of that GMT day: Twilio also takes a bare
    ``YYYY-MM-DD``, but its OpenAPI description declares ``date-time``.
    """
    if isinstance(value, datetime):
        return _as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{value.isoformat()}T{'23:59:59' if end_of_day else '00:00:00'}Z"
