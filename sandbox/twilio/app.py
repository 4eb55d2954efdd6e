"""The emulator as an ASGI app: Twilio's REST routes plus the ``/sandbox`` control routes.

Twilio routes (HTTP basic auth on every call, Twilio's error shape on every failure)::

    POST/GET  /2010-04-01/Accounts/{AC}/Messages.json
    GET       /2010-04-01/Accounts/{AC}/Messages/{SM}.json
    GET       /2010-04-01/Accounts/{AC}/AvailablePhoneNumbers/{Country}/Local.json
    POST/GET  /2010-04-01/Accounts/{AC}/IncomingPhoneNumbers.json
    POST/GET  /messaging/v1/Services/{MG}/PhoneNumbers   (messaging.twilio.com, see below)

Hosts other than ``api.twilio.com`` are served under a prefix named after the product
(``https://messaging.twilio.com/v1/...`` -> ``{base}/messaging/v1/...``): the gateway's
URL-rewriting HTTP client maps them the same way.

Sandbox routes (no auth; the emulator binds to loopback by default)::

    POST /sandbox/inbound    {"From", "To", "Body"[, "AccountSid"][, "SentAgo"]} as JSON
                             or form: a phone texts one of our numbers -> 201 {message,
                             auto_reply, keyword}. ``SentAgo`` (seconds, >= 0) back-dates
                             it: a late reply, listed only from now on (see inbound.py)
    GET  /sandbox/control    the current knobs;  POST: change some (JSON) -> the new knobs
    POST /sandbox/reset      forget all state and counters ({"knobs": false} keeps knobs)
    GET  /sandbox/counters   creates, messages created, per-To counts, rejections, faults,
                             expired (outstayed their ValidityPeriod)
    GET  /sandbox/messages/{SM}  one message as the emulator keeps it: status, validity
                             period, when it leaves the queue, expires, turns final (404 if
                             unknown)
    GET  /sandbox/clock      {"now": epoch seconds};  POST {"advance_s": N}: move the
                             emulator's time forward N seconds (statuses follow), -> {"now"}
    GET  /sandbox/health     {"status": "ok"}

The drop fault (``share_drop_after_accept``) stores the message, then aborts the TCP
connection without a byte of response, which clients see as "server disconnected".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.twilio.config import EmulatorConfig
from sandbox.twilio.engine import ApiResult, Engine, api_error
from sandbox.twilio.inbound import parse_sent_ago
from sandbox.twilio.wire import API_PREFIX

logger = logging.getLogger("sandbox.twilio")

_RAW_SEND = "sandbox.raw_send"
_JSON = "application/json"
Handler = Callable[[Request, str], Awaitable[ApiResult]]


class DroppedConnection(Exception):
    """Raised when the server gives no way to drop the connection (e.g. in-process tests)."""


def _json_response(result: ApiResult) -> Response:
    headers = {"Twilio-Request-Id": "RQ" + os.urandom(16).hex()}
    if result.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    content = json.dumps(result.body, separators=(",", ":"), ensure_ascii=False)
    return Response(content, status_code=result.status, media_type=_JSON, headers=headers)


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


class EmulatorApp:
    """The ASGI app; ``engine`` is its state, ``close()`` releases the state file."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._auth_cache: dict[str, str | None] = {}
        self._auth_config = engine.config
        self._starlette = Starlette(
            routes=self._routes(),
            exception_handlers={HTTPException: self._http_error},
            lifespan=self._lifespan,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # The server's own send() leads to its transport: the drop fault needs it.
            scope[_RAW_SEND] = send
        await self._starlette(scope, receive, send)

    def close(self) -> None:
        """Release the state file (idempotent)."""
        self.engine.close()

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            self.close()

    # --- routing --------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        acc = API_PREFIX + "/{account_sid}"
        return [
            Route(acc + "/Messages.json", self._api(self._messages), methods=["GET", "POST"]),
            Route(acc + "/Messages/{sid}.json", self._api(self._fetch_message), methods=["GET"]),
            Route(
                acc + "/AvailablePhoneNumbers/{country}/Local.json",
                self._api(self._available_local),
                methods=["GET"],
            ),
            Route(
                acc + "/IncomingPhoneNumbers.json",
                self._api(self._incoming_numbers),
                methods=["GET", "POST"],
            ),
            Route(
                "/messaging/v1/Services/{service_sid}/PhoneNumbers",
                self._api(self._service_numbers, account_in_path=False),
                methods=["GET", "POST"],
            ),
            Route("/sandbox/inbound", self._inbound, methods=["POST"]),
            Route("/sandbox/control", self._control, methods=["GET", "POST"]),
            Route("/sandbox/reset", self._reset, methods=["POST"]),
            Route("/sandbox/counters", self._counters, methods=["GET"]),
            Route("/sandbox/messages/{sid}", self._message_record, methods=["GET"]),
            Route("/sandbox/clock", self._clock, methods=["GET", "POST"]),
            Route("/sandbox/health", self._health, methods=["GET"]),
        ]

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 405:
            return _json_response(api_error(20004))
        return _json_response(api_error(20404, path=request.url.path))

    def _api(
        self, handler: Handler, *, account_in_path: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a Twilio handler with auth, injected faults, latency and the drop fault."""

        async def endpoint(request: Request) -> Response:
            account_sid = self._authenticate(request, account_in_path=account_in_path)
            if account_sid is None:
                result = api_error(20003)
            else:
                self.engine.last_account_sid = account_sid
                result = await handler(request, account_sid)
            latency = self.engine.config.latency_ms
            if latency > 0:
                await asyncio.sleep(latency / 1000)
            if result.drop:
                await self._drop(request)
            return _json_response(result)

        return endpoint

    def _authenticate(self, request: Request, *, account_in_path: bool) -> str | None:
        header = request.headers.get("authorization", "")
        if self._auth_config is not self.engine.config:
            # Knobs changed (maybe the pinned credentials): verdicts must be recomputed.
            self._auth_cache.clear()
            self._auth_config = self.engine.config
        if header not in self._auth_cache:
            self._auth_cache[header] = self._parse_basic(header)
        username = self._auth_cache[header]
        if username is None:
            return None
        if account_in_path and request.path_params.get("account_sid") != username:
            return None
        return username

    def _parse_basic(self, header: str) -> str | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, _, password = decoded.partition(":")
        return username if self.engine.check_credentials(username, password) else None

    async def _drop(self, request: Request) -> None:
        raw_send = request.scope.get(_RAW_SEND)
        transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
        if transport is None:
            raise DroppedConnection
        transport.abort()
        # Let the server see the connection is gone, so it sends nothing more on it.
        for _ in range(3):
            await asyncio.sleep(0)

    # --- Twilio handlers ------------------------------------------------------------

    async def _messages(self, request: Request, account_sid: str) -> ApiResult:
        if request.method == "POST":
            return self.engine.create_message(account_sid, await _form(request))
        return self._guarded(lambda: self.engine.list_messages(account_sid, request.query_params))

    async def _fetch_message(self, request: Request, account_sid: str) -> ApiResult:
        sid = request.path_params["sid"]
        return self._guarded(lambda: self.engine.fetch_message(account_sid, sid))

    async def _available_local(self, request: Request, account_sid: str) -> ApiResult:
        country = request.path_params["country"]
        return self._guarded(
            lambda: self.engine.available_local(account_sid, country, request.query_params)
        )

    async def _incoming_numbers(self, request: Request, account_sid: str) -> ApiResult:
        if request.method == "POST":
            form = await _form(request)
            return self._guarded(lambda: self.engine.buy_number(account_sid, form))
        return self._guarded(lambda: self.engine.list_numbers(account_sid, request.query_params))

    async def _service_numbers(self, request: Request, account_sid: str) -> ApiResult:
        service_sid = request.path_params["service_sid"]
        if request.method == "POST":
            form = await _form(request)
            number_sid = form.get("PhoneNumberSid", "")
            return self._guarded(
                lambda: self.engine.add_to_service(account_sid, service_sid, number_sid)
            )
        return self._guarded(lambda: self.engine.list_service_numbers(account_sid, service_sid))

    def _guarded(self, operation: Callable[[], ApiResult]) -> ApiResult:
        """Run a non-create operation unless a fault (fault_scope="all") answers first."""
        fault = self.engine.fault(is_create=False)
        return fault if fault is not None else operation()

    # --- sandbox handlers -----------------------------------------------------------

    async def _inbound(self, request: Request) -> Response:
        data = await _payload(request)
        try:
            sent_ago = parse_sent_ago(data.get("SentAgo"))
        except ValueError as exc:
            return _json_response(api_error(20001, detail=str(exc)))
        result = self.engine.inject_inbound(
            str(data.get("From", "")),
            str(data.get("To", "")),
            str(data.get("Body", "")),
            account_sid=str(data["AccountSid"]) if data.get("AccountSid") else None,
            sent_ago=sent_ago,
        )
        return _json_response(result)

    async def _control(self, request: Request) -> Response:
        if request.method == "POST":
            changes = await _payload(request)
            try:
                self.engine.update_config(changes)
            except ValidationError as exc:
                detail = exc.errors(include_url=False, include_context=False, include_input=False)
                return _json_response(ApiResult(400, {"error": "invalid knobs", "detail": detail}))
        return _json_response(ApiResult(200, self.engine.config.model_dump(mode="json")))

    async def _reset(self, request: Request) -> Response:
        data = await _payload(request)
        self.engine.reset(knobs=bool(data.get("knobs", True)))
        return _json_response(ApiResult(200, {"reset": True}))

    async def _counters(self, _request: Request) -> Response:
        return _json_response(ApiResult(200, self.engine.counters.as_json()))

    async def _message_record(self, request: Request) -> Response:
        record = self.engine.message_record(request.path_params["sid"])
        if record is None:
            return _json_response(ApiResult(404, {"error": "no such message"}))
        return _json_response(ApiResult(200, record))

    async def _clock(self, request: Request) -> Response:
        if request.method == "POST":
            data = await _payload(request)
            try:
                self.engine.advance(float(data.get("advance_s", 0)))
            except (TypeError, ValueError) as exc:
                return _json_response(ApiResult(400, {"error": f"advance_s: {exc}"}))
        return _json_response(ApiResult(200, {"now": self.engine.now()}))

    async def _health(self, _request: Request) -> Response:
        return _json_response(ApiResult(200, {"status": "ok"}))


async def _payload(request: Request) -> dict[str, Any]:
    """A JSON object or a form body (empty body -> {})."""
    raw = await request.body()
    if not raw.strip():
        return {}
    if request.headers.get("content-type", "").startswith(_JSON):
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))


def create_app(config: EmulatorConfig | None = None, state_path: Path | None = None) -> EmulatorApp:
    """Build the emulator app; with ``state_path``, state persists in that SQLite file."""
    return EmulatorApp(Engine(config or EmulatorConfig(), state_path))
