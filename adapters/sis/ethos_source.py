"""The ``ethos:URL`` source: people and phones from an Ellucian Ethos-style ``persons`` API.

The exchange, as Ethos Integration does it::

    POST {URL}/auth                        Authorization: Bearer <API key>   → JWT (plain text)
    GET  {URL}/api/persons?offset=&limit=  Authorization: Bearer <JWT>       → JSON array,
                                                                              x-total-count

The JWT is short-lived: a ``401`` on a page re-exchanges the key once and retries the page.
``429``, ``5xx`` and connection errors are retried with exponential backoff and jitter,
bounded by ``max_attempts``; a ``Retry-After`` header is honoured (capped by
``retry_after_max_s``). Pages are read with ``offset``/``limit`` until ``x-total-count`` is
reached; if the total changes during the read the extract is refused rather than returned
partial (people missing from a "full" extract would be deactivated).

How a record becomes a person and phones (and what is quarantined) is in
:mod:`adapters.sis.ethos_mapping`. Knobs come in an
:class:`~adapters.sis.ethos_config.EthosConfig` (built by ``nudge.wiring``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import tenacity
from pydantic import SecretStr

from adapters.sis.base import Extract, SourceError, SourceFormatError, SourceUnavailable
from adapters.sis.ethos_config import EthosConfig, RetryPolicy
from adapters.sis.ethos_mapping import ExtractBuilder

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/vnd.hedtech.integration.v12+json"
PERSONS_PATH = "/api/persons"
AUTH_PATH = "/auth"


class _Retriable(Exception):
    """One attempt failed in a way worth retrying (429, 5xx, connection error)."""

    def __init__(self, path: str, what: str, retry_after: float | None = None) -> None:
        super().__init__(f"{path}: {what}")
        self.path = path
        self.what = what
        self.retry_after = retry_after


class EthosSource:
    """Read people and phones from an Ethos-style ``persons`` API (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        *,
        config: EthosConfig | None = None,
        api_key: SecretStr | str | None = None,
        id_credential: str | None = None,
        page_size: int | None = None,
        timeout_s: float | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Prepare to read ``base_url`` with ``config``; nothing is sent until :meth:`read`.

        The other keywords override fields of ``config`` (or of the defaults when there is
        none). ``transport`` and ``sleep`` are for tests (``httpx.MockTransport``, a
        recording sleep).
        """
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise SourceFormatError(f"ethos: {base_url!r} is not an http(s) URL")
        base = config or EthosConfig()
        if isinstance(api_key, str):
            api_key = SecretStr(api_key)
        config = replace(
            base,
            api_key=base.api_key if api_key is None else api_key,
            id_credential=base.id_credential if id_credential is None else id_credential,
            page_size=base.page_size if page_size is None else page_size,
            timeout_s=base.timeout_s if timeout_s is None else timeout_s,
            retry=base.retry if retry is None else retry,
        )
        key = config.api_key
        if key is None or not key.get_secret_value():
            raise SourceError("ethos: no API key; set NUDGE_ETHOS_API_KEY")
        self.config = config
        self._api_key = key
        # Credentials in the URL would end up in logs and the SyncRun row: never keep them.
        self._url = url.copy_with(username=None, password=None, query=None, fragment=None)
        self.base_url = str(self._url).rstrip("/")
        self._transport = transport
        self._sleep = sleep
        self._token: str | None = None

    @property
    def id_credential(self) -> str:
        """The credential type whose value is the SIS person id."""
        return self.config.id_credential

    @property
    def page_size(self) -> int:
        """The ``limit`` asked for each page."""
        return self.config.page_size

    @property
    def timeout_s(self) -> float:
        """The HTTP timeout per request, in seconds."""
        return self.config.timeout_s

    @property
    def retry(self) -> RetryPolicy:
        """How hard each request is tried."""
        return self.config.retry

    def describe(self) -> str:
        """``ethos:`` and the base URL (no credentials)."""
        return f"ethos:{self.base_url}"

    # --- reading --------------------------------------------------------------------------
    def read(self) -> Extract:
        """Read every person, page by page; raise :class:`SourceError` if that cannot be done.

        Each page is mapped as it arrives, so only the mapped people and phones are held (a
        decoded Ethos person is several times larger than what the sync needs).
        """
        builder = ExtractBuilder(self.id_credential)
        for index, page, record in self._records():
            builder.add(index, record, page=page)
        return builder.extract(self.describe())

    def _records(self) -> Iterator[tuple[int, int, Any]]:
        """Yield (1-based record index, 1-based page, record) until x-total-count, checking
        the total."""
        read = 0
        total: int | None = None
        pages = 0
        with httpx.Client(
            base_url=self.base_url,
            timeout=self.timeout_s,
            transport=self._transport,
            headers={"Accept": MEDIA_TYPE, "User-Agent": "nudge-sis-sync"},
        ) as client:
            while True:
                page, page_total = self._page(client, offset=read)
                pages += 1
                if total is None:
                    total = page_total
                elif page_total != total:
                    raise SourceUnavailable(
                        f"ethos: {PERSONS_PATH}: the number of persons changed during the read "
                        f"(x-total-count was {total}, now {page_total} at offset {read}); "
                        "refusing a partial extract, try again later"
                    )
                for record in page:
                    read += 1
                    yield read, pages, record
                if read >= total:
                    break
                if not page:
                    raise SourceUnavailable(
                        f"ethos: {PERSONS_PATH}: empty page at offset {read} before "
                        f"x-total-count ({total}) was reached; refusing a partial extract"
                    )
        if read != total:
            raise SourceUnavailable(
                f"ethos: {PERSONS_PATH}: got {read} persons but x-total-count says {total}; "
                "refusing an inconsistent extract"
            )
        log.info("ethos: read %d persons in %d pages from %s", read, pages, self.base_url)

    def _page(self, client: httpx.Client, *, offset: int) -> tuple[list[Any], int]:
        params = {"offset": offset, "limit": self.page_size}
        if self._token is None:
            self._token = self._exchange(client)
        response = self._send(client, "GET", PERSONS_PATH, params=params, bearer=self._token)
        if response.status_code == 401:
            # The JWT expired mid-read: exchange the key again, once, and retry the page.
            log.info("ethos: token refused at offset %d; exchanging the API key again", offset)
            self._token = self._exchange(client)
            response = self._send(client, "GET", PERSONS_PATH, params=params, bearer=self._token)
            if response.status_code == 401:
                raise SourceError(
                    f"ethos: {PERSONS_PATH} refused a freshly issued token (HTTP 401)"
                )
        if response.status_code != 200:
            raise SourceError(
                f"ethos: {PERSONS_PATH} answered HTTP {response.status_code} at offset {offset}"
            )
        try:
            body = response.json()
        except ValueError:
            raise SourceFormatError(
                f"ethos: {PERSONS_PATH} at offset {offset}: the response is not JSON"
            ) from None
        if not isinstance(body, list):
            raise SourceFormatError(
                f"ethos: {PERSONS_PATH} at offset {offset}: expected a JSON array of persons, "
                f"got {type(body).__name__}"
            )
        raw_total = response.headers.get("x-total-count")
        try:
            total = int(raw_total) if raw_total is not None else -1
        except ValueError:
            total = -1
        if total < 0:
            raise SourceFormatError(
                f"ethos: {PERSONS_PATH} at offset {offset}: missing or bad x-total-count header "
                f"({raw_total!r})"
            )
        return body, total

    def _exchange(self, client: httpx.Client) -> str:
        """Exchange the API key for a JWT."""
        response = self._send(client, "POST", AUTH_PATH, bearer=self._api_key.get_secret_value())
        if response.status_code in (401, 403):
            raise SourceError(
                f"ethos: {AUTH_PATH} refused the API key (HTTP {response.status_code}); "
                "check NUDGE_ETHOS_API_KEY"
            )
        token = response.text.strip()
        if response.status_code not in (200, 201) or not token:
            raise SourceError(
                f"ethos: {AUTH_PATH} answered HTTP {response.status_code} without a token"
            )
        return token

    def _send(
        self,
        client: httpx.Client,
        method: str,
        path: str,
        *,
        bearer: str,
        params: Mapping[str, int] | None = None,
    ) -> httpx.Response:
        """Send one request, retrying 429, 5xx and connection errors with backoff."""
        policy = self.retry

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retriable) and exc.retry_after is not None:
                return min(exc.retry_after, policy.retry_after_max_s)
            # Jittered (between a tenth of and the whole capped exponential), so that clients
            # that failed together do not all come back together.
            ceiling = min(
                policy.backoff_max_s, policy.backoff_initial_s * 2 ** (state.attempt_number - 1)
            )
            return random.uniform(ceiling / 10, ceiling)  # noqa: S311 - jitter, not a secret

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "ethos: %s (attempt %d of %d); retrying",
                exc,
                state.attempt_number,
                policy.max_attempts,
            )

        def attempt() -> httpx.Response:
            try:
                response = client.request(
                    method, path, params=params, headers={"Authorization": f"Bearer {bearer}"}
                )
            except httpx.TransportError as exc:
                raise _Retriable(path, f"{type(exc).__name__}") from exc
            if response.status_code == 429 or response.status_code >= 500:
                raise _Retriable(
                    path,
                    f"HTTP {response.status_code}",
                    _retry_after(response.headers.get("retry-after")),
                )
            return response

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, policy.max_attempts)),
            wait=wait,
            retry=tenacity.retry_if_exception_type(_Retriable),
            before_sleep=before_sleep,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retriable as exc:
            raise SourceUnavailable(
                f"ethos: {exc.path} still failing after {policy.max_attempts} attempts "
                f"(last: {exc.what})"
            ) from None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), if usable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


__all__ = ["AUTH_PATH", "MEDIA_TYPE", "PERSONS_PATH", "EthosSource"]
