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

Mapping of a person (modelled on the Ethos ``persons`` v12 schema):

=================  ===================================================================
person_id          ``credentials[].value`` of type ``id_credential`` (default ``bannerId``)
role               ``roles[].role``: ``student`` → student; else ``employee``,
                   ``instructor`` or ``advisor`` → staff; anything else is quarantined
first/last name    the name of category ``legal``, else ``personal``, else ``birth``, else
                   the one marked ``preference: preferred``, else the first
preferred_name     ``preferredName`` if present, else the first name of a ``favored`` name
                   (or of the ``preferred`` one when it differs from the legal first name)
email              ``preference: primary``, else type ``school``, else ``personal``, else first
status             only when a record carries a top-level ``status`` (not part of v12)
phones             one :class:`SourcePhone` per ``phones[]``; ``type_code`` is the
                   ``type.phoneType`` enum value (:data:`PHONE_TYPES`), ``primary`` is
                   ``preference == "primary"``, ``countryCallingCode`` becomes the ISO
                   ``country`` (or a ``+code`` prefix when the code has no single region),
                   ``extension`` is appended as ``" x<ext>"`` so the sync can see it
=================  ===================================================================

Ethos does not carry program, degree, risk level, tags, courses, advisor, department, title
or nudge's own ``roles``: they are not in ``provided_fields`` and stay as they are.

