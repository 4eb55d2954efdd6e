"""Email out: SMTP when ``NUDGE_SMTP_HOST`` is set, else ``.eml`` files in an outbox folder.

Used for the email fallback of campaigns, reply notifications to staff and data-quality
alerts. This room owns everything between an outbox row's ``Email`` and the wire: building a
safe message from SIS data, the SMTP conversation, and what one attempt's outcome means.

Per message, not per batch: ``Mailer.open()`` gives a ``MailSession`` whose ``send(email)``
hands over ONE email and returns its ``MailResult``, so the caller can follow the outbox
discipline (mark ``sending``, committed → ``send`` → record the outcome, committed) and a
crash leaves at most one email undecided. ``send`` never raises for a problem with the
message or the server. ``send_many`` is the same loop for callers that want a batch.

One error taxonomy::

    MailError                 the email was not (known to be) handed over
     ├── MailTransient        not sent; try again later (4xx, connection lost before the
     │    │                   end of the message, cannot write the outbox file)
     │    └── MailUnreachable not sent; no session with the server (connection refused/reset/
     │                        timeout, greeting, EHLO, STARTTLS or login failed): the next
     │                        emails would fail the same way
     ├── MailPermanent        not sent; this message will never go (5xx, an invalid or unsafe
     │                        address or header, a message that cannot be built)
     └── MailUnknown          the whole message was transmitted but the server's reply to
                              the end of DATA never arrived (disconnect, reset, timeout):
                              it may or may not have been accepted. SMTP cannot be asked
                              afterwards, so such an email is never resent automatically;
                              it is listed for an admin with its Message-ID.

SMTP phases, and what a failure in each means (exact, because the payload is sent and the
final reply read by this module, not inside ``smtplib.SMTP.data``)::

    connect, greeting, EHLO, STARTTLS, AUTH          → MailUnreachable
    MAIL FROM, RCPT TO, DATA (until 354)             → by reply code: 4xx transient,
                                                       5xx permanent; a lost connection is
                                                       transient (nothing was sent)
    sending the message up to and including "."      → MailTransient (the terminating "."
                                                       never left this host)
    waiting for the reply to the final "."           → 2xx sent, 4xx transient, 5xx
                                                       permanent; no/unreadable reply:
                                                       MailUnknown

Stable Message-ID: an ``Email`` with a ``key`` (the outbox row, e.g. ``"m12345"``) always
carries ``message_id_for(key, sender)``, so a resend of the same row is recognisable (many
receivers drop a repeat) and the outbox folder holds one file per row.

Header safety: values built from data are sanitised here (control characters and line breaks
become a space, whitespace collapses, length is bounded); To and Reply-To must be exactly one
valid address, else that one email fails as ``MailPermanent`` and nothing is sent.

Message bodies are never logged; addresses are logged only at DEBUG, and error messages
(which callers store and log) never contain them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import smtplib
import ssl
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email import errors as email_errors
from email import policy as email_policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

from nudge.settings import Settings

log = logging.getLogger(__name__)

SUBJECT_MAX = 200
"""Characters of a Subject; longer ones are cut with an ellipsis."""
HEADER_VALUE_MAX = 500
"""Characters of any other header value built from data."""
ADDRESS_MAX = 320
"""Characters of a To/Reply-To value as given (display name included)."""
ADDR_SPEC_MAX = 254
"""Characters of the address itself (RFC 5321 path limit)."""


class MailError(Exception):
    """The email was not (known to be) handed over."""


class MailTransient(MailError):
    """Not sent; worth retrying later: the server said 'try again' or the line broke first."""


class MailUnreachable(MailTransient):
    """Not sent; no SMTP session could be set up (the next emails would fail alike)."""


class MailPermanent(MailError):
    """Not sent; retrying will not help: refused by the server, or unsafe/invalid here."""


class MailUnknown(MailError):
    """The whole message went out but the server's verdict never came back: it may have
    been accepted. Never resend automatically; an admin decides (by its Message-ID)."""


@dataclass(frozen=True, slots=True)
class Email:
    """One plain-text email. ``key`` is the stable outbox key (e.g. ``"m12345"``): when
    set, the Message-ID is ``message_id_for(key, sender)`` on every attempt."""

    to: str
    subject: str
    body: str
    reply_to: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    key: str | None = None


@dataclass(frozen=True, slots=True)
class MailResult:
    """What happened to one email: ``error`` is None when it was handed over."""

    message_id: str
    error: MailError | None = None

    @property
    def ok(self) -> bool:
        """True when the email was handed over (SMTP accepted it, or it is in the outbox)."""
        return self.error is None


class MailSession(Protocol):
    """An open channel to the mail server (or folder); not shared between threads."""

    def send(self, email: Email) -> MailResult:
        """Hand over ONE email; never raises for a problem with it or with the server."""
        ...


class Mailer(Protocol):
    """Sends emails; never raises for one bad message, reports it in its result."""

    def open(self) -> contextlib.AbstractContextManager[MailSession]:
        """A session for sending emails one at a time; closed at the end of the block."""
        ...

    def send_many(self, emails: Sequence[Email]) -> list[MailResult]:
        """Send every email, in order; one result per email."""
        ...

    def describe(self) -> str:
        """Where mail goes, without secrets (for the demo and logs)."""
        ...


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


def _message_id(email: Email, sender: str) -> str:
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
class _Prepared:
    """An email ready for the wire: the bytes and the envelope."""

    message_id: str
    mail_from: str
    rcpt_to: str
    data: bytes
    international: bool  # a non-ASCII address: needs SMTPUTF8
    eight_bit: bool  # the body is 8bit: announce BODY=8BITMIME where the server has it


def _build(email: Email, sender: str, message_id: str, linesep: str) -> _Prepared:
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
    return _Prepared(
        message_id=message_id,
        mail_from=from_addr.addr_spec,
        rcpt_to=to_addr.addr_spec,
        data=data,
        international=international,
        eight_bit=str(msg.get("Content-Transfer-Encoding", "")).lower() == "8bit",
    )


def _prepare(email: Email, sender: str, linesep: str) -> _Prepared | MailResult:
    """The email ready to send, or the result that says why it never will be."""
    try:
        message_id = _message_id(email, sender)
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


def _reported(result: MailResult) -> MailResult:
    if isinstance(result.error, MailUnknown):
        log.warning("email %s: outcome unknown: %s", result.message_id, result.error)
    elif result.error is not None:
        log.info("email %s not sent: %s", result.message_id, result.error)
    return result


def _send_many(mailer: Mailer, sender: str, emails: Sequence[Email]) -> list[MailResult]:
    """One session, one email at a time; once the server is unreachable the rest of the
    batch gets the same error without waiting for a connect timeout each."""
    results: list[MailResult] = []
    if not emails:
        return results
    with mailer.open() as session:
        for email in emails:
            down = results[-1].error if results else None
            if isinstance(down, MailUnreachable):
                try:
                    message_id = _message_id(email, sender)
                except ValueError:
                    message_id = ""
                results.append(MailResult(message_id, down))
            else:
                results.append(session.send(email))
    return results


# --- the outbox folder ----------------------------------------------------------------

_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")


def _eml_name(message_id: str) -> str:
    return _FILE_UNSAFE.sub("_", message_id.strip("<>")) + ".eml"


class _OutboxSession:
    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = folder
        self.sender = sender

    def send(self, email: Email) -> MailResult:
        prepared = _prepare(email, self.sender, "\n")
        if isinstance(prepared, MailResult):
            return _reported(prepared)
        # Named after the Message-ID: writing the same outbox key again replaces the file.
        target = self.folder / _eml_name(prepared.message_id)
        tmp = self.folder / f".{target.name}.{uuid.uuid4().hex}.part"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                with tmp.open("wb") as f:
                    f.write(prepared.data)
                    f.flush()
                    os.fsync(f.fileno())  # "sent" is recorded next: the file must survive
                tmp.replace(target)  # atomic: a reader never sees half an email
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            return _reported(MailResult(prepared.message_id, MailTransient(f"outbox write: {exc}")))
        return MailResult(prepared.message_id)


class OutboxMailer:
    """Writes each email as an ``.eml`` file (the embedded default: no mail server needed)."""

    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = folder
        self.sender = sender

    def describe(self) -> str:
        """The outbox folder."""
        return f"outbox folder {self.folder}"

    @contextlib.contextmanager
    def open(self) -> Iterator[MailSession]:
        """A session writing into the folder (created on the first email)."""
        yield _OutboxSession(self.folder, self.sender)

    def send_many(self, emails: Sequence[Email]) -> list[MailResult]:
        """Write every email to the outbox folder."""
        return _send_many(self, self.sender, emails)


# --- SMTP -----------------------------------------------------------------------------

_PAYLOAD_EOL = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")


def _payload(data: bytes) -> bytes:
    """The DATA payload: CRLF lines, dot-stuffed (RFC 5321 4.5.2), ending in CRLF "." CRLF.
    Dot-stuffing means the body can never contain the end-of-data marker itself."""
    data = _LEADING_DOT.sub(b"..", _PAYLOAD_EOL.sub(b"\r\n", data))
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _by_code(phase: str, code: int) -> MailError:
    if 400 <= code < 500:
        return MailTransient(f"{phase}: SMTP {code}")
    if 500 <= code < 600:
        return MailPermanent(f"{phase}: SMTP {code}")
    return MailTransient(f"{phase}: unexpected SMTP reply {code}")


class _SmtpSession:
    """One SMTP connection, opened on the first send and again after it broke."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self.mailer = mailer
        self.smtp: smtplib.SMTP | None = None
        self.closed = False

    def send(self, email: Email) -> MailResult:
        if self.closed:
            raise RuntimeError("mail session is closed")
        prepared = _prepare(email, self.mailer.sender, "\r\n")
        if isinstance(prepared, MailResult):
            return _reported(prepared)
        ready = self._envelope(prepared)
        if isinstance(ready, MailError):
            return _reported(MailResult(prepared.message_id, ready))
        error = self._transmit(ready, prepared)
        return _reported(MailResult(prepared.message_id, error))

    def _envelope(self, p: _Prepared) -> smtplib.SMTP | MailError:
        """MAIL FROM, RCPT TO and DATA up to the server's 354: the connection, ready for the
        payload, or why this email was definitely not sent."""
        for attempt in (1, 2):
            reused = self.smtp is not None
            if self.smtp is None:
                try:
                    self.smtp = self.mailer._connect()
                except MailUnreachable as exc:
                    return exc
            smtp = self.smtp
            try:
                refusal = self._refusal(smtp, p)
            except (OSError, smtplib.SMTPException) as exc:
                self._drop()
                if reused and attempt == 1:
                    # Servers close idle connections; nothing of this email was sent, so one
                    # retry on a fresh connection is safe.
                    log.debug("SMTP connection went stale (%s); reconnecting", exc)
                    continue
                return MailTransient(f"connection lost before the message was sent: {exc}")
            except Exception as exc:  # never raise out of send(); the payload was not sent
                self._drop()
                return MailTransient(f"SMTP envelope failed: {type(exc).__name__}: {exc}")
            if refusal is not None:
                code, error = refusal
                self._reset(code)
                return error
            return smtp
        raise AssertionError("unreachable")  # pragma: no cover

    def _refusal(self, smtp: smtplib.SMTP, p: _Prepared) -> tuple[int, MailError] | None:
        """None when the server is waiting for the payload, else its reply code and what
        that means for this email."""
        if p.international and not smtp.has_extn("smtputf8"):
            return 0, MailPermanent("non-ASCII address but the SMTP server has no SMTPUTF8")
        options: list[str] = []
        if smtp.has_extn("size"):
            options.append(f"SIZE={len(p.data)}")
        if p.international:
            options += ["SMTPUTF8", "BODY=8BITMIME"]
        elif p.eight_bit and smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        code, _ = smtp.mail(p.mail_from, options)
        if code != 250:
            return code, _by_code("MAIL FROM refused", code)
        code, _ = smtp.rcpt(p.rcpt_to)
        if code not in (250, 251):
            return code, _by_code("recipient refused", code)
        code, _ = smtp.docmd("DATA")
        if code != 354:
            return code, _by_code("DATA refused", code)
        return None

    def _transmit(self, smtp: smtplib.SMTP, p: _Prepared) -> MailError | None:
        """Send the payload, then read the verdict: the one phase that can end unknown."""
        try:
            smtp.send(_payload(p.data))
        except (OSError, smtplib.SMTPException) as exc:
            # sendall() failed, so its last bytes (the terminating ".") never left: not sent.
            self._drop()
            return MailTransient(f"connection lost while sending the message: {exc}")
        try:
            code, _ = smtp.getreply()
        except Exception as exc:  # whatever broke, the server may hold the whole message
            self._drop()
            return MailUnknown(f"no reply after the whole message was sent: {exc}")
        if 200 <= code < 300:
            return None
        if 400 <= code < 600:
            self._reset(code)
            return _by_code("message refused", code)
        self._drop()
        return MailUnknown(f"unreadable reply after the whole message was sent ({code})")

    def _reset(self, code: int) -> None:
        """After a refusal: RSET to reuse the connection, or drop it if that fails (or the
        server said 421, "closing", or something unexpected)."""
        smtp = self.smtp
        if smtp is None:
            return
        if code == 0:  # refused before any command: nothing to reset
            return
        if code == 421 or not 400 <= code < 600:
            self._drop()
            return
        try:
            reply, _ = smtp.rset()
        except (OSError, smtplib.SMTPException):
            reply = -1
        if reply != 250:
            self._drop()

    def _drop(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            smtp.close()

    def close(self) -> None:
        self.closed = True
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


class SmtpMailer:
    """Sends through an SMTP server, one connection per session."""

    def __init__(self, settings: Settings) -> None:
        self.host = settings.smtp_host or "localhost"
        self.port = settings.smtp_port
        self.username = settings.smtp_username
        self.password = settings.smtp_password
        self.starttls = settings.smtp_starttls
        self.timeout = settings.smtp_timeout_s
        self.sender = settings.mail_from

    def describe(self) -> str:
        """Host and port of the SMTP server."""
        return f"SMTP {self.host}:{self.port}"

    @contextlib.contextmanager
    def open(self) -> Iterator[MailSession]:
        """A session that connects on its first email, reuses the connection for the next
        ones, reconnects after a failure, and says QUIT at the end of the block."""
        session = _SmtpSession(self)
        try:
            yield session
        finally:
            session.close()

    def send_many(self, emails: Sequence[Email]) -> list[MailResult]:
        """Send every email over one session, one at a time; one result per email."""
        return _send_many(self, self.sender, emails)

    def _connect(self) -> smtplib.SMTP:
        """A connection ready for MAIL FROM (greeted, EHLO, STARTTLS and login as set up),
        or ``MailUnreachable``. A session-level refusal says nothing about any one email,
        so it is never permanent: a misconfigured server must not fail every email."""
        where = f"{self.host}:{self.port}"
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailUnreachable(f"cannot reach SMTP {where}: {exc}") from exc
        try:
            smtp.ehlo_or_helo_if_needed()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo_or_helo_if_needed()
            if self.username and self.password:
                smtp.login(self.username, self.password.get_secret_value())
        except (OSError, smtplib.SMTPException) as exc:
            smtp.close()
            raise MailUnreachable(f"SMTP session with {where} not set up: {exc}") from exc
        except BaseException:
            smtp.close()
            raise
        return smtp


def make_mailer(settings: Settings) -> Mailer:
    """SMTP when ``NUDGE_SMTP_HOST`` is set, else the outbox folder."""
    if settings.smtp_host:
        return SmtpMailer(settings)
    return OutboxMailer(settings.outbox_dir, settings.mail_from)


__all__ = [
    "Email",
    "MailError",
    "MailPermanent",
    "MailResult",
    "MailSession",
    "MailTransient",
    "MailUnknown",
    "MailUnreachable",
    "Mailer",
    "OutboxMailer",
    "SmtpMailer",
    "make_mailer",
    "message_id_for",
]
