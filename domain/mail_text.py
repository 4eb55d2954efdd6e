"""Reading an email answer: who sent it, to which address, and the new text it brings.

Staff notifications and fallback emails carry ``Reply-To: texts+<token>@college.edu``; the
mail poller hands each answer found in that mailbox, as raw RFC 822 bytes, to
:func:`parse_mail`. What it returns (:class:`IncomingMail`) is all the poller acts on:

* ``key``: the Message-ID as written, or ``sha256:<hex>`` of the bytes when there is none
  (the same bytes always give the same key: a mail seen twice is recognised);
* the sender (``from_addr`` lower-cased, ``from_name``), the raw recipient headers ``to``
  (where the token is), the ``subject``;
* ``text``: only what the writer added (:func:`new_text`): quoted history (``On … wrote:``,
  ``> `` lines, Outlook's ``From: … Sent: …`` block, ``-----Original Message-----``), the
  ``-- `` signature and ``Sent from my iPhone`` lines are cut; ``full_text`` keeps it all;
* ``auto_reply``: out-of-office answers, bounces and read receipts, never to be relayed.

The body is text/plain when the mail has one (else its HTML turned to text by
:func:`html_to_text`), decoded from its declared charset without ever failing (unknown
charsets fall back to UTF-8, then Windows-1252; bad bytes become U+FFFD). Control characters
(NUL, CR, escape…) and the bidirectional overrides that can disguise text are removed from
every string; header values are unfolded onto one line.

Pure and standard-library only (``email``, ``html.parser``), as everything in ``domain/``
(tests/domain/test_purity.py). :func:`parse_mail` never raises: garbage gives an
``IncomingMail`` with what could be read (empty strings otherwise).
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.header import decode_header
from email.message import Message
from email.policy import compat32
from email.policy import default as default_policy
from email.utils import collapse_rfc2231_value, parseaddr
from typing import TypeVar

from domain.mail_quotes import clean_text as _clean
from domain.mail_quotes import html_to_text, new_text
from domain.mail_quotes import tidy as _tidy

_T = TypeVar("_T")

#: The headers that say where a mail was sent (``MailHeaders.to``, ``IncomingMail.to``), in
#: this order: the token may be in any of them (Bcc'd or forwarded mail shows only in the
#: delivery headers).
RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")

#: ``Precedence`` values of mail sent by a program (lists, bulk, vacation answers).
_AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})

# C0 and C1 control characters but tab and newline (CR is turned into a newline first), and
# the bidirectional embeddings/overrides/isolates (they can make text read backwards).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")
_NEWLINES = re.compile("\r\n|\r|\u2028|\u2029|\x85")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_SPACES = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_ADDR_SPEC = re.compile(r"[^\s@<>()\[\],;:\\\"]+@[^\s@<>()\[\],;:\\\"]+")
_MESSAGE_ID = re.compile(r"<[^<>\s]*>")

_MAX_DEPTH = 20  # MIME nesting followed when looking for the body


@dataclass(frozen=True, slots=True)
class HeaderFields:
    """What a mail's headers say about where it comes from and goes (read by
    :func:`header_fields` from the header block alone, as an IMAP header-only fetch gives)."""

    message_id: str | None
    """The Message-ID as written, with its ``<>`` (None when missing or empty)."""
    from_: str
    """The raw ``From`` value, unfolded ("" when missing)."""
    to: list[str]
    """Every value of :data:`RECIPIENT_HEADERS`, in that order, raw and unfolded."""


@dataclass(frozen=True, slots=True)
class IncomingMail:
    """One mail of the reply mailbox, as the poller needs it (see the module docstring)."""

    key: str
    message_id: str | None
    from_addr: str
    from_name: str
    to: list[str]
    subject: str
    text: str
    full_text: str
    auto_reply: bool
    auth_failed: bool = False
    """The receiving server recorded a DMARC failure for the From domain."""


# --- text cleaning ---------------------------------------------------------------------------


def _one_line(text: str) -> str:
    """A header-like value on one line: cleaned, every run of whitespace made one space."""
    return _SPACES.sub(" ", _clean(text)).strip()


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """``data`` as text in ``charset``, never failing: no, ASCII or unknown charset → UTF-8
    if the bytes are UTF-8, else Windows-1252; ISO-8859-1 read as its superset Windows-1252
    (curly quotes, not control characters); bytes invalid in the charset → U+FFFD."""
    name = (charset or "").strip().strip("\"'").lower()
    if name and name not in {"us-ascii", "ascii", "unknown-8bit", "x-unknown", "default"}:
        try:
            if codecs.lookup(name).name == "iso8859-1":
                name = "cp1252"  # what "iso-8859-1" mail really is (as browsers read it)
            return data.decode(name, errors="replace")
        except (LookupError, ValueError, TypeError):
            pass  # not a text encoding Python knows: guess as below
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _header_str(value: object) -> str:
    """A header value as stored by the parser, as text: 8-bit bytes (kept by the parser as
    surrogate escapes) read as UTF-8, folding removed."""
    text = str(value)
    with contextlib.suppress(UnicodeEncodeError):  # else already real text (not from bytes)
        text = text.encode("ascii", "surrogateescape").decode("utf-8", errors="replace")
    return _FOLD.sub("", text)


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words (``=?utf-8?q?…?=``) decoded, never failing."""
    if "=?" not in value:
        return value
    try:
        parts = decode_header(value)
    except Exception:  # malformed encoded words: keep the value as written
        return value
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:  # the text between encoded words, as decode_header keeps it
            out.append(chunk.decode("raw-unicode-escape", errors="replace"))
        else:
            out.append(_decode_bytes(chunk, charset))
    return "".join(out)