Every value read (the id, each name's parts, each email address, each role, the status,
each phone's type, number and extension) must pass :mod:`domain.fields`, as CSV cells do,
and the record as a whole must be valid Unicode (it is hashed). A record that fails is
quarantined with its position (``line`` is the 1-based record index; ``raw`` holds its
``id``, its page and a preview of the record) and a reason naming the field, e.g.
``names[0].firstName contains a control character (NUL)``. A bad phone is quarantined alone
(``raw`` then holds the phone), as a bad ``phones.csv`` row is: the person and their other
phones still apply.

Knobs come in an :class:`EthosConfig` (built from settings by :func:`adapters.sis.open_source`).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import phonenumbers
import tenacity
from pydantic import SecretStr

from adapters.sis.base import (
    Extract,
    QuarantinedRow,
    SourceError,
    SourceFormatError,
    SourcePerson,
    SourcePhone,
    SourceUnavailable,
)
from adapters.sis.csv_source import normalise_status
from domain.fields import RULES, preview, problem

log = logging.getLogger(__name__)

#: The ``phones[].type.phoneType`` enum of Ethos ``persons`` (EEDM ``PersonPhoneTypeCategory``).
PHONE_TYPES: tuple[str, ...] = (
    "mobile", "home", "school", "vacation", "business", "fax", "pager", "tdd", "parent",
    "family", "main", "branch", "region", "support", "billing", "matchingGifts", "other",
)  # fmt: skip

#: Ethos roles that make a person staff in nudge (``student`` wins over all of them).
STAFF_ROLES = frozenset({"employee", "instructor", "advisor"})

#: Person fields every Ethos extract provides; ``status`` is added when records carry it.
ETHOS_FIELDS = frozenset({"first_name", "last_name", "preferred_name", "email"})

MEDIA_TYPE = "application/vnd.hedtech.integration.v12+json"
PERSONS_PATH = "/api/persons"
AUTH_PATH = "/auth"
QUARANTINE_FILE = "ethos:persons"

#: How much of a quarantined record its ``raw["record"]`` keeps.
RAW_PREVIEW_CHARS = 4_000

#: The rules of the fields read, resolved once (they are applied to every value).
_RULES = dict(RULES)

_SURROGATE = re.compile("[\ud800-\udfff]")


class _Retriable(Exception):
    """One attempt failed in a way worth retrying (429, 5xx, connection error)."""

    def __init__(self, path: str, what: str, retry_after: float | None = None) -> None:
        super().__init__(f"{path}: {what}")
        self.path = path
        self.what = what
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts per request and the backoff between them (seconds)."""

    max_attempts: int = 5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 60.0


@dataclass(frozen=True, slots=True)
class EthosConfig:
    """What the Ethos source needs to know, and nothing else (no settings object).

    ``id_credential`` is the ``credentials[].type`` whose value is the SIS person id;
    ``page_size`` the ``limit`` asked per page (the server may cap it); ``timeout_s`` the
    HTTP timeout per request; ``retry`` the bounded retries of 429/5xx/connection errors.
    """

    api_key: SecretStr | None = field(default=None, repr=False)
    id_credential: str = "bannerId"
    page_size: int = 500
    timeout_s: float = 30.0
    retry: RetryPolicy = RetryPolicy()

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if self.retry.max_attempts < 1:
            raise ValueError("retry.max_attempts must be at least 1")
        if not self.id_credential.strip():
            raise ValueError("id_credential must not be blank")


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
        builder = _ExtractBuilder(self.id_credential)
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


# --- mapping --------------------------------------------------------------------------------


class _ExtractBuilder:
    """Maps records one at a time into people, phones and quarantined rows."""

    def __init__(self, id_credential: str) -> None:
        self.id_credential = id_credential
        self.people: list[SourcePerson] = []
        self.phones: list[SourcePhone] = []
        self.quarantined: list[QuarantinedRow] = []
        self.first_seen: dict[str, int] = {}
        self.with_status = False

    def add(self, index: int, record: Any, *, page: int = 0) -> None:
        try:
            converted = _convert(record, index, self.id_credential)
        except _Refused as exc:
            self.quarantined.append(
                QuarantinedRow(
                    QUARANTINE_FILE, index, str(exc), exc.person_id, _raw_of(record, page)
                )
            )
            return
        person, phones, bad_phones = converted
        first = self.first_seen.get(person.person_id)
        if first is not None:
            reason = (
                f"duplicate {self.id_credential} {person.person_id!r} (first at record {first})"
            )
            self.quarantined.append(
                QuarantinedRow(
                    QUARANTINE_FILE, index, reason, person.person_id, _raw_of(record, page)
                )
            )
            return
        self.first_seen[person.person_id] = index
        self.with_status = self.with_status or "status" in person.fields
        self.people.append(person)
        self.phones.extend(phones)
        # A bad phone is quarantined alone, as a bad phones.csv row is: the person and
        # their other phones still apply.
        for reason, item in bad_phones:
            raw = {
                "id": preview(str(record.get("id") or ""), 100),
                "phone": preview(_canonical(item), RAW_PREVIEW_CHARS),
            }
            if page:
                raw["page"] = str(page)
            self.quarantined.append(
                QuarantinedRow(QUARANTINE_FILE, index, reason, person.person_id, raw)
            )

    def extract(self, source: str) -> Extract:
        return Extract(
            source=source,
            people=self.people,
            phones=self.phones,
            quarantined=self.quarantined,
            provided_fields=ETHOS_FIELDS | ({"status"} if self.with_status else set()),
        )


class _Refused(Exception):
    def __init__(self, reason: str, person_id: str | None = None) -> None:
        super().__init__(reason)
        self.person_id = person_id


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


def _raw_of(record: Any, page: int = 0) -> dict[str, str]:
    """A quarantine record's ``raw``: its id, its page and the record as compact JSON.

    Every value is a preview (controls escaped, cut to size): the record may be in
    quarantine precisely because it holds something no database stores.
    """
    rid = record.get("id") if isinstance(record, dict) else None
    raw = {
        "id": preview(str(rid or ""), 100),
        "record": preview(_canonical(record), RAW_PREVIEW_CHARS),
    }
    if page:
        raw["page"] = str(page)
    return raw


def _canonical(value: Any) -> str:
    """Stable JSON text: the same record always hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _show(value: Any) -> str:
    """A value for a reason: quoted, controls escaped, short."""
    return repr(preview(value, 80)) if isinstance(value, str) else preview(repr(value), 80)


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    return None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _type_of(item: dict[str, Any], key: str) -> str:
    kind = item.get("type")
    if isinstance(kind, dict):
        return str(kind.get(key) or "")
    return ""


def _check(
    value: str | None, field_name: str, person_id: str | None, label: str, *where: object
) -> None:
    """Refuse the record if ``value`` breaks the rule of ``field_name``; the reason names
    ``label.format(*where)`` (built only then: this runs for every value of every record)."""
    if value is None:
        return
    rule = _RULES[field_name]
    if len(value) <= rule.fast_max and value.isprintable():
        return
    reason = problem(label.format(*where), value, rule)
    if reason is not None:
        raise _Refused(reason, person_id)


def _convert(
    record: Any, index: int, id_credential: str
) -> tuple[SourcePerson, list[SourcePhone], list[tuple[str, dict[str, Any]]]]:
    """Map one Ethos person to a SourcePerson, its good phones and the bad ones (reason,
    phone); raise _Refused if the person is unusable."""
    if not isinstance(record, dict):
        raise _Refused(f"not a JSON object ({type(record).__name__})")
    wanted = id_credential.lower()
    found = next(
        (
            (i, cred["value"], value)
            for i, cred in enumerate(_dicts(record.get("credentials")))
            if str(cred.get("type") or "").lower() == wanted and (value := _text(cred.get("value")))
        ),
        None,
    )
    if found is None:
        raise _Refused(f"no {id_credential} credential (person {_show(record.get('id'))})")
    position, raw_id, person_id = found
    _check(raw_id, "person_id", None, "credentials[{}].value ({})", position, id_credential)
    # The whole record is hashed (and stored when quarantined): it must be valid Unicode.
    canonical = _canonical(record)
    if (bad := _SURROGATE.search(canonical)) is not None:
        raise _Refused(
            f"the record contains invalid Unicode (a lone surrogate, U+{ord(bad.group()):04X})",
            person_id,
        )
    _check_all(record, "roles", ("role",), person_id)
    _check_all(record, "names", ("firstName", "lastName", "preferredName"), person_id)
    _check_all(record, "emails", ("address",), person_id)
    roles = {str(r.get("role") or "").lower() for r in _dicts(record.get("roles"))}
    if "student" in roles:
        role = "student"
    elif roles & STAFF_ROLES:
        role = "staff"
    else:
        listed = ", ".join(preview(r, 40) for r in sorted(roles) if r) or "none"
        raise _Refused(f"no student or staff role (roles: {listed})", person_id)
    names = _dicts(record.get("names"))
    if not names:
        raise _Refused("no names", person_id)
    by_category: dict[str, dict[str, Any]] = {}
    for name in names:
        by_category.setdefault(_type_of(name, "category").lower(), name)
    preferred = next((n for n in names if n.get("preference") == "preferred"), None)
    main = (
        by_category.get("legal")
        or by_category.get("personal")
        or by_category.get("birth")
        or preferred
        or names[0]
    )
    first = _text(main.get("firstName"))
    preferred_name = next(
        (_text(n.get("preferredName")) for n in names if n.get("preferredName")), None
    )
    if preferred_name is None:
        favored = by_category.get("favored")
        if favored is not None:
            preferred_name = _text(favored.get("firstName"))
        elif preferred is not None and preferred is not main:
            # Another name marked preferred: only a different first name is a preferred name.
            candidate = _text(preferred.get("firstName"))
            preferred_name = candidate if candidate != first else None
    fields: dict[str, str | list[str] | None] = {
        "first_name": first,
        "last_name": _text(main.get("lastName")),
        "preferred_name": preferred_name,
        "email": _pick_email(_dicts(record.get("emails"))),
    }
    if "status" in record:
        raw_status = str(record.get("status") or "")
        _check(raw_status, "status", person_id, "status")
        status = normalise_status(raw_status)
        if status is None:
            raise _Refused(f"unknown status {_show(record.get('status'))}", person_id)
        fields["status"] = status
    person = SourcePerson(index, person_id, role, fields, (canonical,))
    phones: list[SourcePhone] = []
    bad_phones: list[tuple[str, dict[str, Any]]] = []
    for i, item in enumerate(_dicts(record.get("phones"))):
        try:
            phones.append(_phone(item, index, person_id, f"phones[{i}]"))
        except _Refused as exc:
            bad_phones.append((str(exc), item))
    return person, phones, bad_phones


#: The rule (by nudge field name) of each Ethos property checked in every item of a list.
_PARTS = {
    "role": "role",
    "firstName": "first_name",
    "lastName": "last_name",
    "preferredName": "preferred_name",
    "address": "email",
}


def _check_all(record: dict[str, Any], key: str, parts: tuple[str, ...], person_id: str) -> None:
    """Check ``record[key][i][part]`` for every item and part that is a string: a bad value
    in a name or email the mapping does not pick is still a bad record."""
    for i, item in enumerate(_dicts(record.get(key))):
        for part in parts:
            value = item.get(part)
            if isinstance(value, str):
                _check(value, _PARTS[part], person_id, "{}[{}].{}", key, i, part)


def _pick_email(emails: list[dict[str, Any]]) -> str | None:
    ranked = sorted(
        (e for e in emails if _text(e.get("address"))),
        key=lambda e: (
            e.get("preference") != "primary",
            {"school": 0, "personal": 1}.get(_type_of(e, "emailType"), 2),
        ),
    )
    return _text(ranked[0].get("address")) if ranked else None


def _phone(item: dict[str, Any], index: int, person_id: str, at: str) -> SourcePhone:
    """One phone of person ``person_id``; ``at`` locates it in the record for reasons."""
    number = raw_number = str(item.get("number") or "")
    _check(number, "number", person_id, "{}.number", at)
    country: str | None = None
    code = str(item.get("countryCallingCode") or "").strip().lstrip("+")
    # ASCII and short: int() refuses "²" and numbers of thousands of digits.
    if code.isascii() and code.isdigit() and len(code) <= 3:
        region = phonenumbers.region_code_for_country_code(int(code))
        if region not in ("ZZ", "001"):
            country = region
        elif not number.lstrip().startswith("+"):
            # No single region (e.g. +800): keep the code in the number itself.
            number = f"+{code} {number}"
    extension = str(item.get("extension") or "").strip()
    _check(extension, "number", person_id, "{}.extension", at)
    if extension:
        number = f"{number} x{extension}"
    if len(number) != len(raw_number):
        # The number handed over carries the extension (or a +code): that must fit too.
        _check(number, "number", person_id, "{}.number as handed over", at)
    type_code = _type_of(item, "phoneType")
    _check(type_code, "phone_type", person_id, "{}.type.phoneType", at)
    preference = str(item.get("preference") or "")
    return SourcePhone(
        line=index,
        person_id=person_id,
        type_code=type_code,
        number=number,
        country=country,
        primary=preference == "primary",
        updated_at=None,
        # What the phone said, field by field (cheaper than JSON, and as stable).
        raw=(person_id, type_code, raw_number, code, extension, preference),
    )
