"""Every way a Twilio call can fail, classified once: the exception classes are the taxonomy.

Each concrete class below is one class of failure. It carries its :class:`ErrorClass`
(``.error_class``, what retry, fallback and alerting key on) and the :class:`SendOutcome`
that ``send()`` reports for it (``.outcome``); an instance carries the Twilio ``.code`` and
the ``.http_status``, and a ``str()`` with phone numbers masked::

    GatewayError                   base of them all (not raised itself)
     +-- ProviderUnavailable       no answer to rely on (not raised itself)
     |    +-- RetriableError       RETRIABLE        retried; then retriable_exhausted
     |    +-- AmbiguousError       AMBIGUOUS        ambiguous: never retried by send()
     +-- ProviderConfigError       FATAL            fatal: alert an admin
     +-- ProviderRejected          REJECTED         rejected: this request only
          +-- OptedOutError        OPTED_OUT        opted_out
          +-- NotSmsCapableError   NOT_SMS_CAPABLE  not_sms_capable
          +-- ExpiredError         EXPIRED          rejected (*)

What maps to which class (:func:`error_type` for codes and statuses, :func:`error_from` for
whatever an SDK call raised)::

    TwilioRestException / page error with code or status:
      21610                                              OptedOutError
      21211 21612 21614 21635 30005 30006                NotSmsCapableError
      429/20429, 5xx (20500 20503), 30001 30003 30008    RetriableError
      21408 21603 21711 30002 30007 30034,               ProviderConfigError
        20003/401/403, 21212 21606
      any other 4xx (21617 body too long, ...)           ProviderRejected
      30036 validity period expired                      ExpiredError
    transport (aiohttp, requests), before the request was sent:
      ClientConnectorError (refused, DNS), connect timeout   RetriableError
      TLS errors, invalid URL                                ProviderConfigError
    transport, after the request was sent:
      ServerDisconnectedError (dropped, no response), read   AmbiguousError
      timeout, ClientPayloadError (response cut short),
      ClientOSError (reset mid-request), a 2xx whose body
      cannot be read

(*) 30036 is a delivery status: a message that waited in Twilio's queue longer than its
``ValidityPeriod`` ends ``failed`` with it, and ``ProviderMessage.error_class`` reads
EXPIRED. A create never answers 30036, so ``send()`` has no outcome of its own for it; were
one ever to, the message certainly did not go and resending it unchanged cannot help, which
is what ``rejected`` means.

``send()`` never raises these: it returns a ``SendResult`` whose outcome is the class's.
Every other call raises them; reads retry every :class:`ProviderUnavailable` (they are
idempotent) and raise the last one when they give up.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import ClassVar, Final

import aiohttp
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException


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


class SendOutcome(StrEnum):
    """How one ``send()`` ended: ``sent``, ``not_attempted``, or a failure class's outcome."""

    SENT = "sent"
    OPTED_OUT = "opted_out"
    NOT_SMS_CAPABLE = "not_sms_capable"
    RETRIABLE_EXHAUSTED = "retriable_exhausted"
    AMBIGUOUS = "ambiguous"
    FATAL = "fatal"
    REJECTED = "rejected"
    #: ``not_after`` had passed before the first attempt: nothing reached the provider.
    NOT_ATTEMPTED = "not_attempted"


_PHONE_RE = re.compile(r"\+?\d[\d\s()-]{6,}\d")


def scrub(text: str) -> str:
    """Mask phone numbers in a provider message (Twilio quotes them) before it is kept."""
    return _PHONE_RE.sub(lambda m: "***" + re.sub(r"\D", "", m.group())[-4:], text)


# --- the hierarchy ---------------------------------------------------------------------


class GatewayError(Exception):
    """A provider failure; ``str()`` is safe to log (numbers masked).

    Abstract: raise one of the concrete classes, which set ``error_class`` and ``outcome``.
    """

    error_class: ClassVar[ErrorClass]
    outcome: ClassVar[SendOutcome]

    def __init__(
        self, message: str, *, code: int | None = None, http_status: int | None = None
    ) -> None:
        if not hasattr(type(self), "error_class"):
            raise TypeError(f"{type(self).__name__} is abstract: raise one of its subclasses")
        super().__init__(scrub(message))
        self.code = code
        self.http_status = http_status


class ProviderUnavailable(GatewayError):
    """No answer to rely on: Twilio kept failing transiently, or the outcome is unknown."""


class RetriableError(ProviderUnavailable):
    """Transient and certainly not done (rate limit, Twilio or carrier trouble, could not
    connect): worth another attempt after a backoff."""

    error_class = ErrorClass.RETRIABLE
    outcome = SendOutcome.RETRIABLE_EXHAUSTED


class AmbiguousError(ProviderUnavailable):
    """The request was sent but no usable answer came back: it may or may not have taken
    effect. A create is never retried blindly; reconcile it against the provider's list."""

    error_class = ErrorClass.AMBIGUOUS
    outcome = SendOutcome.AMBIGUOUS


