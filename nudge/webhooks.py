"""The webhook receiver: a small ASGI app (Starlette) for Twilio's incoming-message and
status-callback webhooks, nudge's optional real-time path (``nudge webhooks serve``).

=========================  ====================================================
``POST /twilio/incoming``  a student's text: stored by MessageSid, acted on at once
``POST /twilio/status``    a text's delivery status: applied forward only
``GET /healthz``           ``ok`` (for the reverse proxy and monitoring)
=========================  ====================================================

Every POST goes through the same gate, in this order; any refusal stores nothing:

1. the form (at most 64 KiB) is signed: ``X-Twilio-Signature`` checked by the official SDK
   against ``NUDGE_WEBHOOK_PUBLIC_URL`` + the path (+ the query), with the auth token
   (:mod:`adapters.twilio.webhooks`) -> else **403**;
2. ``AccountSid`` is ours -> else **403**;
3. the replay rule: the request's first sight is recorded (``models/webhooks.py``, shared by
   every receiver process). Presented again within ``NUDGE_WEBHOOK_REPLAY_WINDOW_S`` of that
   first sight it is one of Twilio's retries: processed again, which changes nothing (stored
   by SID, statuses forward only) -> **200**. Later it is a replay -> **403**.

Then the same code as the poll runs (:mod:`tasks.webhooks`): a text is stored and its
STOP/START/HELP applied before the answer; the staff email and the keyword answer it queued
are sent from the outbox right after the answer (one pass at a time per process; exactly
once whoever sends them). The answer is an empty TwiML ``<Response/>``, so Twilio sends
nothing itself. A failure while storing answers 500 (Twilio may retry; the poll is the
backstop). Logs name the route, the outcome and the message SID: never a number, a body, a
signature or a token.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from adapters.twilio.webhooks import (
    INCOMING_PATH,
    SIGNATURE_HEADER,
    STATUS_PATH,
    FormParams,
    WebhookConfig,
    delivery_key,
    empty_twiml,
    inbound_message,
    signature_ok,
    status_update,
)
from tasks.env import Env
from tasks.webhooks import (
    deliver_follow_ups,
    receive_inbound,
    receive_status,
    within_replay_window,
)

if TYPE_CHECKING:
    from nudge.settings import Settings

log = logging.getLogger("nudge.webhooks")

#: The largest form accepted (Twilio's are a few hundred bytes; a text is at most 1,600).
MAX_BODY_BYTES = 64 * 1024
#: How often one process prunes first sightings older than the replay memory.
PRUNE_EVERY = timedelta(hours=1)


class Refused(Exception):
    """A request the gate turns away: ``status`` is the HTTP answer, ``reason`` is logged."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Receiver:
    """The gate and the follow-up pass of one receiver process (see the module docstring)."""

    def __init__(self, env: Env, config: WebhookConfig) -> None:
        self.env = env
        self.config = config
        self._lock = threading.Lock()
        self._pending = False
        self._draining = False
        self._pruned_at: datetime | None = None

    async def admit(self, request: Request, kind: str) -> FormParams:
        """The request's parameters, if it passes the gate; raises :class:`Refused`."""
        params = FormParams.parse(await _read_body(request))
        url = self.config.url_for(request.url.path, request.url.query)
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise Refused(403, "missing signature")
        if not signature_ok(self.config, url=url, params=params, signature=signature):
            raise Refused(403, "invalid signature")
        if params.get("AccountSid") != self.config.account_sid:
            raise Refused(403, "signed for another account")
        if not params.get("MessageSid") and not params.get("SmsSid"):
            raise Refused(400, "no MessageSid")
        key = delivery_key(url=url, params=params, signature=signature)
        try:
            retry = await run_in_threadpool(self._first_sight_in_window, key, kind)
        except Exception as exc:  # the database: Twilio may retry, the poll is the backstop
            raise Refused(500, f"replay check failed ({type(exc).__name__})") from exc
        if not retry:
            raise Refused(403, "replayed after the replay window")
        return params

    def _first_sight_in_window(self, key: str, kind: str) -> bool:
        now = self.env.now()
        prune = self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY
        if prune:
            self._pruned_at = now
        return within_replay_window(
            self.env,
            key=key,
            kind=kind,
            window=timedelta(seconds=self.config.replay_window_s),
            memory=timedelta(seconds=self.config.replay_memory_s) if prune else None,
        )

    def drain(self) -> None:
        """Send the follow-ups waiting in the outbox; one pass at a time in this process,
        and one more if a webhook queued something while a pass was running."""
        with self._lock:
            self._pending = True
            if self._draining:
                return
            self._draining = True
        while True:
            with self._lock:
                if not self._pending:
                    self._draining = False
                    return
                self._pending = False
            try:
                done = deliver_follow_ups(self.env)
                log.info(
                    "follow-ups: %d notification emails, %d keyword answers sent",
                    done.notify.notifications_sent,
                    done.keyword_replies_sent,
                )
            except Exception as exc:  # the next webhook or poll sends what is left
                log.error("follow-ups failed (%s); left in the outbox", type(exc).__name__)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise Refused(413, "body too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise Refused(413, "body too large")
    return bytes(body)


def _twiml(background: BackgroundTask | None = None) -> Response:
    return Response(empty_twiml(), media_type="text/xml", background=background)


def _refusal(route: str, refused: Refused) -> Response:
    level = logging.ERROR if refused.status >= 500 else logging.WARNING
    log.log(level, "%s webhook refused (%d): %s", route, refused.status, refused.reason)
    return PlainTextResponse(
        "forbidden" if refused.status == 403 else refused.reason, status_code=refused.status
    )


def create_app(env: Env, config: WebhookConfig) -> Starlette:
    """The receiver as an ASGI app, storing through ``env`` (its clock decides the replay
    window) and checking requests with ``config``."""
    receiver = Receiver(env, config)

    async def incoming(request: Request) -> Response:
        try:
            params = await receiver.admit(request, "incoming")
        except Refused as refused:
            return _refusal("incoming", refused)
        message = inbound_message(params, received_at=env.now())
        try:
            stored = await run_in_threadpool(receive_inbound, env, message)
        except Exception as exc:
            log.error("incoming %s: storing failed (%s)", message.sid, type(exc).__name__)
            return PlainTextResponse("not stored", status_code=500)
        log.info(
            "incoming %s: %s (STOP %d, START %d, HELP %d)",
            message.sid,
            "stored" if stored.new else "already stored",
            stored.opt_outs,
            stored.opt_ins,
            stored.help,
        )
        queued = stored.notifications_queued + stored.keyword_replies_queued
        return _twiml(BackgroundTask(receiver.drain) if queued else None)

    async def status(request: Request) -> Response:
        try:
            params = await receiver.admit(request, "status")
        except Refused as refused:
            return _refusal("status", refused)
        update = status_update(params)
        try:
            applied = await run_in_threadpool(receive_status, env, update)
        except Exception as exc:
            log.error("status %s: not applied (%s)", update.sid, type(exc).__name__)
            return PlainTextResponse("not applied", status_code=500)
        if applied.fatal_codes:
            log.error(
                "status %s: delivery failed with configuration error %s: check the account "
                "and sender registration",
                update.sid,
                ",".join(applied.fatal_codes),
            )
        log.info(
            "status %s: %s %s",
            update.sid,
            update.status,
            "applied" if applied.statuses_updated else "changes nothing",
        )
        return _twiml()

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route(INCOMING_PATH, incoming, methods=["POST"]),
            Route(STATUS_PATH, status, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )


def app_from_settings(settings: Settings) -> Starlette:
    """The receiver wired from ``settings`` (``nudge.wiring``): this process's engine,
    mailer and Twilio gateway, and the webhook config (``NUDGE_WEBHOOK_*``)."""
    from nudge import wiring

    config = wiring.webhook_config(settings)  # first: a missing URL fails before anything opens
    return create_app(wiring.env(settings), config)


__all__ = ["MAX_BODY_BYTES", "Receiver", "Refused", "app_from_settings", "create_app"]
