"""What the Twilio adapter is told, and nothing else: :class:`TwilioConfig`.

The shell builds it (``nudge.wiring.twilio_config``); the adapter never reads settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    """Credentials, endpoint and limits of the Twilio gateway.

    ``base_url`` rewrites ``https://*.twilio.com`` to it (the sandbox emulator); ``None``
    means real Twilio. ``messaging_service_sid`` is the service a send without a sender
    goes through and that new numbers join (none if unset); ``country`` is where numbers
    are bought when the caller names none. ``timeout_s`` bounds every HTTP call and
    ``max_retries`` the retries of retriable failures. ``status_callback``, when set, is the
    URL every text asks Twilio to report its delivery statuses to (the webhook receiver's
    ``/twilio/status``); unset, statuses are only fetched by the poll.
    """

    account_sid: str
    auth_token: SecretStr
    base_url: str | None = None
    messaging_service_sid: str | None = None
    country: str = "US"
    timeout_s: float = 10.0
    max_retries: int = 5
    status_callback: str | None = None

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if self.max_retries < 0:
            raise ValueError("max_retries must not be negative")
