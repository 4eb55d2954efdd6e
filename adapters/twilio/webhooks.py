"""Twilio's webhooks, read and checked: the incoming-message and status-callback requests.

Twilio signs every webhook request it makes: ``X-Twilio-Signature`` is an HMAC of the full
URL it called and of the POST parameters, keyed with the account's auth token.
:func:`signature_ok` checks it with the official SDK's ``RequestValidator`` (nudge never does
its own crypto) against the *public* URL: behind a TLS reverse proxy the scheme, host and
port the receiver sees are not those Twilio called, so the URL is rebuilt from
:attr:`WebhookConfig.public_url` and the path (and query) of the request.

The rest turns a checked request into what the poller already understands: an incoming
message is a :class:`~adapters.twilio.types.ProviderMessage` like a listed one
(:func:`inbound_message`), and so is a status callback (:func:`status_update`), so the
same code stores, acts and records statuses whichever way a message arrives.
:func:`delivery_key` names one signed request for the replay rule (a retry of it is the
same request; see ``nudge/webhooks.py``). Numbers, bodies and tokens are never logged here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

from pydantic import SecretStr
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from adapters.twilio.types import ProviderMessage

#: Where the receiver listens (the paths pasted in the Twilio console after the public URL).
INCOMING_PATH = "/twilio/incoming"
STATUS_PATH = "/twilio/status"
#: The headers Twilio sends with every webhook request.
SIGNATURE_HEADER = "X-Twilio-Signature"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """What the webhook receiver is told.

    ``public_url`` is the base URL Twilio calls (``https://texts.college.edu``, optionally
    with a path prefix the proxy strips), without query or trailing slash. A retry of a
    signed request is accepted within ``replay_window_s`` of its first delivery; its first
    sight is remembered for ``replay_memory_s`` so that presenting it again later is refused.
    """

    account_sid: str
    auth_token: SecretStr
    public_url: str
    replay_window_s: float = 600.0
    replay_memory_s: float = 30 * 86_400.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "the webhook public URL must be an absolute http(s) URL, "
                f"such as https://texts.college.edu (got {self.public_url!r})"
            )
        if parts.query or parts.fragment:
            raise ValueError("the webhook public URL must have no query or fragment")
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        if self.replay_window_s <= 0:
            raise ValueError("replay_window_s must be positive")
        if self.replay_memory_s < self.replay_window_s:
            raise ValueError("replay_memory_s must be at least replay_window_s")

    def url_for(self, path: str, query: str = "") -> str:
        """The full URL Twilio called: the public base, the path the receiver saw, and the
        query string if there was one (Twilio signs it too)."""
        return f"{self.public_url}{path}" + (f"?{query}" if query else "")


def status_callback_url(public_url: str | None) -> str | None:
    """The ``StatusCallback`` texts carry when the receiver has a public URL (else None)."""
    return f"{public_url.rstrip('/')}{STATUS_PATH}" if public_url else None


class FormParams:
    """The POST parameters of one webhook request, in the order received (a name may
    repeat); ``getlist`` is what the SDK's validator reads them by."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._pairs = tuple(pairs)

    @classmethod
    def parse(cls, body: bytes) -> FormParams:
        """Parameters of an ``application/x-www-form-urlencoded`` body (UTF-8, as Twilio
        sends; empty values kept: they are signed too)."""
        text = body.decode("utf-8", errors="replace")
        return cls(parse_qsl(text, keep_blank_values=True))

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self._pairs))

    def __contains__(self, name: object) -> bool:
        return any(n == name for n, _ in self._pairs)

    def getlist(self, name: str) -> list[str]:
        """Every value of ``name``, in order."""
        return [v for n, v in self._pairs if n == name]

    def get(self, name: str, default: str = "") -> str:
        """The first value of ``name``, or ``default``."""
        return next((v for n, v in self._pairs if n == name), default)

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """Every (name, value), in the order received."""
        return self._pairs


def signature_ok(
    config: WebhookConfig, *, url: str, params: FormParams, signature: str | None
) -> bool:
    """Whether ``signature`` (the ``X-Twilio-Signature`` header) is Twilio's signature of
    ``url`` and ``params`` with our auth token, as the official SDK computes it (with and
    without the default port, as it tries). A missing signature is not valid."""
    if not signature:
        return False
    validator = RequestValidator(config.auth_token.get_secret_value())
    return bool(validator.validate(url, params, signature))


def delivery_key(*, url: str, params: FormParams, signature: str) -> str:
    """The name of one signed request: a SHA-256 of its signature, URL and sorted
    parameters. Twilio's retries of a request are the same request (same URL, parameters
    and so signature); the ``I-Twilio-Idempotency-Token`` header is deliberately left out:
    it is not signed, so anyone holding a captured request could vary it at will."""
    canonical = json.dumps([signature, url, sorted(params.pairs())], separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def inbound_message(params: FormParams, *, received_at: datetime) -> ProviderMessage:
    """The incoming message a webhook describes, as the poller would have listed it: sent
    (``date_sent``) when Twilio called the webhook, which is about ``received_at``."""
    return ProviderMessage(
        sid=params.get("MessageSid") or params.get("SmsSid"),
        direction="inbound",
        from_=params.get("From") or None,
        to=params.get("To") or None,
        body=params.get("Body"),
        status=params.get("SmsStatus") or "received",
        error_code=None,
        num_segments=_int_or_none(params.get("NumSegments")),
        date_created=received_at,
        date_sent=received_at,
        date_updated=received_at,
        messaging_service_sid=params.get("MessagingServiceSid") or None,
    )


def status_update(params: FormParams) -> ProviderMessage:
    """The status a status callback reports for one of our texts (``MessageStatus`` and,
    for a failure, ``ErrorCode``); it carries no time, so ``date_updated`` is None."""
    return ProviderMessage(
        sid=params.get("MessageSid") or params.get("SmsSid"),
        direction="outbound-api",
        from_=params.get("From") or None,
        to=params.get("To") or None,
        body="",
        status=params.get("MessageStatus") or params.get("SmsStatus"),
        error_code=_int_or_none(params.get("ErrorCode")),
        num_segments=None,
        date_created=None,
        date_sent=None,
        date_updated=None,
        messaging_service_sid=params.get("MessagingServiceSid") or None,
    )


def empty_twiml() -> str:
    """An empty TwiML ``<Response/>``: Twilio answers nothing itself (nudge's own keyword
    answers and staff replies go through the outbox)."""
    return str(MessagingResponse())


__all__ = [
    "IDEMPOTENCY_HEADER",
    "INCOMING_PATH",
    "SIGNATURE_HEADER",
    "STATUS_PATH",
    "FormParams",
    "WebhookConfig",
    "delivery_key",
    "empty_twiml",
    "inbound_message",
    "signature_ok",
    "status_callback_url",
    "status_update",
]
