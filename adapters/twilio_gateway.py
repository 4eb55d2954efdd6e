"""The SMS gateway: nudge's only door to Twilio, or to the sandbox emulator.

It speaks through the official ``twilio`` SDK. Its HTTP clients rewrite
``https://*.twilio.com`` to ``NUDGE_TWILIO_BASE_URL`` when that is set (the emulator;
``https://messaging.twilio.com/v1/...`` becomes ``{base}/messaging/v1/...``); unset means real
Twilio. Credentials come from :class:`~nudge.settings.Settings` and are never logged; the
SDK's own request logging (query strings hold phone numbers) is replaced by DEBUG lines with
method and path only. ``TWILIO_EDGE``/``TWILIO_REGION`` from the environment are ignored.

Error taxonomy (the code table is :data:`adapters.twilio_errors.CODE_CLASSES`)::

    what happened                                        ErrorClass        send() outcome
    ---------------------------------------------------  ----------------  ------------------
    TwilioRestException / page error with code or status:
      21610                                              OPTED_OUT         opted_out
      21211 21612 21614 21635 30005 30006                NOT_SMS_CAPABLE   not_sms_capable
      429/20429, 5xx (20500 20503), 30001 30003 30008    RETRIABLE         retried: sent, or
                                                                           retriable_exhausted
      21408 21603 21711 30002 30007 30034,               FATAL             fatal
        20003/401/403, 21212 21606
      any other 4xx (21617 body too long, ...)           REJECTED          rejected
      30036 validity period expired                      EXPIRED           rejected (*)
    transport (aiohttp), before the request was sent:
      ClientConnectorError (refused, DNS)                RETRIABLE         (as above)
      ConnectionTimeoutError (connect timeout)           RETRIABLE
      ClientConnectorCertificateError / ClientSSLError   FATAL
      InvalidURL                                         FATAL
    transport, after the request was sent:
      ServerDisconnectedError (dropped, no response)     AMBIGUOUS         ambiguous: never
      TimeoutError / SocketTimeoutError (read timeout)   AMBIGUOUS           retried; reconcile
      ClientPayloadError (response cut short)            AMBIGUOUS           with find_message()
      ClientOSError (reset mid-request)                  AMBIGUOUS
      2xx whose body cannot be read                      AMBIGUOUS
    no attempt, because ``not_after`` had passed:
      before the first attempt                           -                 not_attempted
      before a retry (after the backoff)                 (the last error)  retriable_exhausted

(*) 30036 is a delivery status: a message that waited in Twilio's queue longer than its
``ValidityPeriod`` ends ``failed`` with it, and :attr:`ProviderMessage.error_class` reads
EXPIRED. A create never answers 30036, so ``send()`` has no outcome of its own for it; were
one ever to, the message certainly did not go and resending it unchanged cannot help, which
is what ``rejected`` means.

``send()`` never raises for a provider outcome: it returns a :class:`SendResult`. Reads
(lists, fetches) retry RETRIABLE and AMBIGUOUS alike (they are idempotent) and raise a
:class:`~adapters.twilio_errors.GatewayError` subclass when they give up. Retries use bounded
exponential backoff with jitter (tenacity); the SDK itself never retries.

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
``not_after`` by at least the HTTP timeout (``twilio_timeout_s``).

One gateway belongs to one event loop (its aiohttp session is created on first use); close
it with ``await gateway.aclose()`` or ``async with``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode, urlsplit

import aiohttp
import requests
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from twilio.base import values
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from adapters.twilio_errors import (
    ErrorClass,
    GatewayError,
    ProviderRejected,
    ProviderUnavailable,
    classify,
    error_for,
    scrub,
)
from domain.masking import mask_phone
from nudge.settings import Settings

__all__ = [
    "MAX_VALIDITY_S",
    "MIN_VALIDITY_S",
    "ErrorClass",
    "GatewayError",
    "ProviderMessage",
    "ProvisionedNumber",
    "RetryPolicy",
    "RewritingAsyncHttpClient",
    "RewritingHttpClient",
    "SendOutcome",
    "SendResult",
    "SmsGateway",
    "TwilioSmsGateway",
    "build_sync_client",
    "classify",
    "classify_exception",
    "rewrite_twilio_url",
]

logger = logging.getLogger("nudge.twilio")
_http_logger = logging.getLogger("nudge.twilio.http")
T = TypeVar("T")

#: Given to the SDK instead of os.environ, so TWILIO_* variables (edge, region,
#: credentials) cannot change where or as whom nudge sends.
_NO_ENVIRONMENT = {"NUDGE_TWILIO": "settings-only"}
#: Codes that mean "this number was bought by someone else since we searched".
_NUMBER_TAKEN = 21422
_ALREADY_IN_SERVICE = 21710
#: Twilio's range for ``ValidityPeriod`` (seconds); its default is the maximum.
MIN_VALIDITY_S = 1
MAX_VALIDITY_S = 36_000


# --- URL rewriting HTTP clients -----------------------------------------------------


def rewrite_twilio_url(url: str, base_url: str | None) -> str:
    """Point an ``https://*.twilio.com`` URL at ``base_url``; other URLs pass unchanged.

    ``api`` maps to the root of ``base_url``; other products keep their name as a path
    prefix (``https://messaging.twilio.com/v1/X`` -> ``{base_url}/messaging/v1/X``).
    """
    if not base_url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" or not (host == "twilio.com" or host.endswith(".twilio.com")):
        return url
    product = host.split(".")[0]
    path = parts.path if product in ("api", "twilio") else f"/{product}{parts.path}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{base_url.rstrip('/')}{path}{query}"


def _log_request(kwargs: dict[str, Any]) -> None:
    if _http_logger.isEnabledFor(logging.DEBUG):
        _http_logger.debug("twilio %s %s", kwargs.get("method"), urlsplit(kwargs["url"]).path)


class RewritingHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """The SDK's sync client (requests), rewriting Twilio URLs; for scripts and the CLI."""

    def __init__(self, base_url: str | None, *, timeout_s: float) -> None:
        super().__init__(pool_connections=True, timeout=timeout_s, logger=_http_logger)
        self.base_url = base_url

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        """Send one request to Twilio or, when a base URL is set, to the emulator."""
        response: TwilioResponse = super().request(
            method,
            rewrite_twilio_url(url, self.base_url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        return response

    def log_request(self, kwargs: dict[str, Any]) -> None:
        """Method and path at DEBUG (the SDK logs query strings, i.e. numbers, at INFO)."""
        _log_request(kwargs)

    def log_response(self, status_code: int, response: Any) -> None:
        """Status at DEBUG only."""
        _http_logger.debug("twilio response %s", status_code)

    def close(self) -> None:
        """Close the pooled connections."""
        if self.session is not None:
            self.session.close()


class RewritingAsyncHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The SDK's async client (aiohttp), rewriting Twilio URLs and applying the timeout.

    The session is created on first use, inside the running loop (creating it earlier
    binds it to no loop), and the timeout applies to every call (the SDK's client sends
    none by default).
    """

    def __init__(
        self, base_url: str | None, *, timeout_s: float, max_connections: int = 100
    ) -> None:
        super().__init__(pool_connections=False, timeout=timeout_s, logger=_http_logger)
        self.base_url = base_url
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._default_timeout = aiohttp.ClientTimeout(total=timeout_s)

    def _session_for_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections)
            self._session = aiohttp.ClientSession(connector=connector)
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("a Twilio gateway is bound to the event loop that first used it")
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        """Send one request to Twilio or, when a base URL is set, to the emulator."""
        session = self._session_for_loop()
        target = rewrite_twilio_url(url, self.base_url)
        _log_request({"method": method.upper(), "url": target})
        limit = self._default_timeout if timeout is None else aiohttp.ClientTimeout(total=timeout)
        async with session.request(
            method.upper(),
            target,
            params=_plain(params),
            data=_form(data),
            headers=_with_basic_auth(headers, auth),
            timeout=limit,
            allow_redirects=allow_redirects,
        ) as response:
            text = await response.text()
        _http_logger.debug("twilio response %s", response.status)
        return TwilioResponse(response.status, text, response.headers)

    async def close(self) -> None:
        """Close the aiohttp session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None


@functools.lru_cache(maxsize=8)
def _basic_auth_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _with_basic_auth(
    headers: dict[str, str] | None, auth: tuple[str, str] | None
) -> dict[str, str] | None:
    # Built by hand: aiohttp.BasicAuth is deprecated, and its replacement is recent.
    if auth is None:
        return headers
    return {**(headers or {}), "Authorization": _basic_auth_header(auth[0], auth[1])}


def _plain(params: dict[str, object] | None) -> dict[str, str] | None:
    if not params:
        return None
    return {k: v if isinstance(v, str) else str(v) for k, v in params.items()}


def _form(data: dict[str, object] | None) -> bytes | None:
    # Encoded here: aiohttp's FormData path costs ~0.3 ms per request. The SDK has already
    # set Content-Type: application/x-www-form-urlencoded.
    if not data:
        return None
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        items = value if isinstance(value, list) else [value]
        pairs.extend((key, str(item)) for item in items)
    return urlencode(pairs).encode()


def build_sync_client(settings: Settings) -> Client:
    """A synchronous SDK client with the settings' credentials and base URL (scripts, CLI)."""
    http = RewritingHttpClient(settings.twilio_base_url, timeout_s=settings.twilio_timeout_s)
    return _client(settings, http)


def _client(settings: Settings, http: TwilioHttpClient | AsyncTwilioHttpClient) -> Client:
    return Client(
        username=settings.twilio_account_sid,
        password=settings.twilio_auth_token.get_secret_value(),
        account_sid=settings.twilio_account_sid,
        http_client=http,
        environment=_NO_ENVIRONMENT,
    )


# --- classification of exceptions ---------------------------------------------------

#: Exceptions a Twilio call may raise that say something about the provider.
_PROVIDER_ERRORS = (TwilioException, aiohttp.ClientError, requests.RequestException, TimeoutError)


def _code_in(text: str | None) -> int | None:
    try:
        code = json.loads(text or "").get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


def classify_exception(exc: BaseException) -> tuple[ErrorClass, int | None, int | None]:
    """Classify what a Twilio call raised: (class, Twilio code, HTTP status)."""
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        code, status = exc.code, exc.status
        return classify(code, status), code, status
    if isinstance(exc, TwilioException):
        # A list page failure: TwilioException("Unable to fetch page", response).
        response = exc.args[1] if len(exc.args) > 1 else None
        status = getattr(response, "status_code", None)
        code = _code_in(getattr(response, "text", None))
        if status is None and code is None:
            return ErrorClass.REJECTED, None, None
        return classify(code, status), code, status
    return _classify_transport(exc), None, None


def _classify_transport(exc: BaseException) -> ErrorClass:
    # Order matters: the connect-phase classes derive from the generic ones below them.
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.InvalidURL):
        return ErrorClass.FATAL
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return ErrorClass.RETRIABLE
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.InvalidURL):
        return ErrorClass.FATAL
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ErrorClass.RETRIABLE
    if isinstance(exc, requests.exceptions.ConnectionError) and _never_connected(exc):
        return ErrorClass.RETRIABLE
    if isinstance(exc, aiohttp.ClientError | requests.RequestException | TimeoutError):
        return ErrorClass.AMBIGUOUS
    return ErrorClass.AMBIGUOUS


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


# --- results --------------------------------------------------------------------------


class SendOutcome(StrEnum):
    """How one ``send()`` ended (see the taxonomy in the module docstring)."""

    SENT = "sent"
    OPTED_OUT = "opted_out"
    NOT_SMS_CAPABLE = "not_sms_capable"
    RETRIABLE_EXHAUSTED = "retriable_exhausted"
    AMBIGUOUS = "ambiguous"
    FATAL = "fatal"
    REJECTED = "rejected"
    #: ``not_after`` had passed before the first attempt: nothing reached the provider.
    NOT_ATTEMPTED = "not_attempted"


#: Total over ErrorClass (a test checks it). EXPIRED has no outcome of its own: a create
#: never answers 30036 (see the taxonomy note in the module docstring).
_OUTCOME_OF: dict[ErrorClass, SendOutcome] = {
    ErrorClass.OPTED_OUT: SendOutcome.OPTED_OUT,
    ErrorClass.NOT_SMS_CAPABLE: SendOutcome.NOT_SMS_CAPABLE,
    ErrorClass.RETRIABLE: SendOutcome.RETRIABLE_EXHAUSTED,
    ErrorClass.AMBIGUOUS: SendOutcome.AMBIGUOUS,
    ErrorClass.FATAL: SendOutcome.FATAL,
    ErrorClass.REJECTED: SendOutcome.REJECTED,
    ErrorClass.EXPIRED: SendOutcome.REJECTED,
}


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


def _provider_message(record: Any) -> ProviderMessage:
    return ProviderMessage(
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


# --- the gateway --------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter: attempt n waits ~base*2^(n-1), at most max."""

    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0

    @classmethod
    def from_settings(
        cls, settings: Settings, *, backoff_base_s: float = 0.5, backoff_max_s: float = 8.0
    ) -> RetryPolicy:
        """The policy with ``twilio_max_retries`` from settings."""
        return cls(settings.twilio_max_retries, backoff_base_s, backoff_max_s)


class _Retry(Exception):
    """Internal: a failure worth another attempt."""

    def __init__(self, error_class: ErrorClass, code: int | None, status: int | None, msg: str):
        super().__init__(msg)
        self.error_class, self.code, self.status, self.msg = error_class, code, status, msg


def _exhausted(exc: _Retry, attempts: int, requested_at: datetime) -> SendResult:
    """Retriable failures outlasted the retries (or the deadline): the last one, as a result."""
    return SendResult(
        outcome=SendOutcome.RETRIABLE_EXHAUSTED,
        requested_at=requested_at,
        attempts=attempts,
        error_code=exc.code,
        http_status=exc.status,
        message=exc.msg,
    )


def _too_late(last: _Retry | None, attempts: int, requested_at: datetime) -> SendResult:
    """``not_after`` passed before an attempt could start.

    Before the first attempt nothing was sent. Before a retry, the earlier attempt failed
    retriably, i.e. certainly did not send: report that failure, as when retries run out.
    """
    if last is not None:
        return _exhausted(last, attempts, requested_at)
    return SendResult(
        outcome=SendOutcome.NOT_ATTEMPTED,
        requested_at=datetime.now(UTC),
        attempts=0,
        message="not attempted: the send deadline (not_after) had passed",
    )


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    code = getattr(exc, "code", None) or getattr(exc, "status", None)
    logger.warning("twilio call failed (%s), attempt %d; retrying", code, state.attempt_number)


class TwilioSmsGateway:
    """:class:`SmsGateway` over the official SDK (async), against Twilio or the emulator."""

    def __init__(
        self,
        settings: Settings,
        *,
        retry: RetryPolicy | None = None,
        max_connections: int = 100,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        http_client: RewritingAsyncHttpClient | None = None,
    ) -> None:
        """``retry`` defaults to the settings' retry count; ``sleep`` and ``http_client``
        are injectable for tests (a recording client, an instant sleep)."""
        self._settings = settings
        self._retry = retry or RetryPolicy.from_settings(settings)
        self._sleep = sleep
        self._http = http_client or RewritingAsyncHttpClient(
            settings.twilio_base_url,
            timeout_s=settings.twilio_timeout_s,
            max_connections=max_connections,
        )
        self._client = _client(settings, self._http)
        # The SDK imports the 2010 API lazily (~0.5 s): pay it here, not in the first send.
        self._messages = self._client.api.v2010.account.messages

    def __repr__(self) -> str:
        target = self._settings.twilio_base_url or "https://api.twilio.com"
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

    def _retrying(self) -> AsyncRetrying:
        policy = self._retry
        return AsyncRetrying(
            stop=stop_after_attempt(policy.max_retries + 1),
            # Full exponential step, capped, plus up to one base step of jitter.
            wait=wait_exponential(multiplier=policy.backoff_base_s, max=policy.backoff_max_s)
            + wait_random(0, policy.backoff_base_s),
            retry=retry_if_exception_type(_Retry),
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )

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
        settings). Retries retriable failures within the policy; never retries ambiguous
        ones; never raises for provider outcomes.

        ``validity_period_s`` is sent as ``ValidityPeriod``, clamped to 1..36000 (None sends
        nothing: Twilio's default, 36000). ``not_after`` is a ``time.monotonic()`` deadline:
        no attempt starts at or after it (see "Fencing" in the module docstring).
        """
        service = messaging_service_sid
        if service is None and from_ is None:
            service = self._settings.twilio_messaging_service_sid
        validity = (
            values.unset
            if validity_period_s is None
            else min(max(validity_period_s, MIN_VALIDITY_S), MAX_VALIDITY_S)
        )
        attempts = 0
        requested_at = datetime.now(UTC)
        last: _Retry | None = None

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
            except _Retry as exc:
                last = exc
                raise

        try:
            result = await self._with_retries(attempt)
        except _Retry as exc:
            result = _exhausted(exc, attempts, requested_at)
        return self._log_result(result, to)

    async def _with_retries(self, attempt: Callable[[int], Awaitable[T]]) -> T:
        """Run ``attempt(1)``; while it raises ``_Retry``, back off and try again (tenacity).

        The first attempt runs outside tenacity: building and driving a retry loop costs
        ~0.2 ms, which matters at a thousand sends per second and buys nothing on success.
        """
        try:
            return await attempt(1)
        except _Retry as failure:
            first = failure
        async for retry in self._retrying():
            with retry:
                number = retry.retry_state.attempt_number
                if number == 1:
                    raise first  # replay the failed fast attempt so tenacity backs off
                return await attempt(number)
        raise RuntimeError("unreachable: tenacity either returns or raises")

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
        try:
            record = await self._messages.create_async(
                to=to,
                from_=from_ if from_ is not None else values.unset,
                body=body,
                messaging_service_sid=service if service is not None else values.unset,
                validity_period=validity,
            )
        except (*_PROVIDER_ERRORS, ValueError) as exc:
            if isinstance(exc, ValueError) and not isinstance(exc, _PROVIDER_ERRORS):
                # A 2xx whose body we could not read: the message probably exists.
                error_class, code, status = ErrorClass.AMBIGUOUS, None, None
            else:
                error_class, code, status = classify_exception(exc)
            if error_class is ErrorClass.RETRIABLE:
                raise _Retry(error_class, code, status, _describe(exc)) from exc
            return SendResult(
                outcome=_OUTCOME_OF[error_class],
                requested_at=requested_at,
                attempts=attempts,
                error_code=code,
                http_status=status,
                message=_describe(exc),
            )
        return SendResult(
            outcome=SendOutcome.SENT,
            requested_at=requested_at,
            attempts=attempts,
            sid=record.sid,
            status=record.status,
            num_segments=_to_int(record.num_segments),
            from_=record.from_,
        )

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

        Lists the messages To (and From) the number, newest first, and stops at the first
        one created before ``sent_after - clock_skew``. It filters by creation date, not by
        ``DateSent``: a message still queued has no send date yet.
        """
        lower = _as_utc(sent_after).replace(microsecond=0) - clock_skew
        upper = _as_utc(sent_before) + clock_skew if sent_before is not None else None
        pages = self.list_messages(to=to, from_=from_)
        async with contextlib.aclosing(pages):
            async for message in pages:
                created = message.date_created
                if created is None:
                    continue
                if created < lower:
                    break
                if upper is not None and created > upper:
                    continue
                if message.direction == "outbound-api" and message.body == body:
                    return message
        return None

    # --- reading ----------------------------------------------------------------------

    async def _call(self, operation: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:
        """Run one SDK call with retries; raise a GatewayError subclass when it gives up."""

        async def attempt(_number: int) -> T:
            try:
                return await operation()
            except _PROVIDER_ERRORS as exc:
                error_class, code, status = classify_exception(exc)
                retry = error_class is ErrorClass.RETRIABLE or (
                    idempotent and error_class is ErrorClass.AMBIGUOUS
                )
                if retry:
                    raise _Retry(error_class, code, status, _describe(exc)) from exc
                raise error_for(error_class, _describe(exc), code=code, http_status=status) from exc

        try:
            return await self._with_retries(attempt)
        except _Retry as exc:
            raise ProviderUnavailable(
                exc.msg, error_class=exc.error_class, code=exc.code, http_status=exc.status
            ) from exc

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

        ``sent_after``/``sent_before`` filter on the send date, inclusive: a ``date`` means
        the whole GMT day, an aware ``datetime`` the exact second (naive ones are refused).
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
                yield _provider_message(record)
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
                return _provider_message(record)

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
        """Buy an SMS-capable local number and, optionally, add it to a Messaging Service.

        Searches ``area_code`` first and falls back to any area code when it has none.
        ``country`` defaults to settings; ``messaging_service_sid`` to the settings'
        service (none if unset). A number bought by someone else meanwhile is skipped.
        """
        country = country or self._settings.twilio_country
        service = messaging_service_sid or self._settings.twilio_messaging_service_sid
        candidates = await self._search(country, area_code)
        fell_back = False
        if not candidates and area_code:
            logger.info("no numbers in area code %s; searching the whole country", area_code)
            candidates = await self._search(country, None)
            fell_back = True
        if not candidates:
            raise ProviderRejected(
                f"no SMS-capable local numbers available in {country}",
                error_class=ErrorClass.REJECTED,
            )
        bought = await self._buy_first(candidates, friendly_name)
        if service:
            await self._join_service(service, str(bought.sid))
        logger.info("provisioned sender number %s", mask_phone(bought.phone_number))
        return ProvisionedNumber(
            sid=str(bought.sid),
            phone_number=str(bought.phone_number),
            friendly_name=bought.friendly_name,
            requested_area_code=area_code,
            fell_back=fell_back,
            messaging_service_sid=service,
        )

    async def _search(self, country: str, area_code: str | None) -> list[str]:
        local = self._client.available_phone_numbers(country).local
        filters: dict[str, Any] = {"sms_enabled": True, "limit": 20}
        if area_code:
            filters["area_code"] = int(area_code)
        found = await self._call(lambda: local.list_async(**filters), idempotent=True)
        return [str(n.phone_number) for n in found]

    async def _buy_first(self, candidates: list[str], friendly_name: str | None) -> Any:
        numbers = self._client.incoming_phone_numbers
        for phone_number in candidates[:5]:
            options: dict[str, Any] = {"phone_number": phone_number}
            if friendly_name:
                options["friendly_name"] = friendly_name
            try:
                return await self._call(
                    functools.partial(numbers.create_async, **options), idempotent=False
                )
            except ProviderRejected as exc:
                if exc.code != _NUMBER_TAKEN:
                    raise
            except ProviderUnavailable as exc:
                if exc.error_class is not ErrorClass.AMBIGUOUS:
                    raise
                # The purchase may have gone through: look before buying another one.
                lookup = functools.partial(numbers.list_async, phone_number=phone_number, limit=1)
                owned = await self._call(lookup, idempotent=True)
                if owned:
                    return owned[0]
                raise
        raise ProviderRejected(
            "every candidate number was taken meanwhile", error_class=ErrorClass.REJECTED
        )

    async def _join_service(self, service_sid: str, number_sid: str) -> None:
        pool = self._client.messaging.v1.services(service_sid).phone_numbers
        try:
            await self._call(
                lambda: pool.create_async(phone_number_sid=number_sid), idempotent=True
            )
        except ProviderRejected as exc:
            if exc.code != _ALREADY_IN_SERVICE:
                raise
