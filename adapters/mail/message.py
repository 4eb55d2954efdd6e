"""From an ``Email`` to bytes that are safe to send: the stable Message-ID and the guards
against header injection.

Stable Message-ID: an ``Email`` with a ``key`` (the outbox row, e.g. ``"m12345"``) always
carries ``message_id_for(key, sender)``, so a resend of the same row is recognisable (many
receivers drop a repeat) and the outbox folder holds one file per row.

Header safety: values built from data are sanitised here (control characters and line breaks
become a space, whitespace collapses, length is bounded); To and Reply-To must be exactly one
valid address, else that one email fails as ``MailPermanent`` and nothing is sent. In the
body, NUL becomes U+FFFD and a lone CR a line break.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from dataclasses import dataclass
from email import errors as email_errors
from email import policy as email_policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from adapters.mail.errors import MailPermanent
from adapters.mail.protocol import Email, MailResult

log = logging.getLogger(__name__)

SUBJECT_MAX = 200
"""Characters of a Subject; longer ones are cut with an ellipsis."""
HEADER_VALUE_MAX = 500
"""Characters of any other header value built from data."""
ADDRESS_MAX = 320
"""Characters of a To/Reply-To value as given (display name included)."""
ADDR_SPEC_MAX = 254
"""Characters of the address itself (RFC 5321 path limit)."""


# --- Message-ID -----------------------------------------------------------------------

_KEY_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_KEY_MAX = 64
_HOSTNAME = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)


def _id_domain(sender: str) -> str:
    _, at, domain = parseaddr(sender)[1].rpartition("@")
    domain = domain.lower()
    return domain if at and len(domain) <= 253 and _HOSTNAME.fullmatch(domain) else "nudge.local"


def message_id_for(key: str, sender: str) -> str:
    """The Message-ID of the outbox row ``key``: the same on every attempt, e.g.
    ``<nudge.m12345@college.edu>`` (domain from ``sender``, ``nudge.local`` if it has none).

    Characters outside ``[A-Za-z0-9_-]`` are written ``=XX`` (hex of their UTF-8 bytes), so
    different keys never share an ID and the ID is also a safe file name. A key longer than
    64 characters once escaped becomes ``=H`` + a SHA-256 prefix (``=H`` is never an escape).
    """
    if not key:
        raise ValueError("empty outbox key")
    safe = "".join(
        c if c in _KEY_SAFE else "".join(f"={b:02X}" for b in c.encode("utf-8", "surrogatepass"))
        for c in key
    )
    if len(safe) > _KEY_MAX:
        safe = "=H" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"<nudge.{safe}@{_id_domain(sender)}>"


def message_id_of(email: Email, sender: str) -> str:
    """The Message-ID ``email`` goes out with: stable when it has a ``key``, else fresh.
    Raises ``ValueError`` for an empty key."""
    if email.key is not None:
        return message_id_for(email.key, sender)
    return make_msgid(domain=_id_domain(sender))


# --- building a safe message -----------------------------------------------------------

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators: any of them in a header
# value could end the header (or confuse a reader into thinking it did).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,75}")
# Headers this module sets itself, or that would change who receives or how to read a message.
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "return-path",
        "received",
    }
)


def _header_text(value: str, limit: int) -> str:
    """One line of at most ``limit`` characters: controls become spaces, runs collapse."""
    text = " ".join(_CONTROL.sub(" ", value).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _header_name(name: str) -> str:
    if not _HEADER_NAME.fullmatch(name):
        raise MailPermanent("extra header name is not a plain token")
    lower = name.lower()
    if lower in _RESERVED_HEADERS or lower.startswith(("content-", "resent-")):
        raise MailPermanent(f"extra header {name} is not allowed (set by the mailer)")
    return name


def _address(value: str, field: str) -> Address:
    """Exactly one valid address, re-built from its parsed parts (nothing else survives)."""
    if not value.strip():
        raise MailPermanent(f"no {field} address")
    if _CONTROL.search(value):
        raise MailPermanent(f"{field} address contains a line break or control character")
    if len(value) > ADDRESS_MAX:
        raise MailPermanent(f"{field} address is too long")
    try:
        header = _POLICY.header_factory("To", value)
        groups = header.groups
        defects = header.defects
    except Exception as exc:  # the parser fails in many ways on garbage (even IndexError)
        raise MailPermanent(f"{field} address is not valid") from exc
    addresses = [a for g in groups for a in g.addresses]
    if len(addresses) != 1 or groups[0].display_name is not None:
        raise MailPermanent(f"{field} must be exactly one address (not a list or group)")
    # A non-ASCII local part is legal with SMTPUTF8; any other defect means the value held
    # more than one clean address (e.g. "a@x.edu Bcc: b@y.edu").
    if any(not isinstance(d, email_errors.NonASCIILocalPartDefect) for d in defects):
        raise MailPermanent(f"{field} address is not valid")
    addr: Address = addresses[0]
    if not addr.username or not addr.domain:
        raise MailPermanent(f"{field} address is not valid")
    if len(addr.addr_spec) > ADDR_SPEC_MAX:
        raise MailPermanent(f"{field} address is too long")
    return Address(display_name=addr.display_name, username=addr.username, domain=addr.domain)


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, building each header class once: the stock registry
    creates a new class on every header it parses, a third of the cost of an email."""

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one registry for the process
    def __getitem__(self, name: str) -> type[BaseHeader]:
        return super().__getitem__(name)


