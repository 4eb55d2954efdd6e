"""Infrastructure settings for nudge: where the database, Twilio, the SIS and mail live.

One pydantic-settings class reads ``NUDGE_*`` environment variables and an optional ``.env``
file. Nothing here is read at import time: call :func:`get_settings` (or build
``Settings()``) when a command or flow starts.

Business rules an SMS admin edits at run time (permitted roles, quota, quiet hours, the
phone-type code mapping, ...) are *not* here: they live in the database as ``SmsConfig`` and
are edited with ``nudge config set``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: A well-formed but fake account SID: the sandbox emulator accepts any well-formed pair.
SANDBOX_ACCOUNT_SID = "AC" + "0" * 32


class Settings(BaseSettings):
    """Every environment-level setting of nudge (prefix ``NUDGE_``)."""

    model_config = SettingsConfigDict(
        env_prefix="NUDGE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = Field(
        default="sqlite:///./nudge.db",
        description="SQLAlchemy URL of nudge's own database (SQLite file or PostgreSQL).",
    )
    db_idle_tx_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="PostgreSQL: end a session idle inside a transaction for this long, so a "
        "frozen worker releases its row locks (nudge never waits on the network inside one).",
    )

    # --- Twilio -------------------------------------------------------------------------
    twilio_account_sid: str = Field(default=SANDBOX_ACCOUNT_SID, description="Account SID.")
    twilio_auth_token: SecretStr = Field(default=SecretStr("sandbox"), description="Auth token.")
    twilio_base_url: str | None = Field(
        default=None,
        description="Rewrite https://*.twilio.com to this base URL (the sandbox emulator). "
        "Unset means real Twilio.",
    )
    twilio_messaging_service_sid: str | None = Field(
        default=None, description="Optional Messaging Service that new sender numbers join."
    )
    twilio_area_code: str | None = Field(
        default=None, description="Area code to search first when provisioning sender numbers."
    )
    twilio_country: str = Field(default="US", description="Country of provisioned numbers.")
    twilio_timeout_s: float = Field(default=10.0, gt=0, description="HTTP timeout per call.")
    twilio_max_retries: int = Field(default=5, ge=0, description="Retries of retriable errors.")

    # --- sending pace -------------------------------------------------------------------
    send_concurrency: int = Field(default=32, ge=1, description="Concurrent Twilio calls.")
    sender_mps: float = Field(default=10.0, gt=0, description="Messages/s per sender number.")
    account_mps: float = Field(default=100.0, gt=0, description="Messages/s for the account.")
    chunk_size: int = Field(default=200, ge=1, le=5000, description="Messages per send chunk.")
    heartbeat_s: float = Field(
        default=3.0,
        gt=0,
        description="How often a worker refreshes its chunk claims (and a poller its lease).",
    )
    claim_stale_s: float = Field(
        default=15.0,
        gt=0,
        description="A claim without a heartbeat for this long belongs to a dead worker and "
        "is taken over (a few missed heartbeats; claims of a process of this host that no "
        "longer exists are taken over at once).",
    )
    send_deadline_s: float = Field(
        default=10.0,
        gt=0,
        description="A message marked `sending` is handed to the provider within this many "
        "seconds or not at all; after it plus the call timeout, another worker may reconcile "
        "and resend it (fencing).",
    )
    chunk_rate_limit: str | None = Field(
        default=None,
        description="Name of a Prefect global concurrency limit with slot decay that paces "
        "chunks across every worker process (create it with `prefect gcl create`).",
    )
    campaign_fanout: int = Field(
        default=1,
        ge=1,
        description="Flow runs that work one campaign at once when it runs as a deployment "
        "(each claims chunks; any worker of the pool may pick them up).",
    )

    # --- SIS ----------------------------------------------------------------------------
    sis_source: str | None = Field(
        default=None, description="Default sync source: csv:PATH or ethos:URL."
    )
    ethos_api_key: SecretStr | None = Field(default=None, description="Ethos API key.")
    ethos_id_credential: str = Field(
        default="bannerId",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$",
        description="Ethos credentials[].type whose value is the SIS person id (bannerId, "
        "elevateId, colleaguePersonId, ...).",
    )
    ethos_page_size: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Persons asked per page of the Ethos persons API (the server may cap it; "
        "Ethos Integration's maximum is usually 500).",
    )
    ethos_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="HTTP timeout per Ethos request, in seconds."
    )
    ethos_max_attempts: int = Field(
        default=5,
        ge=1,
        le=20,
        description="Attempts per Ethos request when it meets 429, 5xx or a connection error "
        "(with exponential backoff and jitter in between; 1 = no retry).",
    )
    sync_workers: int = Field(
        default=0, ge=0, description="Processes that parse phone numbers (0 = one per core)."
    )

    # --- mail ---------------------------------------------------------------------------
    smtp_host: str | None = Field(default=None, description="SMTP host; unset = outbox folder.")
    smtp_port: int = Field(default=587, description="SMTP port.")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(default=False, description="Use STARTTLS.")
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    mail_from: str = Field(default="nudge@localhost", description="From address of emails.")
    outbox_dir: Path = Field(default=Path("outbox"), description="Where .eml files go.")
    alert_emails: list[str] = Field(
        default_factory=list, description="Who gets data-quality alerts (JSON list)."
    )
    urgent_emails: list[str] = Field(
        default_factory=list,
        description="On-call addresses alerted at once when a student's reply reads like a "
        "crisis or a safety concern (JSON list); unset, the alert goes to NUDGE_ALERT_EMAILS.",
    )

    # --- the reply mailbox (staff and students answer by email) --------------------------
    reply_address: str | None = Field(
        default=None,
        description="The college's reply mailbox (texts@college.edu). Staff notifications and "
        "fallback emails carry Reply-To texts+<token>@college.edu (plus-addressing); unset, "
        "they carry no Reply-To and `poll-mail` has nothing to read.",
    )
    reply_secret: SecretStr | None = Field(
        default=None,
        description="Key of the reply tokens' HMAC; unset, a random key kept in nudge's "
        "database is used (set it to the same value on every host that sends emails).",
    )
    imap_host: str | None = Field(default=None, description="IMAP host of the reply mailbox.")
    imap_port: int = Field(default=993, description="IMAP port (993 with SSL, 143 without).")
    imap_ssl: bool = Field(default=True, description="IMAP over TLS (port 993).")
    imap_username: str | None = Field(default=None, description="IMAP login.")
    imap_password: SecretStr | None = Field(
        default=None, description="IMAP password, app password, or OAuth2 access token."
    )
    imap_oauth2: bool = Field(
        default=False,
        description="Log in with XOAUTH2 (NUDGE_IMAP_PASSWORD holds the access token): "
        "Microsoft 365 and Google Workspace without app passwords.",
    )
    imap_folder: str = Field(default="INBOX", description="Folder the replies arrive in.")
    imap_handled_folder: str = Field(
        default="nudge-handled", description="Where handled mails are moved (created if absent)."
    )
    imap_review_folder: str = Field(
        default="nudge-review",
        description="Where refused mails (forged sender, bad token) are moved for review.",
    )
    imap_timeout_s: float = Field(default=30.0, gt=0, description="IMAP socket timeout.")

    # --- real-time replies (Twilio webhooks) ---------------------------------------------
    webhook_public_url: str | None = Field(
        default=None,
        description="Public base URL Twilio calls for `nudge webhooks serve` "
        "(https://texts.college.edu): signatures are checked against it plus the path. Set "
        "for the senders too, texts ask Twilio for status callbacks at <url>/twilio/status.",
    )
    webhook_replay_window_s: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="Twilio's retries of a signed webhook request are accepted (and change "
        "nothing) for this many seconds after its first delivery; later it is a replay: 403.",
    )
    webhook_replay_memory_days: float = Field(
        default=30.0,
        ge=1,
        description="How long the first sight of each signed webhook request is remembered "
        "(to refuse replays); older records are pruned.",
    )

    # --- reports ------------------------------------------------------------------------
    report_dir: Path = Field(default=Path("reports"), description="Data-quality reports.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once on first use."""
    return Settings()
