"""The real-time path end to end: Twilio's webhooks posted to the receiver (nudge/webhooks.py),
on both databases, with the real emulator and a real SMTP server.

Requests are signed as Twilio signs them (the SDK's ``RequestValidator.compute_signature``)
for the public URL ``https://texts.college.edu``; the test client calls the app at
``http://testserver``, as a receiver behind a TLS proxy sees it. The clock is injected:
the replay window passes without a sleep.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlmodel import Session
from starlette.applications import Starlette
from twilio.request_validator import RequestValidator

from adapters.twilio.webhooks import (
    IDEMPOTENCY_HEADER,
    INCOMING_PATH,
    SIGNATURE_HEADER,
    STATUS_PATH,
    empty_twiml,
)
from domain.audience import AudienceFilter
from domain.campaign import CampaignRequest
from flows.send_campaign import run_campaign
from models.config import load_config, save_config
from models.consent import Consent, ConsentEvent
from models.messaging import InboundMessage, Message, PollCursor, SenderNumber
from models.people import Person, PhoneNumber
from models.types import utcnow
from models.webhooks import WebhookDelivery
from nudge.settings import Settings
from nudge.webhooks import create_app
from nudge.wiring import webhook_config
from tasks.env import Env
from tests.e2e.stack import free_port, nudge_process, wait_for

TOKEN = "webhook-e2e-token-5d2c"
PUBLIC = "https://texts.college.edu"
T1_NUMBER = "+12125550101"
#: Where the receiver runs, as it sees requests (behind the proxy that publishes ``PUBLIC``).
APP_SEES = "http://testserver"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Hooks:
    """A synced college whose staff member T1 has a number, and the receiver in front of it."""

    settings: Settings
    env: Env
    app: Starlette
    clock: Clock
    emulator: Any
    smtp: Any
    students: list[str]

    def form(self, student: int, body: str, sid: str | None = None) -> dict[str, str]:
        """What Twilio posts for a text from ``student`` to T1's number."""
        sid = sid or "SM" + hashlib.sha256(f"{student}:{body}".encode()).hexdigest()[:32]
        return {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": self.settings.twilio_account_sid,
            "MessagingServiceSid": "",
            "From": self.students[student],
            "To": T1_NUMBER,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }

    def post(
        self,
        path: str,
        form: dict[str, str],
        *,
        signed_form: dict[str, str] | None = None,
        signed_url: str | None = None,
        token: str = TOKEN,
        signature: str | None = "sign",
    ) -> httpx.Response:
        """POST ``form`` to ``path`` signed (by default correctly) as Twilio would sign it."""
        headers = {IDEMPOTENCY_HEADER: "idem-" + form["MessageSid"]}
        if signature == "sign":
            url = signed_url or PUBLIC + path
            signature = RequestValidator(token).compute_signature(url, signed_form or form)
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=APP_SEES) as client:
                return await client.post(path, data=form, headers=headers)

        return asyncio.run(call())

    def count(self, model: Any, *where: Any) -> int:
        with Session(self.env.engine) as s:
            return int(
                s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
            )

    def consent(self, number: str) -> tuple[str, str] | None:
        with Session(self.env.engine) as s:
            row = s.execute(
                select(Consent).where(Consent.e164 == number, Consent.sender_e164 == "")
            ).scalar_one_or_none()
            return (row.status, row.source) if row else None


def set_config(settings: Settings, env: Env, **values: Any) -> None:
    with Session(env.engine) as s:
        config = load_config(session=s)
        for key, value in {"quiet_hours": "off", **values}.items():
            setattr(config, key, value)
        save_config(config, session=s)
        s.commit()


@pytest.fixture
def webhook_settings(live_settings: Settings) -> Settings:
    return live_settings.model_copy(
        update={"twilio_auth_token": SecretStr(TOKEN), "webhook_public_url": PUBLIC}
    )


