"""The one table of Twilio error codes, ``classify()``, and the errors of non-send calls.

The taxonomy is drawn in ``adapters/twilio_gateway.py``; this module holds its single code
table, :data:`CODE_CLASSES` (edit it as Twilio's codes change), and :func:`classify`, which
the send path and the replies poller (delivery-status codes 3xxxx) share. It imports nothing
of the SDK, so code that only classifies stays light.

Operations other than ``send()`` raise :class:`GatewayError` subclasses::

    GatewayError                  .error_class, .code, .http_status (message is number-free)
     +-- ProviderUnavailable      retriable failures outlasted the retries, or ambiguous
     +-- ProviderConfigError      FATAL: credentials, account or sender configuration
     +-- ProviderRejected         REJECTED, OPTED_OUT, NOT_SMS_CAPABLE or EXPIRED for this
                                  request
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final


class ErrorClass(StrEnum):
    """The class of a provider failure; decides retry, fallback and alerting."""

    OPTED_OUT = "opted_out"
    NOT_SMS_CAPABLE = "not_sms_capable"
    RETRIABLE = "retriable"
    AMBIGUOUS = "ambiguous"
    FATAL = "fatal"
    REJECTED = "rejected"
    #: The message outstayed its ValidityPeriod in Twilio's queue and was never sent (30036).
    #: Nobody's fault and nothing to fix: it simply did not go, and is not retried
    #: automatically (the window it was meant for may have closed).
    EXPIRED = "expired"


_OPTED_OUT, _NOT_CAPABLE = ErrorClass.OPTED_OUT, ErrorClass.NOT_SMS_CAPABLE
_RETRIABLE, _FATAL = ErrorClass.RETRIABLE, ErrorClass.FATAL
_EXPIRED = ErrorClass.EXPIRED

#: Twilio error code -> class. HTTP statuses are the fallback for codes not listed here.
CODE_CLASSES: Final[dict[int, ErrorClass]] = {
    # the recipient opted out (STOP) of this sender
    21610: _OPTED_OUT,
    # the number cannot receive SMS: invalid, unreachable, landline, not mobile
    21211: _NOT_CAPABLE,
    21612: _NOT_CAPABLE,
    21614: _NOT_CAPABLE,
    21635: _NOT_CAPABLE,
    30005: _NOT_CAPABLE,
    30006: _NOT_CAPABLE,
    # transient: rate limit, Twilio trouble, carrier trouble, queue overflow
    20429: _RETRIABLE,
    20500: _RETRIABLE,
    20503: _RETRIABLE,
    30001: _RETRIABLE,
    30003: _RETRIABLE,
    30008: _RETRIABLE,
    # configuration: nothing will work until an admin fixes the account or the sender
    20003: _FATAL,
    21212: _FATAL,
    21408: _FATAL,
    21603: _FATAL,
    21606: _FATAL,
    21711: _FATAL,
    30002: _FATAL,
    30007: _FATAL,
    30034: _FATAL,
    # queued longer than its ValidityPeriod, so never sent (a delivery status, never a create)
    30036: _EXPIRED,
}


def classify(code_or_status: int | None, http_status: int | None = None) -> ErrorClass:
    """Classify a Twilio error code (5 digits) or an HTTP status (3 digits).

    Codes in :data:`CODE_CLASSES` win; otherwise the HTTP status decides (given apart, or
    as the value itself): 429 and 5xx are retriable, 401/403 fatal, any other 4xx rejected.
    Unknown codes without a status are rejected (this message only).
    """
    if code_or_status is not None and code_or_status in CODE_CLASSES:
        return CODE_CLASSES[code_or_status]
    status = http_status
    if status is None and code_or_status is not None and 100 <= code_or_status < 600:
        status = code_or_status
    if status is None:
        return ErrorClass.REJECTED
    if status == 429 or status >= 500:
        return ErrorClass.RETRIABLE
    if status in (401, 403):
        return ErrorClass.FATAL
    return ErrorClass.REJECTED


_PHONE_RE = re.compile(r"\+?\d[\d\s()-]{6,}\d")


def scrub(text: str) -> str:
    """Mask phone numbers in a provider message (Twilio quotes them) before it is kept."""
    return _PHONE_RE.sub(lambda m: "***" + re.sub(r"\D", "", m.group())[-4:], text)


class GatewayError(Exception):
    """A provider failure outside ``send()``; ``str()`` is safe to log (no numbers)."""

    def __init__(
        self,
        message: str,
        *,
        error_class: ErrorClass,
        code: int | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(scrub(message))
        self.error_class = error_class
        self.code = code
        self.http_status = http_status


class ProviderUnavailable(GatewayError):
    """Twilio kept failing transiently (after bounded retries), or the outcome is unknown."""


class ProviderConfigError(GatewayError):
    """A fatal configuration problem (credentials, account, sender): alert an admin."""


class ProviderRejected(GatewayError):
    """Twilio refused this particular request (4xx other than configuration)."""


def error_for(
    error_class: ErrorClass, message: str, *, code: int | None, http_status: int | None
) -> GatewayError:
    """The :class:`GatewayError` subclass that matches ``error_class``."""
    cls: type[GatewayError]
    if error_class in (ErrorClass.RETRIABLE, ErrorClass.AMBIGUOUS):
        cls = ProviderUnavailable
    elif error_class is ErrorClass.FATAL:
        cls = ProviderConfigError
    else:
        cls = ProviderRejected
    return cls(message, error_class=error_class, code=code, http_status=http_status)
