"""The one injection idiom of tasks: :class:`Env`, built by the shell (``nudge.wiring``).

Tasks read the settings they are handed and never load them, build engines or adapters.
:class:`TaskSettings` names the settings they read, so nothing in tasks/ imports the shell:
the shell's ``nudge.settings.Settings`` satisfies it (mypy checks that where the shell
builds an :class:`Env`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from pydantic import SecretStr
from sqlalchemy.engine import Engine

from domain.outbox import in_flight_bound
from models.chunks import worker_name
from models.types import utcnow
from tasks.pacing import SharedPacer

if TYPE_CHECKING:  # types only: the adapters load when the shell builds them
    from adapters.mail.protocol import Mailer
    from adapters.twilio.types import SmsGateway


class TaskSettings(Protocol):
    """The environment-level settings tasks read (``NUDGE_*``; see ``nudge/settings.py``)."""

    @property
    def account_mps(self) -> float: ...
    @property
    def alert_emails(self) -> list[str]: ...
    @property
    def campaign_fanout(self) -> int: ...
    @property
    def chunk_rate_limit(self) -> str | None: ...
    @property
    def chunk_size(self) -> int: ...
    @property
    def claim_stale_s(self) -> float: ...
    @property
    def heartbeat_s(self) -> float: ...
    @property
    def mail_from(self) -> str: ...
    @property
    def reply_address(self) -> str | None: ...
    @property
    def reply_secret(self) -> SecretStr | None: ...
    @property
    def send_concurrency(self) -> int: ...
    @property
    def send_deadline_s(self) -> float: ...
    @property
    def sender_mps(self) -> float: ...
    @property
    def smtp_timeout_s(self) -> float: ...
    @property
    def twilio_area_code(self) -> str | None: ...
    @property
    def urgent_emails(self) -> list[str]: ...
    @property
    def twilio_country(self) -> str: ...
    @property
    def twilio_timeout_s(self) -> float: ...


@dataclass
class Env:
    """What every task is handed: the settings, the process's engine, the mailer, a way to
    open the SMS gateway, this worker's name and the clock.

    Built once per run by the shell (``nudge.wiring.env``); tests build it with the real
    emulator and a real SMTP server. Tasks never build engines or adapters themselves.
    """

    settings: TaskSettings
    engine: Engine
    mailer: Mailer
    gateway_factory: Callable[[], SmsGateway]
    worker: str = field(default_factory=worker_name)
    now: Callable[[], datetime] = utcnow

    def sms_bound(self) -> timedelta:
        """How long an SMS marked ``sending`` may still have a request in flight."""
        s = self.settings
        return in_flight_bound(deadline_s=s.send_deadline_s, call_timeout_s=s.twilio_timeout_s)

    def email_bound(self) -> timedelta:
        """How long an email marked ``sending`` may still be on its way to the server."""
        s = self.settings
        return in_flight_bound(deadline_s=s.send_deadline_s, call_timeout_s=s.smtp_timeout_s)

    def pacer(self, sender_e164: str) -> SharedPacer:
        """Send slots for ``sender_e164``, shared with every worker process."""
        s = self.settings
        return SharedPacer(
            self.engine, [("account", s.account_mps), (f"sender:{sender_e164}", s.sender_mps)]
        )
