"""Service wiring: the one place that turns :class:`~nudge.settings.Settings` into the engine
and the adapters the rest of nudge is handed.

Below the shell nothing reads settings on its own: adapters take small frozen configs of
their own (built here from ``NUDGE_*`` settings), tasks receive what they need, and one
engine serves each database URL for the life of the process (pools are per engine; building
one per task would open a pool per task).
"""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from models.db import DEFAULT_IDLE_TX_TIMEOUT_S, make_engine
from nudge.settings import Settings, get_settings

if TYPE_CHECKING:  # the adapters are imported when first built: `nudge --help` stays fast
    from adapters.mail.imap import ImapConfig, Mailbox
    from adapters.mail.protocol import Mailer
    from adapters.mail.smtp import SmtpConfig
    from adapters.sis.base import SisSource
    from adapters.sis.ethos_config import EthosConfig
    from adapters.twilio.config import TwilioConfig
    from adapters.twilio.gateway import TwilioSmsGateway
    from adapters.twilio.webhooks import WebhookConfig
    from tasks.env import Env

_engines: dict[tuple[str, float | None], Engine] = {}
_engines_lock = threading.Lock()


def engine_for(url: str, idle_tx_timeout_s: float | None = DEFAULT_IDLE_TX_TIMEOUT_S) -> Engine:
    """The process-wide engine for ``url`` (built on first use)."""
    key = (url, idle_tx_timeout_s)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = make_engine(url, idle_tx_timeout_s=idle_tx_timeout_s)
        return engine


def engine(settings: Settings | None = None) -> Engine:
    """The process-wide engine of nudge's own database (``NUDGE_DATABASE_URL``)."""
    settings = settings or get_settings()
    return engine_for(settings.database_url, settings.db_idle_tx_timeout_s)


def dispose_engines() -> None:
    """Close every pooled connection (at exit, and between tests that drop databases)."""
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for e in engines:
        e.dispose()


def settings() -> Settings:
    """nudge's settings (``NUDGE_*`` and ``.env``), for entry points outside ``nudge/``."""
    return get_settings()


atexit.register(dispose_engines)


# --- adapter configs (one builder per adapter) ---------------------------------------------
def twilio_config(settings: Settings) -> TwilioConfig:
    """The Twilio gateway's own config: ``NUDGE_TWILIO_ACCOUNT_SID``,
    ``NUDGE_TWILIO_AUTH_TOKEN``, ``NUDGE_TWILIO_BASE_URL``, ``NUDGE_TWILIO_MESSAGING_SERVICE_SID``,
    ``NUDGE_TWILIO_COUNTRY``, ``NUDGE_TWILIO_TIMEOUT_S`` and ``NUDGE_TWILIO_MAX_RETRIES``;
    with ``NUDGE_WEBHOOK_PUBLIC_URL`` set, texts ask for status callbacks at its
    ``/twilio/status``. (``NUDGE_TWILIO_AREA_CODE`` is the send path's: it asks for numbers
    near it.)"""
    from adapters.twilio.config import TwilioConfig
    from adapters.twilio.webhooks import status_callback_url

    return TwilioConfig(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        base_url=settings.twilio_base_url,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        country=settings.twilio_country,
        timeout_s=settings.twilio_timeout_s,
        max_retries=settings.twilio_max_retries,
        status_callback=status_callback_url(settings.webhook_public_url),
    )


def webhook_config(settings: Settings) -> WebhookConfig:
    """The webhook receiver's own config: ``NUDGE_WEBHOOK_PUBLIC_URL`` (required: the URL
    Twilio signs), ``NUDGE_TWILIO_ACCOUNT_SID``, ``NUDGE_TWILIO_AUTH_TOKEN``,
    ``NUDGE_WEBHOOK_REPLAY_WINDOW_S`` and ``NUDGE_WEBHOOK_REPLAY_MEMORY_DAYS``.

    Raises ``ValueError`` naming the setting when the public URL is missing or malformed."""
    from adapters.twilio.webhooks import WebhookConfig

    if not settings.webhook_public_url:
        raise ValueError(
            "NUDGE_WEBHOOK_PUBLIC_URL is not set: the public https URL Twilio calls "
            "(e.g. https://texts.college.edu), which every signature covers"
        )
    return WebhookConfig(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        public_url=settings.webhook_public_url,
        replay_window_s=settings.webhook_replay_window_s,
        replay_memory_s=settings.webhook_replay_memory_days * 86_400,
    )


def sms_gateway(settings: Settings, **kwargs: Any) -> TwilioSmsGateway:
    """The Twilio gateway (or the emulator at ``NUDGE_TWILIO_BASE_URL``), configured by
    :func:`twilio_config`; ``kwargs`` go to :class:`TwilioSmsGateway` (``retry``,
    ``max_connections``, and for tests ``sleep`` and ``http_client``)."""
    from adapters.twilio.gateway import TwilioSmsGateway

    return TwilioSmsGateway(twilio_config(settings), **kwargs)


