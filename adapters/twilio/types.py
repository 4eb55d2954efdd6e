"""What the SMS gateway hands back, and :class:`SmsGateway`, the protocol it implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from adapters.twilio.errors import ErrorClass, GatewayError, SendOutcome, classify


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of one ``send()``.

    ``sid``/``status``/``num_segments``/``from_`` are set when ``outcome`` is ``sent``;
    ``error_code``/``http_status``/``message`` (numbers masked) describe the last failure
    otherwise. ``requested_at`` (UTC) is when the last attempt started: pass it as
    ``sent_after`` to :meth:`SmsGateway.find_message` to reconcile an ambiguous outcome.
    With ``not_attempted``, ``attempts`` is 0 and ``requested_at`` is when ``send()`` gave up.
    """

    outcome: SendOutcome
    requested_at: datetime
    attempts: int
    sid: str | None = None
    status: str | None = None
    num_segments: int | None = None
    from_: str | None = None
    error_code: int | None = None
    http_status: int | None = None
    message: str | None = None

    @classmethod
    def accepted(cls, record: Any, *, attempts: int, requested_at: datetime) -> SendResult:
        """A create the provider accepted; ``record`` is the SDK's message instance."""
        return cls(
            outcome=SendOutcome.SENT,
            requested_at=requested_at,
            attempts=attempts,
            sid=record.sid,
            status=record.status,
            num_segments=_to_int(record.num_segments),
            from_=record.from_,
        )

    @classmethod
    def failed(cls, error: GatewayError, *, attempts: int, requested_at: datetime) -> SendResult:
        """A send that ended with ``error``: its class decides the outcome."""
        return cls(
            outcome=error.outcome,
            requested_at=requested_at,
            attempts=attempts,
            error_code=error.code,
            http_status=error.http_status,
            message=str(error),
        )


@dataclass(frozen=True, slots=True)
class ProviderMessage:
    """A message as Twilio lists it (dates are UTC)."""

    sid: str
    direction: str  # inbound | outbound-api | outbound-reply | outbound-call
    from_: str | None
    to: str | None
    body: str
    status: str
    error_code: int | None
    num_segments: int | None
    date_created: datetime | None
    date_sent: datetime | None
    date_updated: datetime | None
    messaging_service_sid: str | None

    @classmethod
    def from_record(cls, record: Any) -> ProviderMessage:
        """The message an SDK message instance describes."""
        return cls(
            sid=str(record.sid),
            direction=str(record.direction),
            from_=record.from_,
            to=record.to,
            body=record.body or "",
            status=str(record.status),
            error_code=record.error_code,
            num_segments=_to_int(record.num_segments),
            date_created=record.date_created,
            date_sent=record.date_sent,
            date_updated=record.date_updated,
            messaging_service_sid=record.messaging_service_sid,
        )

    @property
    def is_inbound(self) -> bool:
        """True for a message a phone sent to one of our numbers."""
        return self.direction == "inbound"

    @property
    def error_class(self) -> ErrorClass | None:
        """The class of the delivery error, if the message failed."""
        return None if self.error_code is None else classify(self.error_code)


@dataclass(frozen=True, slots=True)
class ProvisionedNumber:
    """A number bought for a sender; ``fell_back`` if the wanted area code had none."""

    sid: str
    phone_number: str
    friendly_name: str | None
    requested_area_code: str | None
    fell_back: bool
    messaging_service_sid: str | None


def _to_int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


class SmsGateway(Protocol):
    """What the send path, the replies poller and provisioning need from an SMS provider."""

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
        """Send one SMS, retrying retriable failures; never raises for provider outcomes.

        ``validity_period_s``: Twilio's ValidityPeriod, clamped to 1..36000 (None: not sent).
        ``not_after``: a ``time.monotonic()`` deadline; no attempt starts at or after it.
        """
        ...

    async def find_message(
        self,
        *,
        to: str,
        from_: str | None,
        body: str,
        sent_after: datetime,
        sent_before: datetime | None = None,
    ) -> ProviderMessage | None:
        """Find the message an ambiguous send may have created (newest match), if any."""
        ...

    def list_messages(
        self,
        *,
        to: str | None = None,
        from_: str | None = None,
        sent_after: datetime | date | None = None,
        sent_before: datetime | date | None = None,
        page_size: int = 50,
    ) -> AsyncIterator[ProviderMessage]:
        """Messages newest first, following every page."""
        ...

    def list_inbound(
        self, *, since_day: date, to: str | None = None, page_size: int = 1000
    ) -> AsyncIterator[ProviderMessage]:
        """Inbound messages received on or after ``since_day`` (GMT), newest first."""
        ...

    async def fetch_statuses(self, sids: Sequence[str]) -> list[ProviderMessage]:
        """The current state of the given messages (unknown SIDs are left out)."""
        ...

    async def provision_number(
        self,
        *,
        area_code: str | None,
        country: str | None = None,
        friendly_name: str | None = None,
        messaging_service_sid: str | None = None,
    ) -> ProvisionedNumber:
        """Buy an SMS-capable local number, near ``area_code`` when possible."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