class ProviderConfigError(GatewayError):
    """A fatal configuration problem (credentials, account, sender): alert an admin."""

    error_class = ErrorClass.FATAL
    outcome = SendOutcome.FATAL


class ProviderRejected(GatewayError):
    """Twilio refused this particular request (4xx other than configuration)."""

    error_class = ErrorClass.REJECTED
    outcome = SendOutcome.REJECTED


class OptedOutError(ProviderRejected):
    """The recipient opted out (STOP) of this sender (21610)."""

    error_class = ErrorClass.OPTED_OUT
    outcome = SendOutcome.OPTED_OUT


class NotSmsCapableError(ProviderRejected):
    """The number cannot receive SMS: invalid, unreachable, landline, not mobile."""

    error_class = ErrorClass.NOT_SMS_CAPABLE
    outcome = SendOutcome.NOT_SMS_CAPABLE


class ExpiredError(ProviderRejected):
    """The message outstayed its ValidityPeriod in Twilio's queue and was never sent (30036)."""

    error_class = ErrorClass.EXPIRED
    outcome = SendOutcome.REJECTED  # a create never answers 30036 (see the module docstring)


#: The concrete classes, one per :class:`ErrorClass`.
TAXONOMY: Final[tuple[type[GatewayError], ...]] = (
    OptedOutError,
    NotSmsCapableError,
    RetriableError,
    AmbiguousError,
    ProviderConfigError,
    ProviderRejected,
    ExpiredError,
)

# --- codes and statuses ------------------------------------------------------------------

_OPTED_OUT, _NOT_CAPABLE, _EXPIRED = OptedOutError, NotSmsCapableError, ExpiredError
_RETRIABLE, _FATAL = RetriableError, ProviderConfigError

#: Twilio error code -> class (edit it as Twilio's codes change). HTTP statuses are the
#: fallback for codes not listed here.
CODE_CLASSES: Final[dict[int, type[GatewayError]]] = {
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


def error_type(code_or_status: int | None, http_status: int | None = None) -> type[GatewayError]:
    """The class of a Twilio error code (5 digits) or an HTTP status (3 digits).

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
        return ProviderRejected
    if status == 429 or status >= 500:
        return RetriableError
    if status in (401, 403):
        return ProviderConfigError
    return ProviderRejected


def classify(code_or_status: int | None, http_status: int | None = None) -> ErrorClass:
    """The :class:`ErrorClass` of a Twilio error code or HTTP status (see :func:`error_type`)."""
    return error_type(code_or_status, http_status).error_class


# --- what an SDK call raised ---------------------------------------------------------------

#: Exceptions a Twilio call may raise that say something about the provider.
PROVIDER_ERRORS: Final = (
    TwilioException,
    aiohttp.ClientError,
    requests.RequestException,
    TimeoutError,
)


def error_from(exc: BaseException) -> GatewayError:
    """The taxonomy's exception for what a Twilio call raised (not raised here: the caller
    decides whether to retry, raise it, or report it).

    Anything that is neither a Twilio error nor a recognised transport failure (a 2xx
    whose body could not be read, say) is ambiguous: the call may have taken effect.
    """
    code: int | None = None
    status: int | None = None
    kind: type[GatewayError]
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        code, status = exc.code, exc.status
        kind = error_type(code, status)
    elif isinstance(exc, TwilioException):
        # A list page failure: TwilioException("Unable to fetch page", response).
        response = exc.args[1] if len(exc.args) > 1 else None
        status = getattr(response, "status_code", None)
        code = _code_in(getattr(response, "text", None))
        kind = ProviderRejected if status is None and code is None else error_type(code, status)
    else:
        kind = _transport_error_type(exc)
    return kind(_describe(exc), code=code, http_status=status)


def _code_in(text: str | None) -> int | None:
    try:
        code = json.loads(text or "").get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


def _transport_error_type(exc: BaseException) -> type[GatewayError]:
    # Order matters: the connect-phase classes derive from the generic ones below them.
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.InvalidURL):
        return ProviderConfigError
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return RetriableError
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.InvalidURL):
        return ProviderConfigError
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return RetriableError
    if isinstance(exc, requests.exceptions.ConnectionError) and _never_connected(exc):
        return RetriableError
    # Sent, or possibly sent: dropped, read timeout, cut short, reset, unreadable 2xx.
    return AmbiguousError


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    reason = exc.args[0] if exc.args else None
    inner = getattr(reason, "reason", reason)
    return type(inner).__name__ in ("NewConnectionError", "NameResolutionError")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TwilioRestException):
        return scrub(str(exc.msg))
    if isinstance(exc, TwilioServiceException):
        return scrub(f"{exc.title}: {exc.detail or ''}")
    detail = str(exc)
    return scrub(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)