def smtp_config(settings: Settings) -> SmtpConfig:
    """The SMTP mailer's own config: ``NUDGE_SMTP_HOST`` (``localhost`` when unset),
    ``NUDGE_SMTP_PORT``, ``NUDGE_SMTP_USERNAME``, ``NUDGE_SMTP_PASSWORD``,
    ``NUDGE_SMTP_STARTTLS``, ``NUDGE_SMTP_TIMEOUT_S`` and ``NUDGE_MAIL_FROM``."""
    from adapters.mail.smtp import SmtpConfig

    return SmtpConfig(
        host=settings.smtp_host or "localhost",
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        timeout_s=settings.smtp_timeout_s,
        mail_from=settings.mail_from,
    )


def mailer(settings: Settings) -> Mailer:
    """SMTP when ``NUDGE_SMTP_HOST`` is set, else ``.eml`` files in ``NUDGE_OUTBOX_DIR``."""
    from adapters.mail.folder import OutboxMailer
    from adapters.mail.smtp import SmtpMailer

    if settings.smtp_host:
        return SmtpMailer(smtp_config(settings))
    return OutboxMailer(settings.outbox_dir, settings.mail_from)


def imap_config(settings: Settings) -> ImapConfig:
    """The reply mailbox's own config: ``NUDGE_IMAP_HOST`` (required), ``NUDGE_IMAP_PORT``,
    ``NUDGE_IMAP_SSL``, ``NUDGE_IMAP_USERNAME``, ``NUDGE_IMAP_PASSWORD``,
    ``NUDGE_IMAP_OAUTH2``, ``NUDGE_IMAP_FOLDER``, ``NUDGE_IMAP_HANDLED_FOLDER``,
    ``NUDGE_IMAP_REVIEW_FOLDER`` and ``NUDGE_IMAP_TIMEOUT_S``.

    Raises ``ValueError`` naming the setting when the mailbox or the reply address is not
    configured."""
    from adapters.mail.imap import ImapConfig

    missing = [
        name
        for name, value in (
            ("NUDGE_REPLY_ADDRESS", settings.reply_address),
            ("NUDGE_IMAP_HOST", settings.imap_host),
            ("NUDGE_IMAP_USERNAME", settings.imap_username),
        )
        if not value
    ]
    if missing:
        raise ValueError(
            f"the reply mailbox is not configured: set {', '.join(missing)} "
            "(README, 'Answering by email')"
        )
    return ImapConfig(
        host=settings.imap_host or "",
        port=settings.imap_port,
        ssl=settings.imap_ssl,
        username=settings.imap_username or "",
        password=settings.imap_password.get_secret_value() if settings.imap_password else "",
        oauth2=settings.imap_oauth2,
        folder=settings.imap_folder,
        handled_folder=settings.imap_handled_folder,
        review_folder=settings.imap_review_folder,
        timeout_s=settings.imap_timeout_s,
    )


def mailbox(settings: Settings) -> Mailbox:
    """The reply mailbox over IMAP, configured by :func:`imap_config` (not yet open: use it
    as a context manager)."""
    from adapters.mail.imap import Mailbox

    return Mailbox(imap_config(settings))


def ethos_config(settings: Settings) -> EthosConfig:
    """The Ethos source's own config: ``NUDGE_ETHOS_API_KEY``, ``NUDGE_ETHOS_ID_CREDENTIAL``,
    ``NUDGE_ETHOS_PAGE_SIZE``, ``NUDGE_ETHOS_TIMEOUT_S`` and ``NUDGE_ETHOS_MAX_ATTEMPTS``."""
    from adapters.sis.ethos_config import EthosConfig, RetryPolicy

    return EthosConfig(
        api_key=settings.ethos_api_key,
        id_credential=settings.ethos_id_credential,
        page_size=settings.ethos_page_size,
        timeout_s=settings.ethos_timeout_s,
        retry=RetryPolicy(max_attempts=settings.ethos_max_attempts),
    )


def sis_source(
    spec: str, settings: Settings, encoding: str | None = None, **knobs: Any
) -> SisSource:
    """The SIS source ``spec`` (``csv:PATH`` or ``ethos:URL``), an Ethos one configured by
    :func:`ethos_config`; ``knobs`` override that (see :func:`adapters.sis.open_source`)."""
    from adapters.sis import open_source

    return open_source(spec, ethos=ethos_config(settings), encoding=encoding, **knobs)


def env(settings: Settings | None = None) -> Env:
    """Everything a task is handed, for this process: the settings, the shared engine, the
    configured mailer and a factory for the SMS gateway (real Twilio, or the emulator at
    ``NUDGE_TWILIO_BASE_URL``)."""
    from tasks.env import Env

    settings = settings or get_settings()
    return Env(settings, engine(settings), mailer(settings), lambda: sms_gateway(settings))
