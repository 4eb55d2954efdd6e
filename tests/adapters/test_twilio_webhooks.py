"""Twilio's webhooks read and checked (adapters/twilio/webhooks.py): signatures by the
official SDK against the public URL, the replay key, and what a form becomes.

Requests are signed here as Twilio signs them, with the SDK's own
``RequestValidator.compute_signature``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from adapters.twilio.errors import ErrorClass, SendOutcome
from adapters.twilio.gateway import TwilioSmsGateway
from adapters.twilio.http import RewritingAsyncHttpClient
from adapters.twilio.retries import RetryPolicy
from adapters.twilio.webhooks import (
    INCOMING_PATH,
    STATUS_PATH,
    FormParams,
    WebhookConfig,
    delivery_key,
    empty_twiml,
    inbound_message,
    signature_ok,
    status_callback_url,
    status_update,
)
from nudge.settings import Settings
from nudge.wiring import twilio_config, webhook_config

ACCOUNT = "AC" + "7" * 32
TOKEN = "webhook-test-token-3f9a"
PUBLIC = "https://texts.college.edu"
CONFIG = WebhookConfig(account_sid=ACCOUNT, auth_token=SecretStr(TOKEN), public_url=PUBLIC)
FORM = {
    "MessageSid": "SM" + "a" * 32,
    "AccountSid": ACCOUNT,
    "From": "+12125550123",
    "To": "+14155550100",
    "Body": "Stop!",
    "NumMedia": "0",
    "NumSegments": "1",
    "SmsStatus": "received",
}


def sign(url: str, form: dict[str, str], token: str = TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, form))


def params(form: dict[str, str]) -> FormParams:
    return FormParams.parse(urlencode(form).encode())


# --- the config --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "public_url",
    [
        pytest.param("texts.college.edu", id="no-scheme"),
        pytest.param("ftp://texts.college.edu", id="not-http"),
        pytest.param("https://", id="no-host"),
        pytest.param("https://texts.college.edu/?a=1", id="query"),
    ],
)
def test_a_public_url_twilio_could_not_call_is_refused(public_url: str) -> None:
    with pytest.raises(ValueError, match="public URL"):
        WebhookConfig(account_sid=ACCOUNT, auth_token=SecretStr(TOKEN), public_url=public_url)


def test_the_full_url_is_the_public_base_plus_the_path_and_query() -> None:
    config = WebhookConfig(
        account_sid=ACCOUNT, auth_token=SecretStr(TOKEN), public_url="https://c.edu/sms/"
    )
    assert config.url_for(INCOMING_PATH) == "https://c.edu/sms/twilio/incoming"
    assert config.url_for(STATUS_PATH, "x=1") == "https://c.edu/sms/twilio/status?x=1"


def test_the_replay_memory_outlasts_the_window() -> None:
    with pytest.raises(ValueError, match="replay_memory_s"):
        WebhookConfig(
            account_sid=ACCOUNT,
            auth_token=SecretStr(TOKEN),
            public_url=PUBLIC,
            replay_window_s=600,
            replay_memory_s=60,
        )


def test_wiring_builds_the_config_from_settings_and_names_a_missing_url() -> None:
    settings = Settings(
        _env_file=None,
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=SecretStr(TOKEN),
        webhook_public_url=PUBLIC + "/",
        webhook_replay_window_s=120,
        webhook_replay_memory_days=2,
    )
    config = webhook_config(settings)
    assert (config.public_url, config.replay_window_s, config.replay_memory_s) == (
        PUBLIC,
        120,
        2 * 86_400,
    )
    assert config.auth_token.get_secret_value() == TOKEN
    with pytest.raises(ValueError, match="NUDGE_WEBHOOK_PUBLIC_URL"):
        webhook_config(settings.model_copy(update={"webhook_public_url": None}))


# --- signatures --------------------------------------------------------------------------

URL = PUBLIC + INCOMING_PATH

#: (row id, URL the request is checked against, form received, signature, valid?)
SIGNATURE_ROWS: list[tuple[str, str, dict[str, str], str | None, bool]] = [
    ("valid", URL, FORM, sign(URL, FORM), True),
    ("valid-empty-body", URL, {**FORM, "Body": ""}, sign(URL, {**FORM, "Body": ""}), True),
    ("valid-with-default-port", PUBLIC + ":443" + INCOMING_PATH, FORM, sign(URL, FORM), True),
    ("valid-with-query", URL + "?x=1", FORM, sign(URL + "?x=1", FORM), True),
    ("missing", URL, FORM, None, False),
    ("empty", URL, FORM, "", False),
    ("wrong-token", URL, FORM, sign(URL, FORM, token="another-token"), False),
    ("tampered-body", URL, {**FORM, "Body": "Start"}, sign(URL, FORM), False),
    ("tampered-from", URL, {**FORM, "From": "+12125550999"}, sign(URL, FORM), False),
    ("added-param", URL, {**FORM, "Extra": "1"}, sign(URL, FORM), False),
    (
        "dropped-param",
        URL,
        {k: v for k, v in FORM.items() if k != "NumMedia"},
        sign(URL, FORM),
        False,
    ),
    ("other-host", URL, FORM, sign("https://evil.example" + INCOMING_PATH, FORM), False),
    ("other-path", URL, FORM, sign(PUBLIC + STATUS_PATH, FORM), False),
    ("http-not-https", URL, FORM, sign("http://texts.college.edu" + INCOMING_PATH, FORM), False),
    ("query-dropped", URL, FORM, sign(URL + "?x=1", FORM), False),
]


@pytest.mark.parametrize(
    ("url", "form", "signature", "valid"),
    [row[1:] for row in SIGNATURE_ROWS],
    ids=[row[0] for row in SIGNATURE_ROWS],
)
def test_signature_table(
    url: str, form: dict[str, str], signature: str | None, valid: bool
) -> None:
    assert signature_ok(CONFIG, url=url, params=params(form), signature=signature) is valid


def test_repeated_parameters_are_signed_as_the_sdk_signs_them() -> None:
    body = b"MessageSid=SM1&MediaUrl=b&MediaUrl=a&AccountSid=" + ACCOUNT.encode()
    form = FormParams.parse(body)
    multi = {"MessageSid": ["SM1"], "MediaUrl": ["b", "a"], "AccountSid": [ACCOUNT]}

    class Multi(dict[str, list[str]]):
        def getlist(self, name: str) -> list[str]:
            return self[name]

    signature = str(RequestValidator(TOKEN).compute_signature(URL, Multi(multi)))
    assert form.getlist("MediaUrl") == ["b", "a"]
    assert signature_ok(CONFIG, url=URL, params=form, signature=signature)


# --- the replay key ----------------------------------------------------------------------


def test_the_key_names_one_signed_request_whatever_the_order_of_its_parameters() -> None:
    signature = sign(URL, FORM)
    reordered = dict(reversed(list(FORM.items())))
    key = delivery_key(url=URL, params=params(FORM), signature=signature)
    assert len(key) == 64
    assert delivery_key(url=URL, params=params(reordered), signature=signature) == key
    others = {
        delivery_key(url=URL, params=params(FORM), signature=sign(URL, FORM, "x")),
        delivery_key(url=URL + "?x=1", params=params(FORM), signature=signature),
        delivery_key(url=URL, params=params({**FORM, "Body": "STOP"}), signature=signature),
    }
    assert key not in others and len(others) == 3


# --- what a form becomes -----------------------------------------------------------------


def test_an_incoming_form_is_the_message_the_poller_would_have_listed() -> None:
    at = datetime(2026, 12, 1, 15, 4, 5, tzinfo=UTC)
    message = inbound_message(params(FORM), received_at=at)
    assert message.is_inbound
    assert (message.sid, message.from_, message.to, message.body) == (
        FORM["MessageSid"],
        FORM["From"],
        FORM["To"],
        "Stop!",
    )
    assert (message.status, message.date_sent, message.num_segments) == ("received", at, 1)


STATUS_ROWS: list[tuple[str, dict[str, str], str, int | None, ErrorClass | None]] = [
    ("delivered", {"MessageStatus": "delivered"}, "delivered", None, None),
    ("sent", {"MessageStatus": "sent", "ErrorCode": ""}, "sent", None, None),
    (
        "undelivered-30005",
        {"MessageStatus": "undelivered", "ErrorCode": "30005"},
        "undelivered",
        30005,
        ErrorClass.NOT_SMS_CAPABLE,
    ),
    (
        "failed-21610",
        {"MessageStatus": "failed", "ErrorCode": "21610"},
        "failed",
        21610,
        ErrorClass.OPTED_OUT,
    ),
    ("legacy-SmsStatus", {"SmsStatus": "delivered"}, "delivered", None, None),
    ("garbled-code", {"MessageStatus": "failed", "ErrorCode": "x"}, "failed", None, None),
]


@pytest.mark.parametrize(
    ("extra", "status", "code", "error_class"),
    [row[1:] for row in STATUS_ROWS],
    ids=[row[0] for row in STATUS_ROWS],
)
def test_a_status_callback_is_the_status_a_fetch_would_have_returned(
    extra: dict[str, str], status: str, code: int | None, error_class: ErrorClass | None
) -> None:
    base = {"MessageSid": "SM" + "b" * 32, "AccountSid": ACCOUNT, "To": "+1", "From": "+2"}
    update = status_update(params({**base, **extra}))
    assert (update.sid, update.status, update.error_code, update.error_class) == (
        base["MessageSid"],
        status,
        code,
        error_class,
    )
    assert update.date_updated is None and not update.is_inbound


def test_the_answer_is_an_empty_twiml_response() -> None:
    assert empty_twiml() == str(MessagingResponse())
    assert empty_twiml().endswith("<Response />")


# --- StatusCallback on sends -------------------------------------------------------------


class RecordingClient(RewritingAsyncHttpClient):
    """The gateway's HTTP client, keeping the form of every request it makes."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url, timeout_s=2.0)
        self.forms: list[dict[str, object]] = []

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        data = kwargs.get("data") if "data" in kwargs else (args[1] if len(args) > 1 else None)
        self.forms.append(dict(data or {}))
        return await super().request(method, url, *args, **kwargs)


@pytest.mark.parametrize(
    ("public_url", "callback"),
    [
        pytest.param(None, None, id="no-public-url-no-callback"),
        pytest.param(PUBLIC + "/", PUBLIC + STATUS_PATH, id="public-url-asks-for-callbacks"),
    ],
)
async def test_texts_ask_for_status_callbacks_only_with_a_public_url(
    emulator: Any, public_url: str | None, callback: str | None
) -> None:
    assert status_callback_url(public_url) == callback
    settings = Settings(
        _env_file=None,
        twilio_base_url=emulator.base_url,
        webhook_public_url=public_url,
    )
    client = RecordingClient(emulator.base_url)
    fast = RetryPolicy(max_retries=1, backoff_base_s=0.001, backoff_max_s=0.002)
    async with TwilioSmsGateway(twilio_config(settings), retry=fast, http_client=client) as gw:
        result = await gw.send(to="+12125550188", from_="+14155550100", body="Hi")
    assert result.outcome is SendOutcome.SENT
    (form,) = client.forms
    assert form.get("StatusCallback") == callback
