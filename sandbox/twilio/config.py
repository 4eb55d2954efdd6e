"""The knobs of the Twilio emulator: credentials, faults, load limits and carrier behaviour.

One pydantic model, :class:`EmulatorConfig`, is set from CLI flags at start-up and changed at
run time through ``POST /sandbox/control`` (a JSON object with any subset of the fields).
Every share is a probability in ``[0, 1]`` drawn from one random generator seeded by ``seed``,
so a run with the same seed and the same request order injects the same faults.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")

#: Twilio's default HELP reply when a Messaging Service has no custom text.
DEFAULT_HELP_TEXT = "Reply STOP to unsubscribe. Msg&Data Rates May Apply."


class EmulatorConfig(BaseModel):
    """Every knob of the emulator, with Twilio-like defaults (no faults, no pacing)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    account_sid: str | None = Field(
        default=None,
        description="Only this account SID is accepted (basic-auth user). Unset: any "
        "well-formed AC… SID is accepted.",
    )
    auth_token: str | None = Field(
        default=None, description="Only this auth token is accepted. Unset: any non-empty token."
    )
    latency_ms: float = Field(
        default=0.0,
        ge=0,
        description="Delay before every Twilio API response. A message create is stored "
        "before the delay, as when Twilio accepts a message but is slow to answer.",
    )
    share_429: float = Field(
        default=0.0, ge=0, le=1, description="Share of calls answered 429 / code 20429."
    )
    share_5xx: float = Field(
        default=0.0, ge=0, le=1, description="Share of calls answered 500/20500 or 503/20503."
    )
    share_drop_after_accept: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of message creates that are stored, then the connection is "
        "dropped without a response: the ambiguous outcome.",
    )
    fault_scope: Literal["create", "all"] = Field(
        default="create",
        description="Where 429/5xx faults apply: message creates only, or every API call.",
    )
    mps: float | None = Field(
        default=None,
        gt=0,
        description="Per-account send pace in segments/s. Messages above it are accepted "
        "and queued (status stays 'queued' until their turn), as Twilio does. Unset: no queue.",
    )
    max_queue_s: float = Field(
        default=4 * 3600.0,
        gt=0,
        description="A message whose turn is further away than this is refused with 21611 "
        "(or, through a Messaging Service, accepted and failed with 30001).",
    )
    queue_delay_s: float = Field(
        default=0.0,
        ge=0,
        description="A provider backlog: extra seconds every new message waits in Twilio's "
        "queue, on top of any mps pacing. A message whose wait exceeds its ValidityPeriod "
        "(default 36000 s) is never sent: it stays 'queued', then fails with 30036 at "
        "creation + ValidityPeriod.",
    )
    status_delay_ms: float = Field(
        default=100.0,
        ge=0,
        description="Time spent in each step of queued -> sent -> delivered, fixed per "
        "message when it is created. 0 makes a "
        "message final as soon as it is read after its create.",
    )
    recipient_errors: dict[str, int] = Field(
        default_factory=dict,
        description="To number -> Twilio error code. 2xxxx codes refuse the create "
        "synchronously; 3xxxx codes accept it, then end it undelivered/failed with the code.",
    )
    share_undelivered: float = Field(
        default=0.0, ge=0, le=1, description="Share of accepted messages that end undelivered."
    )
    undelivered_code: int = Field(
        default=30003, description="Error code of the messages picked by share_undelivered."
    )
    exhausted_area_codes: list[str] = Field(
        default_factory=list,
        description="Area codes for which AvailablePhoneNumbers finds nothing.",
    )
    strict_numbers: bool = Field(
        default=False,
        description="From (and inbound To) must be a number the account bought (else 21606).",
    )
    inbound_webhook_delay_s: float = Field(
        default=0.0,
        ge=0,
        allow_inf_nan=False,
        description="Seconds an inbound message stays 'receiving', with date_sent null, "
        "before Twilio calls the incoming-message webhook; then it is 'received' and its "
        "date_sent is that moment. 0: received at once.",
    )
    inbound_lag_s: float = Field(
        default=0.0,
        ge=0,
        allow_inf_nan=False,
        description="Seconds after its creation before an inbound message shows in the "
        "Messages list (users report 10-15 minutes or more; Twilio promises no bound). "
        "Fetching it by SID works at once. 0: listed at once.",
    )
    help_text: str = Field(default=DEFAULT_HELP_TEXT, description="Reply to HELP/INFO.")
    seed: int | None = Field(default=None, description="Seed of the fault generator.")

    @field_validator("account_sid")
    @classmethod
    def _check_account_sid(cls, value: str | None) -> str | None:
        if value is not None and not ACCOUNT_SID_RE.match(value):
            raise ValueError("account_sid must look like AC followed by 32 hex digits")
        return value