# --- headers ---------------------------------------------------------------------------------


def _values(msg: Message, name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive), as written, unfolded and cleaned."""
    wanted = name.lower()
    found: list[str] = []
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            text = _one_line(_header_str(value))
            if text:
                found.append(text)
    return found


def _first(msg: Message, name: str) -> str:
    values = _values(msg, name)
    return values[0] if values else ""


def _message_id(msg: Message) -> str | None:
    value = _first(msg, "Message-ID")
    if not value:
        return None
    match = _MESSAGE_ID.search(value)
    return match.group(0) if match else value


def _fields(msg: Message) -> HeaderFields:
    to = [value for name in RECIPIENT_HEADERS for value in _values(msg, name)]
    return HeaderFields(_message_id(msg), _first(msg, "From"), to)


def header_fields(raw: bytes) -> HeaderFields:
    """The Message-ID, raw From and recipient headers of a mail (whole, or its header block
    alone). Never raises: unreadable input gives ``HeaderFields(None, "", [])``."""
    try:
        return _fields(message_from_bytes(raw, policy=compat32))
    except Exception:
        return HeaderFields(None, "", [])


def _sender(value: str) -> tuple[str, str]:
    """(addr-spec lower-cased, display name) of a From value; "" for what is not there.

    Strict: the value must hold exactly one clean address, and the standard library's two
    parsers (``parseaddr`` and the header registry of ``email.policy.default``) must agree
    on it. ``t1@college.edu)<evil@x.com>`` reads as ``t1@college.edu`` to an unpatched
    ``parseaddr`` (CVE-2023-27043) while a mail server reads ``evil@x.com``: such a From is
    refused ("") rather than trusted."""
    try:
        name, addr = parseaddr(value)
        header = default_policy.header_factory("From", value)
        found = [a for g in header.groups for a in g.addresses]
        defects = list(header.defects)
    except Exception:
        return "", ""
    addr = addr.strip().lower()
    if not _ADDR_SPEC.fullmatch(addr):
        addr = ""
    if len(found) != 1 or defects or found[0].addr_spec.strip().lower() != addr:
        addr = ""
    return addr, _one_line(_decode_words(name))


def _auth_failed(msg: Message) -> bool:
    """True when a receiving server of ours stamped ``Authentication-Results`` with a
    DMARC failure: the From domain did not authenticate the mail (a forged sender)."""
    return any(
        re.search(r"\bdmarc\s*=\s*fail\b", value, re.IGNORECASE)
        for value in _values(msg, "Authentication-Results")
    )


def _is_auto_reply(msg: Message) -> bool:
    """Sent by a program, not typed by a person: ``Auto-Submitted`` (but ``no``),
    ``X-Autoreply``/``X-Autorespond`` (but ``no``), ``Precedence`` bulk/junk/list/auto_reply,
    or a delivery/read report (``multipart/report``)."""
    auto = _first(msg, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return True
    for name in ("X-Autoreply", "X-Autorespond"):
        values = _values(msg, name)
        if values and values[0].lower() not in {"no", "false", "0"}:
            return True
    if _first(msg, "Precedence").lower() in _AUTO_PRECEDENCE:
        return True
    return msg.get_content_type() == "multipart/report"


# --- body ------------------------------------------------------------------------------------


def _leaves(part: Message, depth: int = 0) -> Iterator[Message]:
    """The non-multipart parts, in order, not descending into attached mails
    (``message/rfc822``) nor deeper than ``_MAX_DEPTH``."""
    if depth > _MAX_DEPTH or part.get_content_type() == "message/rfc822":
        return
    if part.is_multipart():
        payload = part.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    yield from _leaves(sub, depth + 1)
        return
    yield part


def _part_text(part: Message) -> str:
    """A text part's content decoded (transfer encoding, then charset)."""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        data = payload
    else:
        data = _header_str(payload or "").encode("utf-8", errors="replace")
    text = _decode_bytes(data, part.get_content_charset())
    if part.get_content_type() == "text/plain" and _param(part, "format") == "flowed":
        text = _unflow(text, delsp=_param(part, "delsp") == "yes")
    return text


