"""Fixtures of the end-to-end tests: settings wired to the emulator and SMTP, and people."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from adapters.twilio.retries import RetryPolicy
from adapters.twilio.types import SmsGateway
from flows.sis_sync import run_sync
from models.config import load_config, save_config
from models.db import make_engine
from models.types import utcnow
from nudge.settings import Settings
from nudge.wiring import sms_gateway
from tasks.env import Env
from tests.helpers import phone, staff, student, write_extract


@pytest.fixture
def live_settings(settings: Settings, emulator: Any, smtp: Any) -> Settings:
    """Settings pointing at the emulator and at the SMTP server, paced fast."""
    return settings.model_copy(
        update={
            "twilio_base_url": emulator.base_url,
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "sender_mps": 1000.0,
            "account_mps": 1000.0,
            "chunk_size": 4,
            "send_concurrency": 4,
            "alert_emails": ["sms-admin@college.edu"],
        }
    )


def fast_gateway(settings: Settings) -> SmsGateway:
    """The real gateway with millisecond backoff, so retry tests stay fast."""
    return sms_gateway(
        settings, retry=RetryPolicy(max_retries=6, backoff_base_s=0.001, backoff_max_s=0.005)
    )


@pytest.fixture
def make_env(live_settings: Settings) -> Iterator[Callable[..., Env]]:
    """Build a Env (optionally with another gateway or clock), disposing engines after."""
    from nudge import wiring

    engines: list[Engine] = []

    def build(
        gateway: Callable[[], SmsGateway] | None = None,
        now: Callable[[], datetime] = utcnow,
        settings: Settings | None = None,
    ) -> Env:
        conf = settings or live_settings
        engine = make_engine(conf.database_url)
        engines.append(engine)
        return Env(
            conf, engine, wiring.mailer(conf), gateway or (lambda: fast_gateway(conf)), now=now
        )

    yield build
    for engine in engines:
        engine.dispose()


@pytest.fixture
def college(tmp_path: Path, live_settings: Settings) -> Callable[..., list[str]]:
    """Sync a small college: staff T1 (Texting role), N1 (no role), students S0..Sn."""

    def build(n: int = 6, **student_fields: Any) -> list[str]:
        people = [
            staff("T1", first_name="Tess", last_name="Adams", roles="Texting"),
            staff("T2", first_name="Omar", last_name="Reyes", roles="Texting"),
            staff("N1", first_name="Nia", last_name="Moss", roles=""),
        ]
        phones = []
        for i in range(n):
            people.append(student(f"S{i}", advisor_id="T1", **student_fields))
            phones.append(phone(f"S{i}", f"(212) 555-{1000 + i:04d}"))
        run_sync(write_extract(tmp_path / "college", people, phones), settings=live_settings)
        # Tests must not depend on the hour CI runs at: no quiet hours unless a test sets them.
        engine = make_engine(live_settings.database_url)
        with Session(engine) as s:
            config = load_config(session=s)
            config.quiet_hours = "off"
            save_config(config, session=s)
            s.commit()
        engine.dispose()
        return [f"+1212555{1000 + i:04d}" for i in range(n)]

    return build