@pytest.fixture
def make_hooks(
    webhook_settings: Settings,
    emulator: Any,
    smtp: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> Callable[..., Hooks]:
    def build(n: int = 2, **config: Any) -> Hooks:
        numbers = college(n)
        clock = Clock()
        env = make_env(now=clock, settings=webhook_settings)
        set_config(webhook_settings, env, **config)
        with Session(env.engine) as s:
            staff = s.execute(select(Person).where(Person.sis_id == "T1")).scalar_one()
            s.add(SenderNumber(staff_person_id=staff.id, e164=T1_NUMBER, status="active"))
            s.commit()
        app = create_app(env, webhook_config(webhook_settings))
        smtp.handler.messages.clear()
        return Hooks(webhook_settings, env, app, clock, emulator, smtp, numbers)

    return build


# --- incoming messages -----------------------------------------------------------------------


def test_a_text_twilio_retries_is_stored_once_and_acted_on_at_once(
    make_hooks: Callable[..., Hooks],
) -> None:
    hooks = make_hooks(2, keyword_replies=True)
    question, stop = hooks.form(0, "Can I come by at 3?"), hooks.form(1, "STOP")
    for _ in range(3):  # Twilio's retries: the same request, the same signature
        for form in (question, stop):
            answer = hooks.post(INCOMING_PATH, form)
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"].startswith("text/xml")
            assert answer.text == empty_twiml()

    assert hooks.count(InboundMessage) == 2
    assert hooks.consent(hooks.students[1]) == ("opted_out", "stop")
    assert hooks.count(ConsentEvent, ConsentEvent.source == "stop") == 1
    # The audit trail says the webhook receiver made the change.
    assert hooks.count(ConsentEvent, ConsentEvent.actor == "webhook") == 1
    [email] = hooks.smtp.messages  # the question, to T1; a keyword never reaches staff
    assert "Can I come by at 3?" in email.get_payload(decode=True).decode()
    assert hooks.emulator.counters()["per_to"] == {hooks.students[1]: 1}  # STOP answered once
    # The poll's cursor is untouched: the poll still lists these, and finds them stored.
    assert hooks.count(PollCursor) == 0
    assert hooks.count(WebhookDelivery) == 2


#: (row id, how the request differs from a good one). Each must answer 403 and store nothing.
REFUSALS: list[tuple[str, dict[str, Any]]] = [
    ("missing-signature", {"signature": None}),
    ("garbage-signature", {"signature": "bm90IGEgc2lnbmF0dXJl"}),
    ("wrong-token", {"token": "someone-elses-token"}),
    ("tampered-body", {"tamper": {"Body": "START"}}),
    ("tampered-from", {"tamper": {"From": "+12125559999"}}),
    ("added-parameter", {"tamper": {"Extra": "1"}}),
    ("url-the-app-sees", {"signed_url": APP_SEES + INCOMING_PATH}),
    ("other-host", {"signed_url": "https://attacker.example" + INCOMING_PATH}),
    ("other-route", {"signed_url": PUBLIC + STATUS_PATH}),
    ("other-account", {"resign": {"AccountSid": "AC" + "9" * 32}}),
]


@pytest.mark.parametrize("change", [r[1] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_a_request_that_is_not_twilios_is_refused_and_stores_nothing(
    make_hooks: Callable[..., Hooks], change: dict[str, Any]
) -> None:
    hooks = make_hooks(1)
    signed = {**hooks.form(0, "STOP"), **change.get("resign", {})}
    sent = {**signed, **change.get("tamper", {})}
    options = {k: v for k, v in change.items() if k not in ("tamper", "resign")}
    answer = hooks.post(INCOMING_PATH, sent, signed_form=signed, **options)

    assert answer.status_code == 403
    assert (hooks.count(InboundMessage), hooks.count(WebhookDelivery)) == (0, 0)
    assert hooks.consent(hooks.students[0]) == ("opted_in", "auto")
    assert hooks.smtp.messages == []


def test_an_oversized_form_is_refused_unread(make_hooks: Callable[..., Hooks]) -> None:
    hooks = make_hooks(1)
    huge = hooks.form(0, "x" * (65 * 1024))
    assert hooks.post(INCOMING_PATH, huge).status_code == 413
    assert (hooks.count(InboundMessage), hooks.count(WebhookDelivery)) == (0, 0)


def test_the_same_request_after_the_replay_window_is_refused(
    make_hooks: Callable[..., Hooks],
) -> None:
    hooks = make_hooks(1)
    window = hooks.settings.webhook_replay_window_s
    stop = hooks.form(0, "STOP")
    assert hooks.post(INCOMING_PATH, stop).status_code == 200
    hooks.clock.advance(window - 1)
    assert hooks.post(INCOMING_PATH, stop).status_code == 200  # a late retry
    hooks.clock.advance(2)
    assert hooks.post(INCOMING_PATH, stop).status_code == 403  # a replay
    assert hooks.post(STATUS_PATH, stop).status_code == 200  # another URL: another request

    assert hooks.count(InboundMessage) == 1
    assert hooks.count(ConsentEvent, ConsentEvent.source == "stop") == 1
    # First sights are forgotten after the memory (pruned at most hourly per process).
    hooks.clock.advance(hooks.settings.webhook_replay_memory_days * 86_400 + 3600)
    assert hooks.post(INCOMING_PATH, hooks.form(0, "thanks")).status_code == 200
    assert hooks.count(WebhookDelivery) == 1


# --- status callbacks ------------------------------------------------------------------------

IN, OUT = ("opted_in", "auto"), ("opted_out", "carrier_21610")
#: (row id, the callbacks in order as "MessageStatus[:ErrorCode] ...", then the text's status
#: and error code, whether the number is disabled, and the student's consent afterwards).
STATUS_TABLE: list[tuple[str, str, str, int | None, bool, tuple[str, str]]] = [
    ("delivered", "delivered", "delivered", None, False, IN),
    ("read-is-delivered", "read", "delivered", None, False, IN),
    ("progress-then-delivered", "queued sending sent delivered", "delivered", None, False, IN),
    ("late-sent-after-delivered", "delivered sent", "delivered", None, False, IN),
    ("late-failure-after-delivered", "delivered failed:30003", "delivered", None, False, IN),
    ("delivered-after-undelivered", "undelivered:30003 delivered", "undelivered", 30003, False, IN),
    ("sent-only-waits", "sent", "sent", None, False, IN),
    ("30005-disables-the-number", "undelivered:30005", "undelivered", 30005, True, IN),
    ("21610-opts-out", "failed:21610", "failed", 21610, False, OUT),
    ("21610-retried-opts-out-once", "failed:21610 " * 3, "failed", 21610, False, OUT),
]


def test_status_callbacks_move_texts_forward_only_with_the_polls_consequences(
    make_hooks: Callable[..., Hooks],
) -> None:
    """Every row at once (one student per row, one campaign)."""
    hooks = make_hooks(len(STATUS_TABLE))
    result = run_campaign(
        CampaignRequest(
            sender_id="T1", message="Hi {first_name}", audience=AudienceFilter(caseload=["T1"])
        ),
        settings=hooks.settings,
        env=hooks.env,
    )
    assert result["sms"] == len(STATUS_TABLE)
    with Session(hooks.env.engine) as s:
        texts = {
            m.to_addr: m
            for m in s.execute(select(Message).where(Message.kind == "campaign")).scalars()
        }
    for i, (_, callbacks, *_rest) in enumerate(STATUS_TABLE):
        text = texts[hooks.students[i]]
        for callback in callbacks.split():
            status, _, code = callback.partition(":")
            form = {
                "MessageSid": str(text.provider_sid),
                "SmsSid": str(text.provider_sid),
                "AccountSid": hooks.settings.twilio_account_sid,
                "From": str(text.from_addr),
                "To": str(text.to_addr),
                "MessageStatus": status,
                "SmsStatus": status,
                "ApiVersion": "2010-04-01",
                **({"ErrorCode": code} if code else {}),
            }
            answer = hooks.post(STATUS_PATH, form)
            assert answer.status_code == 200, answer.text
    unknown = {"MessageSid": "SM" + "f" * 32, "AccountSid": hooks.settings.twilio_account_sid}
    assert hooks.post(STATUS_PATH, {**unknown, "MessageStatus": "delivered"}).status_code == 200
    tampered = {**unknown, "MessageSid": str(texts[hooks.students[0]].provider_sid)}
    assert (
        hooks.post(
            STATUS_PATH,
            {**tampered, "MessageStatus": "failed", "ErrorCode": "21610"},
            signed_form={**tampered, "MessageStatus": "sent"},
        ).status_code
        == 403
    )

    with Session(hooks.env.engine) as s:
        texts = {
            m.to_addr: m
            for m in s.execute(select(Message).where(Message.kind == "campaign")).scalars()
        }
        phones = {p.e164: p for p in s.execute(select(PhoneNumber)).scalars()}
    actual = {
        row_id: (
            texts[hooks.students[i]].status,
            texts[hooks.students[i]].error_code,
            phones[hooks.students[i]].disabled_by_carrier,
            hooks.consent(hooks.students[i]),
        )
        for i, (row_id, *_rest) in enumerate(STATUS_TABLE)
    }
    assert actual == {row[0]: (row[2], row[3], row[4], row[5]) for row in STATUS_TABLE}
    assert hooks.count(ConsentEvent, ConsentEvent.source == "carrier_21610") == 2


# --- `nudge webhooks serve`, a process of its own --------------------------------------------


@pytest.mark.slow
def test_nudge_webhooks_serve_receives_a_signed_text(
    make_hooks: Callable[..., Hooks], tmp_path: Path
) -> None:
    hooks = make_hooks(1)
    port = free_port()
    s = hooks.settings
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")},
        "NUDGE_DATABASE_URL": s.database_url,
        "NUDGE_TWILIO_ACCOUNT_SID": s.twilio_account_sid,
        "NUDGE_TWILIO_AUTH_TOKEN": TOKEN,
        "NUDGE_TWILIO_BASE_URL": str(s.twilio_base_url),
        "NUDGE_WEBHOOK_PUBLIC_URL": PUBLIC,
        "NUDGE_SMTP_HOST": str(s.smtp_host),
        "NUDGE_SMTP_PORT": str(s.smtp_port),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    log = tmp_path / "webhooks.log"
    question = hooks.form(0, "Is the form due Friday?")
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + INCOMING_PATH, question)
    base = f"http://127.0.0.1:{port}"
    args = ("webhooks", "serve", "--port", str(port))
    with nudge_process(*args, env=env, cwd=tmp_path, log=log) as process:

        def healthy() -> bool | None:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"{base}/healthz", timeout=1).text == "ok"
            except httpx.HTTPError:
                return None

        wait_for(healthy, timeout=60, what="nudge webhooks serve", every_s=0.2)
        for _ in range(2):
            answer = httpx.post(
                base + INCOMING_PATH,
                data=question,
                headers={SIGNATURE_HEADER: signature},
                timeout=30,
            )
            assert answer.status_code == 200, log.read_text()
        forged = httpx.post(base + INCOMING_PATH, data=question, timeout=30)
        assert forged.status_code == 403
        wait_for(
            lambda: len(hooks.smtp.messages) or None, timeout=30, what="the email", every_s=0.1
        )
    assert hooks.count(InboundMessage) == 1
    assert len(hooks.smtp.messages) == 1
    output = log.read_text()
    assert f"incoming {question['MessageSid']}: stored" in output
    assert (
        hooks.students[0] not in output and "Is the form due" not in output and TOKEN not in output
    )