def _param(part: Message, name: str) -> str:
    """A Content-Type parameter, lower-cased ("" when absent)."""
    value = part.get_param(name)
    if value is None:
        return ""
    return collapse_rfc2231_value(value).strip().lower()


def _unflow(text: str, *, delsp: bool) -> str:
    """RFC 3676 ``format=flowed`` undone: soft line breaks (a trailing space) joined,
    space-stuffing removed. The signature separator ``-- `` stays a line of its own."""
    out: list[str] = []
    pending = ""
    for line in _clean(text).split("\n"):
        if line.startswith(" "):
            line = line[1:]  # space-stuffed
        if line.endswith(" ") and line != "-- " and not line.startswith(">"):
            pending += line[:-1] if delsp else line
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return "\n".join(out)


def _bodies(msg: Message) -> tuple[str | None, str | None]:
    """(first text/plain, first text/html) of the mail that is not an attachment."""
    plain: str | None = None
    html: str | None = None
    for part in _leaves(msg):
        if part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and plain is None:
            text = _part_text(part)
            plain = text if text.strip() else plain
        elif kind == "text/html" and html is None:
            html = _part_text(part)
        if plain is not None:
            break
    return plain, html


def parse_mail(raw: bytes) -> IncomingMail:
    """Read one mail (RFC 822 bytes) into an :class:`IncomingMail`. Never raises: what
    cannot be read is left empty (``key`` is always set)."""
    digest_key = "sha256:" + hashlib.sha256(raw).hexdigest()
    try:
        msg = message_from_bytes(raw, policy=compat32)
    except Exception:
        return IncomingMail(digest_key, None, "", "", [], "", "", "", False)
    fields = _safe(lambda: _fields(msg), HeaderFields(None, "", []))
    from_addr, from_name = _safe(lambda: _sender(fields.from_), ("", ""))
    subject = _safe(lambda: _one_line(_decode_words(_first(msg, "Subject"))), "")
    auto = _safe(lambda: _is_auto_reply(msg), False)
    nothing: tuple[str | None, str | None] = (None, None)
    plain, html = _safe(lambda: _bodies(msg), nothing)
    if plain is not None:
        body = plain
        full = _safe(lambda: _tidy(_clean(body).split("\n")), "")
        text = _safe(lambda: new_text(body), "")
    elif html is not None:
        markup = html
        full = _safe(lambda: html_to_text(markup, keep_quotes=True), "")
        text = _safe(lambda: new_text(html_to_text(markup)), "")
    else:
        full = text = ""
    if not fields.message_id:  # the same mail relayed twice differs in its Received lines
        date = _safe(lambda: _one_line(_first(msg, "Date")), "")
        same = "\n".join((from_addr, date, subject, full))
        digest_key = "sha256:" + hashlib.sha256(same.encode("utf-8", "replace")).hexdigest()
    return IncomingMail(
        auth_failed=_safe(lambda: _auth_failed(msg), False),
        key=fields.message_id or digest_key,
        message_id=fields.message_id,
        from_addr=from_addr,
        from_name=from_name,
        to=fields.to,
        subject=subject,
        text=text,
        full_text=full,
        auto_reply=auto,
    )


def _safe(compute: Callable[[], _T], default: _T) -> _T:
    """``compute()``, or ``default`` when it raises (a malformed mail never stops the
    poller)."""
    try:
        return compute()
    except Exception:
        return default
