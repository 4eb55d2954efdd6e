"""The SDK's HTTP clients, pointed at Twilio or at the sandbox emulator.

When ``TwilioConfig.base_url`` is set, ``https://*.twilio.com`` is rewritten to it
(``https://messaging.twilio.com/v1/...`` becomes ``{base}/messaging/v1/...``); unset means
real Twilio. The SDK's own request logging (query strings hold phone numbers) is replaced
by DEBUG lines with method and path only; credentials are never logged.
``TWILIO_EDGE``/``TWILIO_REGION`` from the environment are ignored.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from adapters.twilio.config import TwilioConfig

_http_logger = logging.getLogger("nudge.twilio.http")

#: Given to the SDK instead of os.environ, so TWILIO_* variables (edge, region,
#: credentials) cannot change where or as whom nudge sends.
_NO_ENVIRONMENT = {"NUDGE_TWILIO": "config-only"}


def rewrite_twilio_url(url: str, base_url: str | None) -> str:
    """Point an ``https://*.twilio.com`` URL at ``base_url``; other URLs pass unchanged.

    ``api`` maps to the root of ``base_url``; other products keep their name as a path
    prefix (``https://messaging.twilio.com/v1/X`` -> ``{base_url}/messaging/v1/X``).
    """
    if not base_url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" or not (host == "twilio.com" or host.endswith(".twilio.com")):
        return url
    product = host.split(".")[0]
    path = parts.path if product in ("api", "twilio") else f"/{product}{parts.path}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{base_url.rstrip('/')}{path}{query}"


def _log_request(kwargs: dict[str, Any]) -> None:
    if _http_logger.isEnabledFor(logging.DEBUG):
        _http_logger.debug("twilio %s %s", kwargs.get("method"), urlsplit(kwargs["url"]).path)


class RewritingHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """The SDK's sync client (requests), rewriting Twilio URLs; for scripts and the CLI."""

    def __init__(self, base_url: str | None, *, timeout_s: float) -> None:
        super().__init__(pool_connections=True, timeout=timeout_s, logger=_http_logger)
        self.base_url = base_url

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        """Send one request to Twilio or, when a base URL is set, to the emulator."""
        response: TwilioResponse = super().request(
            method,
            rewrite_twilio_url(url, self.base_url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        return response

    def log_request(self, kwargs: dict[str, Any]) -> None:
        """Method and path at DEBUG (the SDK logs query strings, i.e. numbers, at INFO)."""
        _log_request(kwargs)

    def log_response(self, status_code: int, response: Any) -> None:
        """Status at DEBUG only."""
        _http_logger.debug("twilio response %s", status_code)

    def close(self) -> None:
        """Close the pooled connections."""
        if self.session is not None:
            self.session.close()


class RewritingAsyncHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The SDK's async client (aiohttp), rewriting Twilio URLs and applying the timeout.

    The session is created on first use, inside the running loop (creating it earlier
    binds it to no loop), and the timeout applies to every call (the SDK's client sends
    none by default).
    """

    def __init__(
        self, base_url: str | None, *, timeout_s: float, max_connections: int = 100
    ) -> None:
        super().__init__(pool_connections=False, timeout=timeout_s, logger=_http_logger)
        self.base_url = base_url
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._default_timeout = aiohttp.ClientTimeout(total=timeout_s)

    def _session_for_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections)
            self._session = aiohttp.ClientSession(connector=connector)
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("a Twilio gateway is bound to the event loop that first used it")
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        """Send one request to Twilio or, when a base URL is set, to the emulator."""
        session = self._session_for_loop()
        target = rewrite_twilio_url(url, self.base_url)
        _log_request({"method": method.upper(), "url": target})
        limit = self._default_timeout if timeout is None else aiohttp.ClientTimeout(total=timeout)
        async with session.request(
            method.upper(),
            target,
            params=_plain(params),
            data=_form(data),
            headers=_with_basic_auth(headers, auth),
            timeout=limit,
            allow_redirects=allow_redirects,
        ) as response:
            text = await response.text()
        _http_logger.debug("twilio response %s", response.status)
        return TwilioResponse(response.status, text, response.headers)

    async def close(self) -> None:
        """Close the aiohttp session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None


@functools.lru_cache(maxsize=8)
def _basic_auth_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _with_basic_auth(
    headers: dict[str, str] | None, auth: tuple[str, str] | None
) -> dict[str, str] | None:
    # Built by hand: aiohttp.BasicAuth is deprecated, and its replacement is recent.
    if auth is None:
        return headers
    return {**(headers or {}), "Authorization": _basic_auth_header(auth[0], auth[1])}


def _plain(params: dict[str, object] | None) -> dict[str, str] | None:
    if not params:
        return None
    return {k: v if isinstance(v, str) else str(v) for k, v in params.items()}


def _form(data: dict[str, object] | None) -> bytes | None:
    # Encoded here: aiohttp's FormData path costs ~0.3 ms per request. The SDK has already
    # set Content-Type: application/x-www-form-urlencoded.
    if not data:
        return None
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        items = value if isinstance(value, list) else [value]
        pairs.extend((key, str(item)) for item in items)
    return urlencode(pairs).encode()


def build_sync_client(config: TwilioConfig) -> Client:
    """A synchronous SDK client with the config's credentials and base URL (scripts, CLI)."""
    http = RewritingHttpClient(config.base_url, timeout_s=config.timeout_s)
    return sdk_client(config, http)


def sdk_client(config: TwilioConfig, http: TwilioHttpClient | AsyncTwilioHttpClient) -> Client:
    """The SDK's client over ``http``, with the config's credentials and no environment."""
    return Client(
        username=config.account_sid,
        password=config.auth_token.get_secret_value(),
        account_sid=config.account_sid,
        http_client=http,
        environment=_NO_ENVIRONMENT,
    )