_POLICY = email_policy.default.clone(header_factory=_HeaderClasses())


@functools.lru_cache(maxsize=8)
def _wire_policy(linesep: str, utf8: bool) -> email_policy.EmailPolicy[EmailMessage]:
    return _POLICY.clone(linesep=linesep, utf8=utf8)


def _body_text(body: str) -> str:
    # NUL cannot travel in a text/plain part; a lone CR would be read as a line break by some
    # readers and not by others.
    return body.replace("\x00", "\ufffd").replace("\r\n", "\n").replace("\r", "\n")


@dataclass(frozen=True, slots=True)
class Prepared:
    """An email ready for the wire: the bytes and the envelope."""

    message_id: str
    mail_from: str
    rcpt_to: str
    data: bytes
    international: bool  # a non-ASCII address: needs SMTPUTF8
    eight_bit: bool  # the body is 8bit: announce BODY=8BITMIME where the server has it


def _build(email: Email, sender: str, message_id: str, linesep: str) -> Prepared:
    from_addr = _address(sender, "From (NUDGE_MAIL_FROM)")
    if not email.to:
        raise MailPermanent("no recipient address")
    to_addr = _address(email.to, "To")
    reply_to = _address(email.reply_to, "Reply-To") if email.reply_to else None
    extra = [(_header_name(n), _header_text(v, HEADER_VALUE_MAX)) for n, v in email.headers]
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = from_addr
    msg["To"] = to_addr
    msg["Subject"] = _header_text(email.subject, SUBJECT_MAX)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id
    if reply_to is not None:
        msg["Reply-To"] = reply_to
    for name, value in extra:
        msg[name] = value
    msg.set_content(_body_text(email.body))
    international = not all(
        a.addr_spec.isascii() for a in (from_addr, to_addr, reply_to) if a is not None
    )
    data = msg.as_bytes(policy=_wire_policy(linesep, international))
    return Prepared(
        message_id=message_id,
        mail_from=from_addr.addr_spec,
        rcpt_to=to_addr.addr_spec,
        data=data,
        international=international,
        eight_bit=str(msg.get("Content-Transfer-Encoding", "")).lower() == "8bit",
    )


def prepare(email: Email, sender: str, linesep: str) -> Prepared | MailResult:
    """The email ready to send (lines ending in ``linesep``), or the result that says why it
    never will be."""
    try:
        message_id = message_id_of(email, sender)
    except Exception as exc:
        return MailResult("", MailPermanent(f"cannot build email: {exc}"))
    try:
        prepared = _build(email, sender, message_id, linesep)
    except MailPermanent as exc:
        return MailResult(message_id, exc)
    except Exception as exc:  # poison isolation: one unbuildable email fails alone
        log.debug("cannot build email %s", message_id, exc_info=True)
        reason = f"{type(exc).__name__}: {exc}"[:200]
        return MailResult(message_id, MailPermanent(f"cannot build email: {reason}"))
    log.debug("email %s from %s to %s", message_id, prepared.mail_from, prepared.rcpt_to)
    return prepared


__all__ = [
    "ADDRESS_MAX",
    "ADDR_SPEC_MAX",
    "HEADER_VALUE_MAX",
    "SUBJECT_MAX",
    "Prepared",
    "message_id_for",
    "message_id_of",
    "prepare",
]
